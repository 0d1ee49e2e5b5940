import assert from "node:assert/strict";
import { test } from "node:test";
import { loadManifestText } from "../api/index.js";
import { planAddresses } from "../plan/index.js";
import type { ClusterPlan } from "../plan/types.js";
import { fabricCommands, planFabric, routeLine, vtepMac } from "./plan.js";

function clusterPlan(spec: string): ClusterPlan {
  const yaml = `apiVersion: podnet.dev/v1alpha1\nkind: Cluster\nmetadata: {name: c}\nspec:\n${spec}\n`;
  const loaded = loadManifestText(yaml, "c.yaml");
  assert.deepEqual(
    loaded.diagnostics.filter((d) => d.severity === "error"),
    [],
  );
  return planAddresses(loaded.state).clusters[0] as ClusterPlan;
}

test("routed: each node routes every other node's block via that node; the router only when advertised", () => {
  const plan = planFabric(clusterPlan("  nodes: 3\n  fabric: {mode: routed}"));
  assert.deepEqual(plan.nodes[0]?.routes, [
    { dst: "10.244.1.0/24", via: "172.18.0.3", dev: "eth0", onlink: false },
    { dst: "10.244.2.0/24", via: "172.18.0.4", dev: "eth0", onlink: false },
  ]);
  assert.equal(plan.nodes[0]?.vxlan, undefined);
  assert.deepEqual(plan.routerRoutes, []);
  const advertised = planFabric(clusterPlan("  nodes: 2\n  fabric: {mode: routed, advertiseToRouter: true}"));
  assert.deepEqual(
    advertised.routerRoutes.map((r) => `${r.dst} via ${r.via}`),
    ["10.244.0.0/24 via 172.18.0.2", "10.244.1.0/24 via 172.18.0.3"],
  );
});

test("vxlan: device with MTU - 50, and per peer a route, a neighbour and an FDB entry", () => {
  const plan = planFabric(clusterPlan("  nodes: 2\n  fabric: {mode: vxlan, vni: 7, port: 8472, mtu: 1500}"));
  const n1 = plan.nodes[0];
  assert.ok(n1?.vxlan);
  assert.deepEqual(
    { ...n1.vxlan, mac: undefined },
    {
      name: "vxlan0",
      vni: 7,
      port: 8472,
      local: "172.18.0.2",
      dev: "eth0",
      mtu: 1450,
      mac: undefined,
      addresses: ["10.244.0.0/32"],
    },
  );
  const peerMac = vtepMac("c", "node-2");
  assert.deepEqual(n1.routes, [{ dst: "10.244.1.0/24", via: "10.244.1.0", dev: "vxlan0", onlink: true }]);
  assert.deepEqual(n1.neighbors, [{ ip: "10.244.1.0", mac: peerMac, dev: "vxlan0" }]);
  assert.deepEqual(n1.fdb, [{ mac: peerMac, dst: "172.18.0.3", dev: "vxlan0" }]);
  assert.deepEqual(plan.routerRoutes, [], "overlay pods are not addressable from outside");
  assert.deepEqual(fabricCommands(n1), {
    ip: [
      "link add vxlan0 type vxlan id 7 dstport 8472 local 172.18.0.2 dev eth0 nolearning",
      `link set vxlan0 address ${n1.vxlan.mac} mtu 1450 up`,
      "addr replace 10.244.0.0/32 dev vxlan0",
      `neigh replace 10.244.1.0 lladdr ${peerMac} dev vxlan0 nud permanent`,
      "route replace 10.244.1.0/24 via 10.244.1.0 dev vxlan0 onlink",
    ],
    bridge: [`fdb append ${peerMac} dev vxlan0 dst 172.18.0.3`],
  });
});

test("IPv6 pod blocks route via the link-local twin of the peer's IPv4 underlay address", () => {
  // This kernel rejects IPv6 routes with IPv4 next hops (RTA_VIA): the lab gives eth0 fe80::<IPv4>.
  assert.equal(
    routeLine({ dst: "fd00:10:244:1::/64", via: "172.18.0.3", dev: "eth0", onlink: false }),
    "route replace fd00:10:244:1::/64 via fe80::ac12:3 dev eth0",
  );
  const plan = planFabric(clusterPlan("  nodes: 2\n  podCIDRs: [10.244.0.0/16, fd00:10:244::/56]"));
  assert.deepEqual(
    plan.nodes[1]?.routes.map((r) => r.dst),
    ["10.244.0.0/24", "fd00:10:244::/64"],
  );
});
