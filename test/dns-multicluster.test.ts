// Forwarded DNS between the clusters of one lab, with real packets and real `dig` in the pods: c1 forwards
// remote.svc.cluster.local to c2 (routed, advertised, peered: straight to c2's DNS pod) and far.svc.cluster.local
// to c3 (VXLAN: through the kube-dns-peering NodePort on c3's nodes); then the same over TLS (853) with
// the lab CA, with mutual TLS, and the two ways it must fail closed (wrong server name, untrusted CA).
// The shadowing warning through `podnet plan` and `lab apply`. One lab, taken down in after().
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { labDnsPki } from "../src/lab/cluster-dns.js";
import { labApply, labDown, labUp } from "../src/lab/lab.js";
import { labDir, netnsNames, netnsPath } from "../src/lab/names.js";
import { probe } from "../src/lab/probe.js";
import { readLabState } from "../src/lab/store.js";
import { createCa } from "../src/pki/certificates.js";

const lab = `dm${randomBytes(3).toString("hex")}`;
const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const clientNs = () => netnsNames.pod(lab, "c1", "shop", "client");
const pki = labDnsPki(lab);

/**
 * The three clusters: `c1forwardTls` is the `tls` of c1's forward to c2 (none when empty), `c2dns` c2's
 * spec.dns, `c3tls` makes c3 serve DoT and c1 forward to it over TLS.
 */
function clusters(c1forwardTls = "", c2dns = "{}", c3tls = false): string {
  const tls = c1forwardTls ? `, tls: ${c1forwardTls}` : "";
  return `apiVersion: podnet.dev/v1alpha1
kind: Cluster
metadata: {name: c1}
spec:
  nodeCIDR: 172.29.1.0/24
  podCIDRs: [10.61.0.0/16]
  serviceCIDRs: [10.62.0.0/16]
  externalCIDR: 198.18.1.0/26
  loadBalancerCIDRs: [198.18.1.64/26]
  nodes: 1
  dns:
    forward:
    - {zone: remote.svc.cluster.local, cluster: c2${tls}}
    - {zone: far.svc.cluster.local, cluster: c3${c3tls ? ", tls: {}" : ""}}
---
apiVersion: podnet.dev/v1alpha1
kind: Cluster
metadata: {name: c2}
spec:
  nodeCIDR: 172.29.2.0/24
  podCIDRs: [10.63.0.0/16]
  serviceCIDRs: [10.64.0.0/16]
  externalCIDR: 198.18.2.0/26
  loadBalancerCIDRs: [198.18.2.64/26]
  nodes: 2
  fabric: {mode: routed, advertiseToRouter: true}
  dns: ${c2dns}
---
apiVersion: podnet.dev/v1alpha1
kind: Cluster
metadata: {name: c3}
spec:
  nodeCIDR: 172.29.3.0/24
  podCIDRs: [10.65.0.0/16]
  serviceCIDRs: [10.66.0.0/16]
  externalCIDR: 198.18.3.0/26
  loadBalancerCIDRs: [198.18.3.64/26]
  nodes: 2
  fabric: {mode: vxlan}
  dns: {${c3tls ? "tls: {}" : ""}}
`;
}

/** A StatefulSet `db` with a headless Service `db` (named port `sql`) in namespace `ns` of `cluster`. */
function database(cluster: string, ns: string, replicas: number): string {
  const at = `annotations: {podnet.dev/cluster: ${cluster}}`;
  return `apiVersion: v1
kind: Namespace
metadata: {name: ${ns}, ${at}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: ${ns}, ${at}}
spec:
  serviceName: db
  replicas: ${replicas}
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: x, ports: [{name: sql, containerPort: 5432}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: ${ns}, ${at}}
spec: {clusterIP: None, selector: {app: db}, ports: [{name: sql, port: 5432}]}
`;
}

const WORKLOADS = `${database("c2", "remote", 3)}---
${database("c3", "far", 2)}---
apiVersion: v1
kind: Namespace
metadata: {name: shop, annotations: {podnet.dev/cluster: c1}}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop, annotations: {podnet.dev/cluster: c1}}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: podnet.dev/v1alpha1
kind: ClusterPeering
metadata: {name: c1-c2}
spec: {clusters: [c1, c2]}
---
apiVersion: podnet.dev/v1alpha1
kind: ClusterPeering
metadata: {name: c1-c3}
spec: {clusters: [c1, c3]}
`;

/** Runs a command inside the client pod of c1 (its resolv.conf points at c1's DNS). */
function inClient(cmd: string, args: string[], expectOk = true): { out: string; status: number | null } {
  const r = spawnSync("ip", ["netns", "exec", clientNs(), cmd, ...args], {
    encoding: "utf8",
    timeout: 30_000,
  });
  if (expectOk) assert.equal(r.status, 0, `${cmd} ${args.join(" ")}: ${r.stderr}${r.stdout}`);
  return { out: `${r.stdout}${r.stderr}`.trim(), status: r.status };
}
const dig = (...args: string[]) => inClient("dig", ["+short", "+time=5", "+tries=1", ...args]).out;
/** The status word of a dig answer (NOERROR, NXDOMAIN, SERVFAIL, …). */
const digStatus = (...args: string[]) =>
  /status: (\w+)/.exec(inClient("dig", ["+time=8", "+tries=1", ...args], false).out)?.[1];

function clusterPlan(name: string) {
  const c = readLabState(lab)?.plan?.clusters.find((p) => p.name === name);
  assert.ok(c, `cluster ${name} is planned`);
  return c;
}
const podIp = (cluster: string, name: string) =>
  clusterPlan(cluster).pods.find((p) => p.name === name)?.ips[0];
const dnsPodIp = (cluster: string) => podIp(cluster, "cluster-dns") as string;

/** Waits until c1's DNS answers `name` with NOERROR (the workloads agent restarts servers on changes). */
async function settled(name: string): Promise<void> {
  let status: string | undefined;
  for (let i = 0; i < 20 && status !== "NOERROR"; i++) {
    status = digStatus(name);
    if (status !== "NOERROR") await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(status, "NOERROR", `${name} resolves from c1`);
}

/** Applies the clusters with new DNS settings (the store keeps the workloads). */
async function applyClusters(c1forwardTls: string, c2dns: string, c3tls = false) {
  const r = await labApply({ lab }, [{ file: "clusters.yaml", text: clusters(c1forwardTls, c2dns, c3tls) }]);
  assert.deepEqual(r.report.failures, []);
  return r;
}

/** The SRV answer for c2's db, as `port target` lines, sorted. */
function remoteSrv(): string[] {
  return dig("SRV", "_sql._tcp.db.remote.svc.cluster.local")
    .split("\n")
    .map((l) => l.split(" ").slice(2).join(" "))
    .sort();
}
const REMOTE_SRV = [0, 1, 2].map((i) => `5432 db-${i}.db.remote.svc.cluster.local.`);

/** Whether a node of `cluster` has a conntrack entry of a TCP flow to `port` (the node forwarded it). */
function nodeSawFlow(cluster: string, port: number, to = ""): boolean {
  return clusterPlan(cluster).nodes.some((n) => {
    const r = spawnSync(
      "ip",
      [
        "netns",
        "exec",
        netnsNames.node(lab, cluster, n.name),
        "conntrack",
        "-L",
        "-p",
        "tcp",
        "--dport",
        String(port),
      ],
      { encoding: "utf8", timeout: 10_000 },
    );
    return r.stdout.split("\n").some((l) => l.includes(`dport=${port}`) && (!to || l.includes(`dst=${to} `)));
  });
}

const workloadsLog = () => readFileSync(`${labDir(lab)}/workloads.log`, "utf8");

describe("forwarded DNS between the clusters of a lab", () => {
  before(async () => {
    const up = await labUp({ lab }, [
      { file: "clusters.yaml", text: clusters() },
      { file: "workloads.yaml", text: WORKLOADS },
    ]);
    assert.deepEqual(up.report.failures, []);
  });
  after(async () => {
    await labDown({ lab });
    assert.ok(!existsSync(labDir(lab)), "down removes the lab directory, certificates with it");
  });

  test("SRV of c2's headless db from c1: the three members, their A records, a connection to each", async () => {
    assert.deepEqual(remoteSrv(), REMOTE_SRV);
    for (const i of [0, 1, 2]) {
      const ip = podIp("c2", `db-${i}`) as string;
      assert.equal(dig(`db-${i}.db.remote.svc.cluster.local`), ip);
      const r = await probe({
        fromNetns: netnsPath(clientNs()),
        host: ip,
        port: 5432,
        protocol: "TCP",
        timeoutMs: 3000,
      });
      assert.equal(r.outcome, "connected", `${ip}: ${r.reason}`);
      assert.match(r.answer ?? "", new RegExp(`^remote/db-${i} `));
    }
    // c1's own names still resolve in c1, and names of c2's other namespaces are not forwarded.
    assert.equal(digStatus("kube-dns.kube-system.svc.cluster.local"), "NOERROR");
    assert.equal(digStatus("db.other.svc.cluster.local"), "NXDOMAIN");
  });

  test("an overlay cluster (c3, VXLAN): the lookup goes through the kube-dns-peering NodePort", async () => {
    const srv = dig("SRV", "_sql._tcp.db.far.svc.cluster.local").split("\n").sort();
    assert.deepEqual(
      srv.map((l) => l.split(" ").slice(2).join(" ")),
      ["5432 db-0.db.far.svc.cluster.local.", "5432 db-1.db.far.svc.cluster.local."],
    );
    assert.equal(dig("db-1.db.far.svc.cluster.local"), podIp("c3", "db-1"));
    const peering = clusterPlan("c3").services.find((s) => s.name === "kube-dns-peering");
    const nodePort = peering?.ports.find((p) => p.name === "dns-tcp")?.nodePort;
    assert.ok(nodePort, "c3 has the peering NodePort");
    // The query reached a c3 node on that NodePort: its conntrack table has the flow.
    assert.ok(nodeSawFlow("c3", nodePort), "a c3 node saw the DNS query on its NodePort");
  });

  test("over TLS: c2 serves DoT with the lab CA's certificate, c1 forwards on 853 and verifies it", async () => {
    const r = await applyClusters("{}", "{tls: {}}");
    assert.deepEqual(
      r.diagnostics.filter((d) => d.severity === "error"),
      [],
    );
    assert.ok(existsSync(pki.ca) && existsSync(pki.cert("c2")) && existsSync(pki.cert("c1")));
    await settled("db.remote.svc.cluster.local");
    assert.deepEqual(remoteSrv(), REMOTE_SRV);
    assert.equal(dig("db-2.db.remote.svc.cluster.local"), podIp("c2", "db-2"));
    // c1's DNS pod connected to c2's DNS pod on 853: c1's node forwarded that flow.
    assert.ok(nodeSawFlow("c1", 853, dnsPodIp("c2")), "c1's node forwarded a flow to c2's DNS pod on 853");
    // Real dig over TLS from the client pod to c2's DNS, verifying the name against the lab CA.
    const direct = inClient("dig", [
      "+short",
      "+tls",
      `+tls-ca=${pki.ca}`,
      `+tls-hostname=${pki.serverName("c2")}`,
      `@${dnsPodIp("c2")}`,
      "db-0.db.remote.svc.cluster.local",
    ]).out;
    assert.equal(direct, podIp("c2", "db-0"));
    // The certificates, as `podnet lab certs` shows them.
    const certs = spawnSync(process.execPath, [CLI, "lab", "certs", "--name", lab], { encoding: "utf8" });
    assert.equal(certs.status, 0, certs.stderr);
    assert.match(certs.stdout, new RegExp(`CA: ${pki.ca}`));
    assert.match(certs.stdout, new RegExp(`c2 +dns\\.c2\\.${lab} +${pki.cert("c2")} +${pki.key("c2")}`));
  });

  test("over TLS to the overlay cluster c3: through the 853 NodePort of kube-dns-peering", async () => {
    await applyClusters("{}", "{tls: {}}", true);
    await settled("db.far.svc.cluster.local");
    assert.equal(dig("db-0.db.far.svc.cluster.local"), podIp("c3", "db-0"));
    const nodePort = clusterPlan("c3")
      .services.find((s) => s.name === "kube-dns-peering")
      ?.ports.find((p) => p.name === "dns-tls")?.nodePort;
    assert.ok(nodePort, "c3's peering Service has the TLS port");
    assert.ok(nodeSawFlow("c3", nodePort), "a c3 node saw the DoT connection on its NodePort");
  });

  test("mutual TLS: c2 requires a client certificate; c1's DNS presents its own and still resolves", async () => {
    await applyClusters("{}", "{tls: {clientAuth: require}}");
    await settled("db.remote.svc.cluster.local");
    assert.deepEqual(remoteSrv(), REMOTE_SRV);
    const base = ["+tls", `+tls-ca=${pki.ca}`, `+tls-hostname=${pki.serverName("c2")}`, `@${dnsPodIp("c2")}`];
    // Without a client certificate c2 refuses the connection…
    const anonymous = inClient(
      "dig",
      ["+time=3", "+tries=1", ...base, "db-0.db.remote.svc.cluster.local"],
      false,
    );
    assert.doesNotMatch(anonymous.out, /status: NOERROR/);
    // …with one the lab CA issued it answers.
    const withCert = inClient("dig", [
      "+short",
      ...base,
      `+tls-certfile=${pki.cert("c1")}`,
      `+tls-keyfile=${pki.key("c1")}`,
      "db-0.db.remote.svc.cluster.local",
    ]).out;
    assert.equal(withCert, podIp("c2", "db-0"));
  });

  test("fail closed: a wrong server name is SERVFAIL, with a clear line in the workloads agent's log", async () => {
    const before = workloadsLog().length;
    await applyClusters("{serverName: wrong.name}", "{tls: {}}");
    let status: string | undefined;
    for (let i = 0; i < 3 && status !== "SERVFAIL"; i++) status = digStatus("db.remote.svc.cluster.local");
    assert.equal(status, "SERVFAIL");
    const log = workloadsLog().slice(before);
    // e.g. "cluster DNS of c1: forward remote.svc.cluster.local.: tls://10.63.1.3:853: certificate rejected:
    // Hostname/IP does not match certificate's altnames: … (tls_servername wrong.name)"
    assert.match(
      log,
      /cluster DNS of c1: forward remote\.svc\.cluster\.local\.?: tls:\/\/[\d.]+:853: certificate rejected: .*tls_servername wrong\.name/,
      log,
    );
  });

  test("fail closed: a certificate the configured CA did not sign is SERVFAIL, logged", async () => {
    const other = await createCa({ commonName: "some other CA" });
    const otherCa = `${labDir(lab)}/other-ca.pem`;
    writeFileSync(otherCa, other.certPem);
    const before = workloadsLog().length;
    await applyClusters(`{ca: ${otherCa}}`, "{tls: {}}");
    let status: string | undefined;
    for (let i = 0; i < 3 && status !== "SERVFAIL"; i++) status = digStatus("db.remote.svc.cluster.local");
    assert.equal(status, "SERVFAIL");
    const log = workloadsLog().slice(before);
    assert.match(
      log,
      /cluster DNS of c1: forward remote\.svc\.cluster\.local\.?: tls:\/\/[\d.]+:853: certificate rejected: /,
      log,
    );
    // Back to the lab CA: resolves again.
    await applyClusters("{}", "{tls: {}}");
    await settled("db.remote.svc.cluster.local");
  });

  test("shadowing: forwarding a zone over a namespace c1 has warns in lab apply and podnet plan", async () => {
    const shadow = `apiVersion: v1
kind: Namespace
metadata: {name: remote, annotations: {podnet.dev/cluster: c1}}
`;
    const r = await labApply({ lab }, [{ file: "shadow.yaml", text: shadow }]);
    const warning = r.diagnostics.find((d) => d.code === "dns-forward-shadows");
    assert.ok(warning, "a warning, and the apply went through");
    assert.match(
      warning.message,
      /forwarded zone remote\.svc\.cluster\.local shadows namespace remote of cluster c1: its Services' names will resolve in cluster c2, not here/,
    );
    // podnet plan prints it with the forward entry's file:line.
    const dir = labDir(lab);
    writeFileSync(`${dir}/plan.yaml`, `${clusters()}---\n${WORKLOADS}---\n${shadow}`);
    const plan = spawnSync(process.execPath, [CLI, "plan", "-f", `${dir}/plan.yaml`], { encoding: "utf8" });
    assert.equal(plan.status, 0, plan.stderr);
    assert.match(
      plan.stderr,
      /plan\.yaml:13: warning: Cluster c1: spec\.dns\.forward\[0\]\.zone: forwarded zone remote\.svc\.cluster\.local shadows namespace remote of cluster c1/,
    );
  });
});
