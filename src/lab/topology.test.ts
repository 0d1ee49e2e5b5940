import assert from "node:assert/strict";
import { test } from "node:test";
import { loadManifestText } from "../api/index.js";
import { planAddresses } from "../plan/index.js";
import type { ClusterPlan } from "../plan/types.js";
import { netnsNames } from "./names.js";
import { masqueradeRuleset, nodeConfList, planTopology } from "./topology.js";

function cluster(fabric: string, extra = ""): ClusterPlan {
  const yaml = `apiVersion: podnet.dev/v1alpha1
kind: Cluster
metadata: {name: c}
spec:
  nodeCIDR: 172.18.0.0/24
  podCIDRs: [10.244.0.0/16]
  serviceCIDRs: [10.96.0.0/12]
  nodes: 2
  fabric: ${fabric}
---
apiVersion: podnet.dev/v1alpha1
kind: ExternalHost
metadata: {name: web}
spec: {ports: [{port: 80}]}
${extra}`;
  const loaded = loadManifestText(yaml, "c.yaml");
  assert.deepEqual(
    loaded.diagnostics.filter((d) => d.severity === "error"),
    [],
  );
  return planAddresses(loaded.state).clusters[0] as ClusterPlan;
}

test("routed with advertiseToRouter: underlay, two nodes, one external host; router routes the pod blocks", () => {
  const c = cluster("{mode: routed, advertiseToRouter: true}");
  const t = planTopology("lab", c);
  assert.deepEqual(
    t.namespaces.map((n) => `${n.role}:${n.name}`),
    [
      "underlay:pn.lab.c.underlay",
      `node:${netnsNames.node("lab", "c", c.nodes[0]?.name ?? "")}`,
      `node:${netnsNames.node("lab", "c", c.nodes[1]?.name ?? "")}`,
      "external:pn.lab.c.ext.web",
    ],
  );
  // Every link is created directly inside the lab's namespaces: nothing in the root namespace.
  assert.equal(t.links.length, 3);
  for (const l of t.links)
    assert.match(
      l,
      /^link add \S+ mtu 1500 netns pn\.lab\.c\.underlay type veth peer name eth0 mtu 1500 netns pn\.lab\.c\./,
    );
  const underlay = t.namespaces[0];
  assert.ok(underlay?.ip.includes("addr replace 172.18.0.1/24 dev sw0"));
  const routes = underlay?.ip.filter((l) => l.startsWith("route replace")) ?? [];
  assert.deepEqual(
    routes,
    c.nodes.map((n) => `route replace ${n.podCIDRs[0]} via ${n.address} dev sw0`),
  );
  // No default route anywhere in the underlay: nothing leaves the lab.
  assert.ok(!underlay?.ip.some((l) => l.includes("default")));
  const node = t.namespaces[1];
  assert.ok(node?.ip.includes("route replace default via 172.18.0.1 dev eth0"));
  assert.equal(node?.sysctls["net.ipv4.ip_forward"], "1");
  const ext = t.namespaces[3];
  assert.ok(ext?.ip.some((l) => /^route replace default via \S+ dev eth0$/.test(l)));
});

test("routed without advertiseToRouter and vxlan: the router knows no pod block", () => {
  for (const fabric of ["{mode: routed}", "{mode: vxlan}"]) {
    const t = planTopology("lab", cluster(fabric));
    assert.ok(!t.namespaces[0]?.ip.some((l) => l.startsWith("route replace 10.244.")), fabric);
  }
});

test("vxlan: each node gets the device, its peers' neighbours, FDB entries and routes", () => {
  const c = cluster("{mode: vxlan, vni: 42, port: 8472}");
  const node = planTopology("lab", c).namespaces[1];
  assert.ok(
    node?.ip.some((l) =>
      /^link add vxlan0 type vxlan id 42 dstport 8472 local 172\.18\.0\.\d+ dev eth0 nolearning$/.test(l),
    ),
  );
  assert.ok(node?.ip.some((l) => l.includes("mtu 1450")));
  assert.equal(node?.bridge.length, 1);
  assert.equal(c.fabric.podMTU, 1450);
});

test("masquerade: pod sources to anything outside the pod, service and node ranges", () => {
  const c = cluster("{mode: routed}");
  const rules = masqueradeRuleset(c);
  assert.match(
    rules,
    /ip saddr \{ 10\.244\.0\.0\/16 \} ip daddr != \{ 10\.244\.0\.0\/16, 10\.96\.0\.0\/12, 172\.18\.0\.0\/24 \} oifname "eth0" masquerade/,
  );
  assert.doesNotMatch(rules, /ip6/);
  assert.equal(
    planTopology("lab", cluster("{mode: routed, masquerade: false}")).namespaces[1]?.nft,
    undefined,
  );
});

test("the node's CNI configuration: podnet + podnet-ipam on the node's block, the fabric's MTU, ips capability", () => {
  const c = cluster("{mode: vxlan}");
  const node = c.nodes[0];
  const list = nodeConfList(c, node?.name ?? "", "/run/x/ipam") as { plugins: Record<string, unknown>[] };
  const plugin = list.plugins[0] as {
    type: string;
    mtu: number;
    capabilities: unknown;
    ipam: { ranges: unknown };
  };
  assert.equal(plugin.type, "podnet");
  assert.equal(plugin.mtu, 1450);
  assert.deepEqual(plugin.capabilities, { ips: true });
  assert.deepEqual(plugin.ipam.ranges, [[{ subnet: node?.podCIDRs[0], gateway: node?.gateways[0] }]]);
});

test("LB IPs: the router routes them to every node (Cluster) or to nodes with a ready endpoint (Local)", async () => {
  const { planServiceRoutes, serviceRouteLines } = await import("./service-routes.js");
  const yaml = `apiVersion: podnet.dev/v1alpha1
kind: Cluster
metadata: {name: c}
spec: {nodeCIDR: 172.18.0.0/24, nodes: 2}
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: default, labels: {app: a}}
spec: {nodeName: node-2, containers: [{name: c, image: x, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: all, namespace: default}
spec: {type: LoadBalancer, selector: {app: a}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: local, namespace: default}
spec: {type: LoadBalancer, externalTrafficPolicy: Local, selector: {app: a}, ports: [{port: 80}]}
`;
  const loaded = loadManifestText(yaml, "lb.yaml");
  const c = planAddresses(loaded.state).clusters[0] as ClusterPlan;
  const routes = planServiceRoutes(loaded.state, c);
  const node2 = c.nodes.find((n) => n.name === "node-2")?.address;
  assert.deepEqual(
    routes.map((r) => [r.service, r.via]),
    [
      ["default/all", c.nodes.map((n) => n.address)],
      ["default/local", [node2]],
    ],
  );
  const lines = serviceRouteLines(routes, "sw0");
  assert.equal(lines[0], "route flush proto 99");
  assert.match(
    lines[1] ?? "",
    /^route replace \S+\/32 proto 99 nexthop via \S+ dev sw0 nexthop via \S+ dev sw0$/,
  );
  assert.match(lines[2] ?? "", new RegExp(`^route replace \\S+/32 via ${node2} dev sw0 proto 99$`));
});
