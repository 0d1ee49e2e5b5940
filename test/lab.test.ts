// The lab with real packets, for both fabrics: pods, nodes and an external host built from manifests,
// then probed. Each lab has a unique name (so a unique namespace prefix) and is taken down in after(),
// also when a test fails; the suite's leak check then finds nothing of it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { agentRequest, runningAgentPid } from "../src/lab/agent.js";
import { listNamespaces } from "../src/lab/kernel.js";
import { type ChangeResult, labApply, labDelete, labDown, labLabel, labUp } from "../src/lab/lab.js";
import { labDir, labPrefix, netnsNames } from "../src/lab/names.js";
import { probe } from "../src/lab/probe.js";
import { type AppliedPod, readLabState } from "../src/lab/store.js";
import { runTour } from "../src/lab/tour.js";
import { connectTcp } from "../src/linux/netns-native.js";

const tag = randomBytes(3).toString("hex");
const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));

function manifests(mode: "routed" | "vxlan"): string {
  const pod = (name: string, node: string, extra = "") => `---
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: a, labels: {app: ${name}, tier: web}}
spec:
  nodeName: ${node}
  containers:
    - name: web
      image: x
      ports: [{containerPort: 8080}]${extra}
`;
  return `apiVersion: podnet.dev/v1alpha1
kind: Cluster
metadata: {name: c1}
spec:
  nodeCIDR: 172.30.0.0/24
  podCIDRs: [10.60.0.0/16]
  serviceCIDRs: [10.61.0.0/16]
  nodeCIDRMaskSize: 24
  fabric: {mode: ${mode}${mode === "routed" ? ", advertiseToRouter: true" : ""}}
---
apiVersion: v1
kind: Node
metadata: {name: n1}
---
apiVersion: v1
kind: Node
metadata: {name: n2}
---
apiVersion: v1
kind: Namespace
metadata: {name: a}
${pod(
  "p1",
  "n1",
  `
    - name: side
      image: x
      ports: [{containerPort: 9090}, {containerPort: 5353, protocol: UDP}]`,
)}${pod("p2", "n1")}${pod("p3", "n2")}---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: a}
spec:
  type: NodePort
  selector: {tier: web}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: a}
spec:
  type: LoadBalancer
  selector: {tier: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: lb-local, namespace: a}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: p3}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: podnet.dev/v1alpha1
kind: ExternalHost
metadata: {name: ext}
spec:
  ports: [{port: 80}]
`;
}

/** The process has exited (a zombie waiting for its parent to collect it counts as exited). */
function exited(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

const src = (text: string, file = "lab-test.yaml") => [{ file, text }];

function podOf(lab: string, name: string): AppliedPod {
  const p = readLabState(lab)?.pods.find((x) => x.name === name);
  assert.ok(p, `pod ${name} is in the store`);
  return p;
}

function execIn(ns: string, cmd: string, args: string[]) {
  return spawnSync("ip", ["netns", "exec", ns, cmd, ...args], { encoding: "utf8", timeout: 10_000 });
}

/** A TCP connection to a responder: `ask(line)` sends a line and resolves with the next line back. */
async function lineConnection(netns: string, host: string, port: number) {
  const conn = await connectTcp(netns, host, port, { timeoutMs: 2000 });
  const lines: string[] = [];
  let buf = "";
  conn.on("data", (d) => {
    buf += d;
    const parts = buf.split("\n");
    buf = parts.pop() ?? "";
    lines.push(...parts);
  });
  const next = async (n: number) => {
    for (let i = 0; i < 300 && lines.length < n; i++) await new Promise((r) => setTimeout(r, 10));
    return lines[n - 1];
  };
  await next(1); // the greeting
  let asked = 1;
  after(() => conn.destroy());
  return {
    ask: async (line: string) => {
      conn.write(`${line}\n`);
      asked++;
      return next(asked);
    },
  };
}

async function tcp(fromNetns: string, host: string, port: number, timeoutMs = 2000) {
  return probe({ fromNetns, host, port, protocol: "TCP", timeoutMs });
}

function fabricSuite(mode: "routed" | "vxlan") {
  const lab = `t${tag}${mode[0]}`;
  let up: ChangeResult;
  const nodeNs = (n: string) => `/run/netns/${netnsNames.node(lab, "c1", n)}`;
  const extNs = () => `/run/netns/${netnsNames.external(lab, "c1", "ext")}`;

  describe(`lab, ${mode} fabric`, () => {
    before(async () => {
      up = await labUp({ lab }, src(manifests(mode)));
    });
    after(async () => {
      await labDown({ lab });
    });

    test("up attaches every pod through CNI and reports each phase", () => {
      assert.deepEqual(up.report.failures, []);
      // The three pods, and the cluster's DNS pod (kube-system/cluster-dns) the lab adds.
      assert.equal(up.report.podsAdded, 4);
      assert.deepEqual(
        up.state.pods
          .filter((p) => p.namespace === "a")
          .map((p) => `${p.name}@${p.node}`)
          .sort(),
        ["p1@n1", "p2@n1", "p3@n2"],
      );
      assert.ok(up.state.pods.some((p) => p.namespace === "kube-system" && p.name === "cluster-dns"));
      for (const phase of ["namespaces", "network", "agents", "pods", "workloads"])
        assert.ok(
          up.report.phases.some((p) => p.phase === phase),
          phase,
        );
    });

    test("every pod reaches every pod; the responder sees the client pod's own IP (no NAT)", async () => {
      const pods = ["p1", "p2", "p3"].map((n) => podOf(lab, n));
      for (const from of pods) {
        for (const to of pods) {
          const r = await tcp(from.netns, to.ips[0] as string, 8080);
          assert.equal(r.outcome, "connected", `${from.name} -> ${to.name}: ${r.reason}`);
          assert.equal(r.answer, `a/${to.name} ${from.ips[0]}:${r.answer?.split(":").pop()}`);
        }
      }
    });

    test("a Service's ClusterIP spreads over its endpoints; pod clients keep their IP", async () => {
      const vip = readLabState(lab)?.plan?.clusters[0]?.services.find((x) => x.name === "web")?.clusterIPs[0];
      assert.ok(vip);
      for (const client of ["p1", "p3"]) {
        const from = podOf(lab, client);
        const seen = new Set<string>();
        for (let i = 0; i < 30; i++) {
          const r = await tcp(from.netns, vip, 80);
          assert.equal(r.outcome, "connected", `${client} -> ${vip}:80: ${r.reason}`);
          const [who, addr] = (r.answer ?? "").split(" ");
          // A pod reaching itself through its Service is masqueraded (hairpin); others keep their IP.
          if (who !== `a/${client}`) assert.equal(addr?.split(":")[0], from.ips[0]);
          seen.add(who ?? "");
        }
        assert.ok(seen.size >= 2, `${client} reached ${[...seen].join(", ")}`);
      }
    });

    test("NodePort: an external host reaches the Service on a node's address", async () => {
      const n1 = readLabState(lab)?.plan?.clusters[0]?.nodes.find((n) => n.name === "n1");
      const r = await tcp(extNs(), n1?.address ?? "", 30080);
      assert.equal(r.outcome, "connected", r.reason);
      assert.match(r.answer ?? "", /^a\/p\d /);
    });

    test("LoadBalancer: the router routes the LB IP to the nodes; Cluster policy masquerades, Local keeps the client IP", async () => {
      const cluster = readLabState(lab)?.plan?.clusters[0];
      const ext = cluster?.externalHosts[0]?.address ?? "";
      const lb = cluster?.services.find((x) => x.name === "lb")?.loadBalancerIPs[0] ?? "";
      const lbLocal = cluster?.services.find((x) => x.name === "lb-local")?.loadBalancerIPs[0] ?? "";
      assert.ok(lb && lbLocal);
      // Masquerade takes the outgoing interface's address: eth0, cbr0 (the gateway) or, in VXLAN, vxlan0.
      const nodeAddresses = new Set(
        cluster?.nodes.flatMap((n) => [n.address, ...n.gateways, ...n.podCIDRs.map((c) => c.split("/")[0])]),
      );
      for (let i = 0; i < 10; i++) {
        const r = await tcp(extNs(), lb, 80);
        assert.equal(r.outcome, "connected", r.reason);
        const client = (r.answer ?? "").split(" ")[1]?.split(":")[0] ?? "";
        assert.ok(
          nodeAddresses.has(client),
          `Cluster policy: the endpoint sees a node address, saw ${client}`,
        );
      }
      for (let i = 0; i < 5; i++) {
        const r = await tcp(extNs(), lbLocal, 80);
        assert.equal(r.outcome, "connected", r.reason);
        assert.match(r.answer ?? "", new RegExp(`^a/p3 ${ext}:\\d+$`), "Local policy: the client IP is kept");
      }
    });

    test("UDP ports answer too", async () => {
      const p1 = podOf(lab, "p1");
      const p3 = podOf(lab, "p3");
      const r = await probe({
        fromNetns: p3.netns,
        host: p1.ips[0] as string,
        port: 5353,
        protocol: "UDP",
        timeoutMs: 2000,
      });
      assert.equal(r.outcome, "connected", r.reason);
      assert.match(r.answer ?? "", new RegExp(`^a/p1 ${p3.ips[0]}:\\d+$`));
    });

    test("containers of one pod share localhost", async () => {
      const p1 = podOf(lab, "p1");
      const r = await tcp(p1.netns, "127.0.0.1", 9090);
      assert.equal(r.outcome, "connected", r.reason);
      assert.match(r.answer ?? "", /^a\/p1 127\.0\.0\.1:\d+$/);
    });

    test("the IP a pod sees for itself is the one others see", () => {
      const p3 = podOf(lab, "p3");
      const out = execIn(p3.netns.slice("/run/netns/".length), "ip", [
        "-j",
        "-4",
        "addr",
        "show",
        "dev",
        "eth0",
      ]);
      const addrs = (JSON.parse(out.stdout) as { addr_info: { local: string }[] }[]).flatMap((l) =>
        l.addr_info.map((a) => a.local),
      );
      assert.deepEqual(addrs, [p3.ips[0]]);
    });

    test("nodes reach pods and pods reach nodes", async () => {
      const p1 = podOf(lab, "p1");
      const n2 = readLabState(lab)?.plan?.clusters[0]?.nodes.find((n) => n.name === "n2");
      const r = await tcp(nodeNs("n2"), p1.ips[0] as string, 8080);
      assert.equal(r.outcome, "connected", r.reason);
      // Routed, the node's packets leave from eth0's address; VXLAN, from its VTEP address (as flannel's).
      const source = mode === "routed" ? n2?.address : n2?.podCIDRs[0]?.replace(/\/\d+$/, "");
      assert.match(r.answer ?? "", new RegExp(`^a/p1 ${source}:`));
      const ping = execIn(p1.netns.slice("/run/netns/".length), "ping", [
        "-c",
        "1",
        "-W",
        "2",
        n2?.address ?? "",
      ]);
      assert.equal(ping.status, 0, ping.stdout + ping.stderr);
    });

    test("a pod reaches an external host, masqueraded to its node's address", async () => {
      const state = readLabState(lab);
      const ext = state?.plan?.clusters[0]?.externalHosts[0];
      const n2 = state?.plan?.clusters[0]?.nodes.find((n) => n.name === "n2");
      const r = await tcp(podOf(lab, "p3").netns, ext?.address ?? "", 80);
      assert.equal(r.outcome, "connected", r.reason);
      assert.match(r.answer ?? "", new RegExp(`^external/ext ${n2?.address}:\\d+$`));
    });

    test(
      mode === "routed"
        ? "an external host reaches pod IPs directly (the router has the pod routes)"
        : "an external host cannot reach pod IPs (VXLAN: pods are not addressable from outside)",
      async () => {
        const p1 = podOf(lab, "p1");
        const ext = readLabState(lab)?.plan?.clusters[0]?.externalHosts[0];
        const r = await tcp(extNs(), p1.ips[0] as string, 8080, 1000);
        if (mode === "routed") {
          assert.equal(r.outcome, "connected", r.reason);
          assert.match(r.answer ?? "", new RegExp(`^a/p1 ${ext?.address}:`));
        } else {
          assert.equal(r.outcome, "blocked");
        }
      },
    );

    if (mode === "vxlan") {
      test("VXLAN MTU: 1422 bytes of ICMP payload with DF pass at pod MTU 1450, 1423 do not", () => {
        const p1 = podOf(lab, "p1");
        const p3 = podOf(lab, "p3").netns.slice("/run/netns/".length);
        const mtu = execIn(p3, "cat", ["/sys/class/net/eth0/mtu"]);
        assert.equal(mtu.stdout.trim(), "1450");
        const ok = execIn(p3, "ping", ["-c", "1", "-W", "2", "-M", "do", "-s", "1422", p1.ips[0] as string]);
        assert.equal(ok.status, 0, ok.stdout + ok.stderr);
        const big = execIn(p3, "ping", ["-c", "1", "-W", "1", "-M", "do", "-s", "1423", p1.ips[0] as string]);
        assert.notEqual(big.status, 0);
      });
    }

    if (mode === "routed") {
      test("apply adds a pod and keeps the others; label changes no attachment; delete removes it", async () => {
        const p4 = `apiVersion: v1
kind: Pod
metadata: {name: p4, namespace: a}
spec:
  nodeName: n2
  containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]
`;
        const added = await labApply({ lab }, src(p4, "p4.yaml"));
        assert.equal(added.report.podsAdded, 1);
        assert.equal(added.report.podsKept, 4);
        const r = await tcp(podOf(lab, "p1").netns, podOf(lab, "p4").ips[0] as string, 8080);
        assert.equal(r.outcome, "connected", r.reason);

        const labelled = await labLabel(
          { lab },
          { kind: "pod", name: "p1", namespace: "a", changes: ["role=front"], overwrite: false },
        );
        assert.equal(labelled.report.podsAdded, 0);
        const stored = readLabState(lab)?.objects.find((o) => o.key === "/Pod/a/p1")?.value as {
          metadata: { labels: Record<string, string> };
        };
        assert.equal(stored.metadata.labels.role, "front");

        const netns = podOf(lab, "p4").netns;
        const deleted = await labDelete({ lab }, src(p4, "p4.yaml"));
        assert.equal(deleted.report.podsRemoved, 1);
        assert.equal(
          readLabState(lab)?.pods.some((p) => p.name === "p4"),
          false,
        );
        assert.equal(existsSync(netns), false);
      });

      test("--cni-exec: the runtime executes the installed plugins in the node, with the same result", async () => {
        const p5 =
          "apiVersion: v1\nkind: Pod\nmetadata: {name: p5, namespace: a}\nspec:\n  nodeName: n1\n  containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]\n";
        const r = await labApply({ lab, cni: "exec" }, src(p5, "p5.yaml"));
        assert.deepEqual(r.report.failures, []);
        assert.equal(r.report.podsAdded, 1);
        const probe5 = await tcp(podOf(lab, "p3").netns, podOf(lab, "p5").ips[0] as string, 8080);
        assert.equal(probe5.outcome, "connected", probe5.reason);
        const removed = await labDelete({ lab, cni: "exec" }, src(p5, "p5.yaml"));
        assert.equal(removed.report.podsRemoved, 1);
      });

      test("the CLI: status, probe, matrix and exec on the running lab", () => {
        const cli = (command: string, ...args: string[]) =>
          spawnSync(process.execPath, [CLI, "lab", command, "--name", lab, ...args], {
            encoding: "utf8",
            timeout: 30_000,
          });
        const status = cli("status");
        assert.equal(status.status, 0, status.stderr);
        assert.match(status.stdout, /NAMESPACE\s+NAME\s+NODE\s+IP/);
        assert.match(status.stdout, /a\s+p3\s+n2\s+10\.60\.\d+\.\d+\s+8080\/TCP\s+Running/);
        const ok = cli("probe", "-n", "a", "p1", "p3", "8080", "-o", "json");
        assert.equal(ok.status, 0, ok.stderr);
        const json = JSON.parse(ok.stdout) as { outcome: string; answer: string };
        assert.equal(json.outcome, "connected");
        assert.match(json.answer, /^a\/p3 /);
        const refused = cli("probe", "-n", "a", "p1", "p3", "8081");
        assert.equal(refused.status, 2);
        assert.match(refused.stdout, /^blocked\s+a\/p1 → a\/p3 .*\(refused\)/);
        const unknown = cli("probe", "-n", "a", "p1", "nope", "80");
        assert.equal(unknown.status, 1);
        assert.match(unknown.stderr, /"nope" is not a pod in namespace a.*pods in a: p1, p2, p3/);
        const matrix = cli("matrix", "--ports", "8080", "-o", "json");
        assert.equal(matrix.status, 0, matrix.stderr);
        const m = JSON.parse(matrix.stdout) as { results: { outcome: string }[] };
        assert.equal(m.results.length, 9);
        assert.ok(m.results.every((x) => x.outcome === "connected"));
        const services = cli("services");
        assert.equal(services.status, 0, services.stderr);
        assert.match(
          services.stdout,
          /^a\s+web\s+NodePort\s+10\.61\.\d+\.\d+\s+80:30080\/TCP→8080\s+(10\.60\.\d+\.\d+:8080,?){3}\s+n1,n2$/m,
        );
        const exec = cli("exec", "-n", "a", "p2", "--", "cat", "/sys/class/net/eth0/address");
        assert.equal(exec.status, 0, exec.stderr);
        assert.match(exec.stdout, /^([0-9a-f]{2}:){5}[0-9a-f]{2}\n$/);
      });

      test("bad manifests change nothing and name the file and line", async () => {
        const before = readLabState(lab);
        await assert.rejects(
          labApply(
            { lab },
            src(
              "apiVersion: v1\nkind: Pod\nmetadata: {name: bad, namespace: a}\nspec:\n  containers: [{name: c, image: x, ports: [{containerPort: 99999}]}]\n",
              "bad.yaml",
            ),
          ),
          /bad\.yaml:5/,
        );
        assert.deepEqual(readLabState(lab)?.pods, before?.pods);
      });

      test("kill -9 of the node agent: up adopts what exists; open connections, direct and through a Service, keep working", async () => {
        const p3 = podOf(lab, "p3");
        const vip =
          readLabState(lab)?.plan?.clusters[0]?.services.find((x) => x.name === "web")?.clusterIPs[0] ?? "";
        const direct = await lineConnection(p3.netns, podOf(lab, "p1").ips[0] as string, 8080);
        const viaService = await lineConnection(p3.netns, vip, 80);
        const pid = runningAgentPid(lab, "node");
        assert.ok(pid);
        process.kill(pid, "SIGKILL");
        for (let i = 0; i < 100 && runningAgentPid(lab, "node") !== undefined; i++)
          await new Promise((r) => setTimeout(r, 10));
        const again = await labUp({ lab }, []);
        assert.equal(again.report.podsAdded, 0);
        assert.equal(again.report.podsKept, 4);
        assert.notEqual(runningAgentPid(lab, "node"), pid);
        // The new agent replaced the service proxy's tables in one transaction: conntrack kept the NAT.
        assert.equal(await direct.ask("still there"), "echo still there");
        assert.equal(await viaService.ask("through the service"), "echo through the service");
      });

      test("a Service follows its endpoints: a new pod gets connections, a deleted one none", async () => {
        const vip =
          readLabState(lab)?.plan?.clusters[0]?.services.find((x) => x.name === "web")?.clusterIPs[0] ?? "";
        const p6 =
          "apiVersion: v1\nkind: Pod\nmetadata: {name: p6, namespace: a, labels: {tier: web}}\nspec:\n  nodeName: n2\n  containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]\n";
        const seenBy = async () => {
          const seen = new Set<string>();
          for (let i = 0; i < 40; i++) {
            const r = await tcp(podOf(lab, "p1").netns, vip, 80);
            assert.equal(r.outcome, "connected", r.reason);
            seen.add((r.answer ?? "").split(" ")[0] ?? "");
          }
          return seen;
        };
        await labApply({ lab }, src(p6, "p6.yaml"));
        assert.ok((await seenBy()).has("a/p6"), "the new endpoint answers");
        await labDelete({ lab }, src(p6, "p6.yaml"));
        assert.ok(!(await seenBy()).has("a/p6"), "the deleted endpoint gets nothing");
      });

      test("kill -9 of the workloads agent: up restarts the responders", async () => {
        const pid = runningAgentPid(lab, "workloads");
        assert.ok(pid);
        process.kill(pid, "SIGKILL");
        for (let i = 0; i < 100 && runningAgentPid(lab, "workloads") !== undefined; i++)
          await new Promise((r) => setTimeout(r, 10));
        await labUp({ lab }, []);
        const r = await tcp(podOf(lab, "p3").netns, podOf(lab, "p1").ips[0] as string, 8080);
        assert.equal(r.outcome, "connected", r.reason);
        const status = await agentRequest<{ status: { sockets: number } }>(lab, "workloads", {
          op: "status",
        });
        assert.ok(status.status.sockets >= 5);
      });

      test("a second lab runs beside the first with the same addresses, isolated", async () => {
        const other = `t${tag}b`;
        try {
          const r2 = await labUp({ lab: other }, src(manifests("routed")));
          assert.equal(r2.report.podsAdded, 4);
          const p1 = podOf(other, "p1");
          const r = await tcp(podOf(other, "p3").netns, p1.ips[0] as string, 8080);
          assert.equal(r.outcome, "connected", r.reason);
        } finally {
          await labDown({ lab: other });
        }
        assert.deepEqual(listNamespaces(labPrefix(other)), []);
        const r = await tcp(podOf(lab, "p3").netns, podOf(lab, "p1").ips[0] as string, 8080);
        assert.equal(r.outcome, "connected", "the first lab still works");
      });
    }

    test("down leaves nothing behind: namespaces, files, processes", async () => {
      const pids = [runningAgentPid(lab, "node"), runningAgentPid(lab, "workloads")];
      await labDown({ lab });
      assert.deepEqual(listNamespaces(labPrefix(lab)), []);
      assert.equal(existsSync(labDir(lab)), false);
      for (const pid of pids) {
        assert.ok(pid);
        assert.ok(exited(pid), `agent ${pid} is gone`);
      }
    });
  });
}

fabricSuite("routed");
fabricSuite("vxlan");

test("the quick-start tour passes every check it makes and leaves nothing behind", async () => {
  const lab = `t${tag}q`;
  const text = readFileSync(
    fileURLToPath(new URL("../../examples/quickstart.yaml", import.meta.url)),
    "utf8",
  );
  let out = "";
  try {
    const r = await runTour({
      lab,
      sources: src(text, "examples/quickstart.yaml"),
      write: (t) => (out += t),
    });
    assert.deepEqual(r.failed, [], out);
    assert.ok(r.checks >= 14, out);
    assert.match(out, /✔ external host to pod IP \S+ answers \(ping\)/);
    assert.match(out, /✔ external host to pod IP \S+ gets no answer \(ping\)/);
    assert.match(out, /✔ external host to shop\/web-\S+ is blocked by NetworkPolicy shop\/web-from-client/);
    assert.match(out, /MTU 1450 = underlay 1500 - 50/);
  } finally {
    await labDown({ lab });
  }
  assert.deepEqual(listNamespaces(labPrefix(lab)), []);
});
