// Several clusters in one lab, connected by ClusterPeerings, with real packets: routed clusters reach
// each other's pod IPs without NAT, a vxlan cluster's pods are not addressable (and the probe says why,
// as `podnet plan` does), peerings come and go on a running lab, and the service-range black hole is
// reproduced where `podnet plan` predicts it. Every lab has a unique name and goes in after(), also on
// failure; the last test checks that nothing of it is left.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { InvalidInputError } from "../src/api/diagnostics.js";
import { listNamespaces } from "../src/lab/kernel.js";
import { labApply, labDelete, labDown, labUp } from "../src/lab/lab.js";
import { labPrefix, netnsNames, peeringLinkName } from "../src/lab/names.js";
import { explainBlocked, probe } from "../src/lab/probe.js";
import { type AppliedPod, readLabState } from "../src/lab/store.js";

const tag = randomBytes(3).toString("hex");
const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "podnet-mc-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function podnet(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Cluster n: pods 10.10n.0.0/16 (and fd00:10n::/56 when dual-stack), services 10.20n.0.0/16, nodes 172.31.n.0/24. */
function cluster(name: string, n: number, fabric: string, dualStack = false): string {
  return `apiVersion: podnet.dev/v1alpha1
kind: Cluster
metadata: {name: ${name}}
spec:
  nodeCIDR: 172.31.${n}.0/24
  podCIDRs: [10.10${n}.0.0/16${dualStack ? `, fd00:10${n}::/56` : ""}]
  serviceCIDRs: [10.20${n}.0.0/16${dualStack ? `, fd00:20${n}::/112` : ""}]
  externalCIDR: 203.0.113.${(n - 1) * 64}/26
  loadBalancerCIDRs: [198.51.100.${(n - 1) * 64}/26]
  nodes: 1
  fabric: ${fabric}
---
`;
}

function pod(name: string, clusterName: string): string {
  return `apiVersion: v1
kind: Pod
metadata: {name: ${name}, labels: {app: ${name}}, annotations: {podnet.dev/cluster: ${clusterName}}}
spec: {containers: [{name: web, image: x, ports: [{containerPort: 8080}]}]}
---
`;
}

function peering(name: string, a: string, b: string, transit?: string): string {
  return `apiVersion: podnet.dev/v1alpha1
kind: ClusterPeering
metadata: {name: ${name}}
spec:
  clusters: [${a}, ${b}]${transit ? `\n  transitCIDR: ${transit}` : ""}
---
`;
}

const ROUTED = "{mode: routed, advertiseToRouter: true}";
const MANIFESTS =
  cluster("c1", 1, ROUTED, true) +
  cluster("c2", 2, ROUTED, true) +
  cluster("c3", 3, "{mode: vxlan}") +
  pod("a1", "c1") +
  pod("b1", "c2") +
  pod("x1", "c3") +
  `apiVersion: v1
kind: Service
metadata: {name: b, annotations: {podnet.dev/cluster: c2}}
spec: {type: NodePort, selector: {app: b1}, ports: [{port: 80, targetPort: 8080, nodePort: 30080}]}
---
` +
  peering("c1-c2", "c1", "c2", "192.0.2.0/30") +
  peering("c1-c3", "c1", "c3");
const LATE_PEERING = peering("c2-c3", "c2", "c3");

const src = (text: string, file = "multicluster.yaml") => [{ file, text }];

function podOf(lab: string, name: string): AppliedPod {
  const p = readLabState(lab)?.pods.find((x) => x.name === name);
  assert.ok(p, `pod ${name} is in the store`);
  return p;
}

function tcp(fromNetns: string, host: string, port: number, timeoutMs = 2000) {
  return probe({ fromNetns, host, port, protocol: "TCP", timeoutMs });
}

/** The client address the responder saw: `ns/pod ip:port` -> ip. */
const seenClient = (answer?: string) => answer?.split(" ")[1]?.split(":")[0];

describe("clusters connected by peerings", () => {
  const lab = `mc${tag}`;
  before(async () => {
    const up = await labUp({ lab }, src(MANIFESTS));
    assert.deepEqual(up.report.failures, []);
  });
  after(async () => {
    await labDown({ lab });
  });

  test("routed clusters: a pod reaches a pod of the other cluster by its IP, and the responder sees the client pod's IP", async () => {
    const a1 = podOf(lab, "a1");
    const b1 = podOf(lab, "b1");
    for (const [from, to] of [
      [a1, b1],
      [b1, a1],
    ] as const) {
      const r = await tcp(from.netns, to.ips[0] as string, 8080);
      assert.equal(r.outcome, "connected", `${from.name} -> ${to.name}: ${r.reason}`);
      assert.match(r.answer ?? "", new RegExp(`^default/${to.name} `));
      assert.equal(seenClient(r.answer), from.ips[0], "no NAT between routed, peered clusters");
    }
  });

  test("dual-stack peers: the same over IPv6 (routes via link-local twins of the transit addresses)", async () => {
    const a1 = podOf(lab, "a1");
    const b1 = podOf(lab, "b1");
    const a6 = a1.ips.find((ip) => ip.includes(":"));
    const b6 = b1.ips.find((ip) => ip.includes(":"));
    assert.ok(a6 && b6, `dual-stack pods: ${a1.ips} ${b1.ips}`);
    const r = await tcp(a1.netns, b6, 8080);
    assert.equal(r.outcome, "connected", r.reason);
    assert.match(r.answer ?? "", new RegExp(`^default/b1 \\[${a6}\\]:\\d+$`), "no NAT over IPv6 either");
  });

  test("node ranges: a pod reaches the peer's NodePort, a node the peer's node", async () => {
    const plan = readLabState(lab)?.plan;
    const c2node = plan?.clusters.find((c) => c.name === "c2")?.nodes[0]?.address ?? "";
    const r = await tcp(podOf(lab, "a1").netns, c2node, 30080);
    assert.equal(r.outcome, "connected", r.reason);
    assert.match(r.answer ?? "", /^default\/b1 /);
    const c1node = `/run/netns/${netnsNames.node(lab, "c1", "node-1")}`;
    const viaNode = await tcp(c1node, c2node, 30080);
    assert.equal(viaNode.outcome, "connected", viaNode.reason);
  });

  test("a vxlan cluster's pod IPs are not reachable from a peer, and the probe says why (as podnet plan)", async () => {
    const a1 = podOf(lab, "a1");
    const x1 = podOf(lab, "x1");
    const r = await tcp(a1.netns, x1.ips[0] as string, 8080, 1000);
    assert.equal(r.outcome, "blocked");
    const plan = readLabState(lab)?.plan;
    assert.ok(plan);
    const why = explainBlocked(
      plan,
      { label: "default/a1", kind: "pod", cluster: "c1", ips: a1.ips },
      x1.ips[0] ?? "",
    );
    assert.match(why ?? "", /^no: cluster c3 uses the vxlan fabric/);
    const cli = podnet([
      "lab",
      "probe",
      "--name",
      lab,
      "a1",
      x1.ips[0] as string,
      "8080",
      "--timeout",
      "500",
    ]);
    assert.equal(cli.code, 2, cli.stderr);
    assert.match(cli.stdout, /^blocked/);
    assert.match(
      cli.stdout,
      /\n {2}why: no: cluster c3 uses the vxlan fabric: its pod IPs \(10\.103\.0\.0\/16\)/,
    );
    // The other way works, masqueraded to c3's node: c1's pods are routed.
    const back = await tcp(x1.netns, a1.ips[0] as string, 8080);
    assert.equal(back.outcome, "connected", back.reason);
    const c3node = plan.clusters.find((c) => c.name === "c3")?.nodes[0]?.address;
    assert.equal(seenClient(back.answer), c3node);
  });

  test("a peering applied to a running lab connects its clusters; deleting it removes the link and its routes", async () => {
    const b1 = podOf(lab, "b1");
    const x1 = podOf(lab, "x1");
    const before = await tcp(x1.netns, b1.ips[0] as string, 8080, 1000);
    assert.equal(before.outcome, "blocked", "c2 and c3 are not peered yet");
    await labApply({ lab }, src(LATE_PEERING, "late.yaml"));
    const peering = readLabState(lab)?.plan?.peerings.find((p) => p.name === "c2-c3");
    assert.ok(peering);
    const now = await tcp(x1.netns, b1.ips[0] as string, 8080);
    assert.equal(now.outcome, "connected", now.reason);
    const status = podnet(["lab", "status", "--name", lab, "-o", "json"]);
    assert.equal(status.code, 0, status.stderr);
    assert.deepEqual(
      JSON.parse(status.stdout)
        .peerings.map((p: { name: string }) => p.name)
        .sort(),
      ["c1-c2", "c1-c3", "c2-c3"],
    );
    await labDelete({ lab }, src(LATE_PEERING, "late.yaml"));
    const gone = await tcp(x1.netns, b1.ips[0] as string, 8080, 1000);
    assert.equal(gone.outcome, "blocked");
    const underlay = netnsNames.underlay(lab, "c2");
    const links = spawnSync("ip", ["-n", underlay, "-o", "link", "show"], { encoding: "utf8" }).stdout;
    assert.ok(!links.includes(peeringLinkName(peering, "c2")), "the peering's link is gone");
    const routes = spawnSync("ip", ["-n", underlay, "route", "show", "proto", "98"], {
      encoding: "utf8",
    }).stdout;
    assert.ok(!routes.includes("172.31.3.0/24"), routes);
    // The other peerings are untouched.
    const still = await tcp(podOf(lab, "a1").netns, b1.ips[0] as string, 8080);
    assert.equal(still.outcome, "connected", still.reason);
  });

  test("re-adoption: up without files restores a peering link lost in a crash", async () => {
    const peering = readLabState(lab)?.plan?.peerings.find((p) => p.name === "c1-c2");
    assert.ok(peering);
    const del = spawnSync("ip", [
      "-n",
      netnsNames.underlay(lab, "c1"),
      "link",
      "del",
      peeringLinkName(peering, "c1"),
    ]);
    assert.equal(del.status, 0);
    const a1 = podOf(lab, "a1");
    const b1 = podOf(lab, "b1");
    assert.equal((await tcp(a1.netns, b1.ips[0] as string, 8080, 500)).outcome, "blocked");
    await labUp({ lab }, []);
    const r = await tcp(a1.netns, b1.ips[0] as string, 8080);
    assert.equal(r.outcome, "connected", r.reason);
    assert.equal(seenClient(r.answer), a1.ips[0]);
  });
});

// The black hole: an external client whose address lies inside the cluster's service range.
const ALIAS = `apiVersion: podnet.dev/v1alpha1
kind: Cluster
metadata: {name: c1}
spec:
  nodeCIDR: 172.31.9.0/24
  podCIDRs: [10.244.0.0/16]
  serviceCIDR: 10.96.0.0/12
  nodes: 1
  fabric: {mode: routed, advertiseToRouter: true}
---
apiVersion: podnet.dev/v1alpha1
kind: ExternalHost
metadata: {name: client}
spec:
  address: 10.96.100.7
---
apiVersion: podnet.dev/v1alpha1
kind: ExternalHost
metadata: {name: other}
---
${pod("web", "c1")}`;

describe("the service-range black hole", () => {
  const lab = `bh${tag}`;
  const file = join(dir, "alias.yaml");
  writeFileSync(file, ALIAS);
  after(async () => {
    await labDown({ lab });
  });

  test("podnet plan predicts it, naming the host", () => {
    const r = podnet(["plan", "-f", file]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /alias\.yaml:11: error: ExternalHost client: spec\.address: service CIDR 10\.96\.0\.0\/12 \(cluster c1\) aliases external host client's address 10\.96\.100\.7 \(cluster c1\)/,
    );
  });

  test("lab up refuses by default and names the flag; with --allow the client gets no replies, another host does", async () => {
    await assert.rejects(labUp({ lab }, [{ file, text: ALIAS }]), (e: unknown) => {
      assert.ok(e instanceof InvalidInputError);
      assert.match(
        e.diagnostics.find((d) => d.code === "service-range-alias")?.hint ?? "",
        /--allow service-range-alias/,
      );
      return true;
    });
    const up = await labUp({ lab, allow: ["service-range-alias"] }, [{ file, text: ALIAS }]);
    assert.deepEqual(up.report.failures, []);
    assert.ok(up.diagnostics.some((d) => d.code === "service-range-alias" && d.severity === "warning"));
    const web = podOf(lab, "web");
    const client = `/run/netns/${netnsNames.external(lab, "c1", "client")}`;
    const other = `/run/netns/${netnsNames.external(lab, "c1", "other")}`;
    const ok = await tcp(other, web.ips[0] as string, 8080);
    assert.equal(ok.outcome, "connected", ok.reason);
    const hole = await tcp(client, web.ips[0] as string, 8080, 1000);
    assert.equal(hole.outcome, "blocked");
    assert.equal(hole.reason, "timeout", "the SYN arrives, the replies are dropped on the node");
    const cli = podnet([
      "lab",
      "probe",
      "--name",
      lab,
      "external/client",
      web.ips[0] as string,
      "8080",
      "--timeout",
      "500",
    ]);
    assert.equal(cli.code, 2, cli.stderr);
    assert.match(
      cli.stdout,
      /why: external\/client's address 10\.96\.100\.7 lies inside service CIDR 10\.96\.0\.0\/12 of cluster c1/,
    );
    // The lab remembers the allowance: a later apply is not refused.
    await labApply({ lab }, src(pod("web2", "c1"), "more.yaml"));
  });
});

test("no leaks: the labs' namespaces are gone after down", async () => {
  for (const lab of [`mc${tag}`, `bh${tag}`]) {
    await labDown({ lab });
    assert.deepEqual(listNamespaces(labPrefix(lab)), []);
  }
});
