// The service proxy's semantics in a running lab, with real connections from client pods, nodes and
// external hosts (issue 5's test list): distribution, affinity, internalTrafficPolicy Local, hostPort,
// externalIPs, loadBalancerSourceRanges, dual-stack, endpoints changing under running clients, and
// stale UDP conntrack entries flushed. One dual-stack routed lab, taken down in after() (also on failure).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { labApply, labDelete, labDown, labUp } from "../src/lab/lab.js";
import { netnsNames } from "../src/lab/names.js";
import { probe } from "../src/lab/probe.js";
import { readLabState } from "../src/lab/store.js";
import { udpSocket } from "../src/linux/netns-native.js";
import type { ClusterPlan } from "../src/plan/types.js";

const lab = `s${randomBytes(3).toString("hex")}`;
const src = (text: string, file = "services-lab.yaml") => [{ file, text }];

const pod = (
  name: string,
  node: string,
  labels: string,
  ports = "[{name: http, containerPort: 8080}]",
) => `---
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: s, labels: {${labels}}}
spec:
  nodeName: ${node}
  containers: [{name: c, image: x, ports: ${ports}}]
`;

const MANIFEST = `apiVersion: podnet.dev/v1alpha1
kind: Cluster
metadata: {name: c1}
spec:
  nodeCIDR: 172.29.0.0/24
  podCIDRs: [10.70.0.0/16, fd00:70::/56]
  serviceCIDRs: [10.71.0.0/16, fd00:71::/112]
  externalCIDR: 198.18.7.0/24
  loadBalancerCIDRs: [198.18.9.0/28]
  nodes: 2
  fabric: {mode: routed, advertiseToRouter: true}
---
apiVersion: v1
kind: Namespace
metadata: {name: s}
${pod("w1", "node-1", "tier: web")}${pod("w2", "node-1", "tier: web")}${pod("w3", "node-2", "tier: web")}${pod(
  "u1",
  "node-1",
  "tier: udp",
  "[{name: dns, containerPort: 5353, protocol: UDP}]",
)}${pod("u2", "node-2", "tier: udp", "[{name: dns, containerPort: 5353, protocol: UDP}]")}${pod(
  "hp",
  "node-2",
  "app: hostport",
  "[{containerPort: 8080, hostPort: 8081}, {containerPort: 5353, hostPort: 5354, protocol: UDP}]",
)}${pod("client1", "node-1", "role: client")}${pod("client2", "node-2", "role: client")}---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: s}
spec:
  ipFamilyPolicy: PreferDualStack
  ipFamilies: [IPv4, IPv6]
  selector: {tier: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: sticky, namespace: s}
spec:
  selector: {tier: web}
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 300}}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: node1-only, namespace: s}
spec:
  internalTrafficPolicy: Local
  selector: {app: w1}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: s}
spec:
  selector: {tier: udp}
  ports: [{port: 53, protocol: UDP, targetPort: dns}]
---
apiVersion: v1
kind: Service
metadata: {name: ext-ip, namespace: s}
spec:
  selector: {tier: web}
  externalIPs: [198.18.8.10]
  ports: [{port: 8000, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: ranged, namespace: s}
spec:
  type: LoadBalancer
  loadBalancerSourceRanges: [198.18.7.100/32]
  selector: {tier: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: podnet.dev/v1alpha1
kind: ExternalHost
metadata: {name: allowed}
spec: {address: 198.18.7.100}
---
apiVersion: podnet.dev/v1alpha1
kind: ExternalHost
metadata: {name: other}
spec: {address: 198.18.7.200}
`;

// w1 gets an extra label so that node1-only selects it alone.
const MANIFEST_FINAL = MANIFEST.replace(
  "metadata: {name: w1, namespace: s, labels: {tier: web}}",
  "metadata: {name: w1, namespace: s, labels: {tier: web, app: w1}}",
);

const ns = {
  pod: (name: string) => `/run/netns/${netnsNames.pod(lab, "c1", "s", name)}`,
  node: (name: string) => `/run/netns/${netnsNames.node(lab, "c1", name)}`,
  ext: (name: string) => `/run/netns/${netnsNames.external(lab, "c1", name)}`,
};

function cluster(): ClusterPlan {
  const c = readLabState(lab)?.plan?.clusters[0];
  assert.ok(c, "the lab has a plan");
  return c;
}
const service = (name: string) => {
  const s = cluster().services.find((x) => x.name === name);
  assert.ok(s, `service ${name} is planned`);
  return s;
};
const podIps = (name: string) => cluster().pods.find((p) => p.name === name)?.ips ?? [];

/** Who answered a TCP connection ("s/w1"), or the reason it was blocked. */
async function who(fromNetns: string, host: string, port: number, timeoutMs = 2000): Promise<string> {
  const r = await probe({ fromNetns, host, port, protocol: "TCP", timeoutMs });
  if (r.outcome !== "connected") return `blocked:${r.reason}`;
  return (r.answer ?? "").split(" ")[0] ?? "";
}

/** The full answer line: "s/w1 <client ip>:<port>". */
async function answer(fromNetns: string, host: string, port: number): Promise<string> {
  const r = await probe({ fromNetns, host, port, protocol: "TCP", timeoutMs: 2000 });
  assert.equal(r.outcome, "connected", `${host}:${port} from ${fromNetns}: ${r.reason}`);
  return r.answer ?? "";
}

describe("services in a dual-stack routed lab", () => {
  before(async () => {
    const up = await labUp({ lab }, src(MANIFEST_FINAL));
    assert.deepEqual(up.report.failures, []);
  });
  after(async () => {
    await labDown({ lab });
  });

  test("distribution: over 200 connections to a ClusterIP every endpoint answers", async () => {
    const vip = service("web").clusterIPs[0] as string;
    const seen = new Map<string, number>();
    for (let i = 0; i < 200; i++) {
      const w = await who(ns.pod("client1"), vip, 80);
      seen.set(w, (seen.get(w) ?? 0) + 1);
    }
    assert.deepEqual([...seen.keys()].sort(), ["s/w1", "s/w2", "s/w3"], JSON.stringify([...seen]));
  });

  test("dual-stack: the Service has an IPv6 ClusterIP too, and it reaches the endpoints over IPv6", async () => {
    const v6 = service("web").clusterIPs.find((ip) => ip.includes(":"));
    assert.ok(v6, `an IPv6 ClusterIP in ${service("web").clusterIPs}`);
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const line = await answer(ns.pod("client2"), v6, 80);
      seen.add(line.split(" ")[0] ?? "");
      // The endpoint sees the client pod's own IPv6 address: no NAT between pods.
      const client = podIps("client2").find((ip) => ip.includes(":"));
      assert.ok(line.includes(`${client}`), `${line} names ${client}`);
    }
    assert.deepEqual([...seen].sort(), ["s/w1", "s/w2", "s/w3"]);
  });

  test("sessionAffinity ClientIP: one client sticks to one endpoint; another client may land elsewhere", async () => {
    const vip = service("sticky").clusterIPs[0] as string;
    for (const client of ["client1", "client2"]) {
      const first = await who(ns.pod(client), vip, 80);
      assert.match(first, /^s\/w[123]$/);
      for (let i = 0; i < 20; i++) assert.equal(await who(ns.pod(client), vip, 80), first);
    }
  });

  test("internalTrafficPolicy Local: the node with the endpoint serves it; a node without one drops", async () => {
    const vip = service("node1-only").clusterIPs[0] as string;
    assert.equal(await who(ns.pod("client1"), vip, 80), "s/w1");
    // client2 is on node-2, which has no endpoint: dropped there, not sent across (a timeout, not a refusal).
    assert.equal(await who(ns.pod("client2"), vip, 80, 1000), "blocked:timeout");
  });

  test("hostPort: the node's address on the hostPort reaches the pod, from another node's pod and from outside", async () => {
    const node2 = cluster().nodes.find((n) => n.name === "node-2")?.address as string;
    assert.equal(await who(ns.pod("client1"), node2, 8081), "s/hp");
    const line = await answer(ns.ext("allowed"), node2, 8081);
    assert.equal(line.split(" ")[0], "s/hp");
    // The pod sees the external client's own address (portmap does not masquerade).
    assert.equal(line.split(" ")[1]?.split(":")[0], "198.18.7.100");
    const u = await probe({
      fromNetns: ns.ext("allowed"),
      host: node2,
      port: 5354,
      protocol: "UDP",
      timeoutMs: 2000,
    });
    assert.equal(u.outcome, "connected", u.reason);
    assert.equal(u.answer?.split(" ")[0], "s/hp");
  });

  test("externalIPs: an external host reaches the Service on its external IP through the router", async () => {
    assert.deepEqual(service("ext-ip").externalIPs, ["198.18.8.10"]);
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) seen.add(await who(ns.ext("other"), "198.18.8.10", 8000));
    assert.deepEqual([...seen].sort(), ["s/w1", "s/w2", "s/w3"]);
  });

  test("loadBalancerSourceRanges: the allowed source connects; any other is dropped", async () => {
    const lb = service("ranged").loadBalancerIPs[0];
    assert.ok(lb, "the pool gave the LoadBalancer an address");
    assert.match(await who(ns.ext("allowed"), lb, 80), /^s\/w[123]$/);
    assert.equal(await who(ns.ext("other"), lb, 80, 1000), "blocked:timeout");
    // The ClusterIP of the same Service stays open to pods: source ranges guard the LB address only.
    assert.match(await who(ns.pod("client1"), service("ranged").clusterIPs[0] as string, 80), /^s\/w[123]$/);
  });

  test("endpoints added and removed while clients connect: every connection is answered", async () => {
    const vip = service("web").clusterIPs[0] as string;
    let running = true;
    const failures: string[] = [];
    const seen = new Set<string>();
    const client = (async () => {
      while (running) {
        const w = await who(ns.pod("client1"), vip, 80, 2000);
        if (w.startsWith("blocked")) failures.push(w);
        else seen.add(w);
      }
    })();
    const extra = pod("w4", "node-2", "tier: web");
    try {
      await labApply({ lab }, src(extra, "w4.yaml"));
      // The new pod gets connections once attached…
      for (let i = 0; i < 200 && !seen.has("s/w4"); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(seen.has("s/w4"), "w4 answered after it was added");
      // …and none after it is deleted.
      await labDelete({ lab }, src(extra, "w4.yaml"));
      seen.clear();
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      running = false;
      await client;
    }
    assert.deepEqual(failures, [], "no connection failed while endpoints changed");
    assert.ok(!seen.has("s/w4"), "no answer from the deleted pod");
    assert.ok(seen.size > 0);
  });

  test("UDP: when an endpoint goes, its conntrack entries go too; the same client socket reaches another", async () => {
    const vip = service("dns").clusterIPs[0] as string;
    const socket = await udpSocket(ns.pod("client1"));
    after(() => socket.close());
    const ask = () =>
      new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no UDP answer from ${vip}:53`)), 2000);
        socket.once("message", (m) => {
          clearTimeout(timer);
          resolve(m.toString().split(" ")[0] ?? "");
        });
        socket.send("q", 53, vip);
      });
    // One source port: conntrack pins every datagram to the first endpoint picked.
    const first = await ask();
    assert.match(first, /^s\/u[12]$/);
    for (let i = 0; i < 5; i++) assert.equal(await ask(), first);
    // The endpoint leaves the Service (relabelled, so its responder keeps answering on its own IP): without
    // the flush, conntrack would keep sending this socket's datagrams there for 30 s or more.
    const name = first.slice(2);
    const other = name === "u1" ? "u2" : "u1";
    const relabelled = pod(
      name,
      name === "u1" ? "node-1" : "node-2",
      "tier: gone",
      "[{name: dns, containerPort: 5353, protocol: UDP}]",
    );
    await labApply({ lab }, src(relabelled, "relabel.yaml"));
    for (let i = 0; i < 5; i++) assert.equal(await ask(), `s/${other}`);
  });
});
