// The lab's side of peerings, as plain data: the veth between two routers, addresses, routes, and the
// nodes' masquerade exceptions; and external hosts whose fixed address lies outside the external network.
import assert from "node:assert/strict";
import { test } from "node:test";
import { loadManifestText } from "../api/index.js";
import { planAddresses } from "../plan/index.js";
import type { AddressPlan } from "../plan/types.js";
import { peeringLinkName } from "./names.js";
import { masqueradeRuleset, planTopology, ROUTER_ROUTE_PROTO } from "./topology.js";

const text = `apiVersion: podnet.dev/v1alpha1
kind: Cluster
metadata: {name: c1}
spec: {nodeCIDR: 172.31.1.0/24, podCIDRs: [10.101.0.0/16, fd00:101::/56], serviceCIDRs: [10.201.0.0/16, fd00:201::/112], externalCIDR: 203.0.113.0/26, loadBalancerCIDRs: [], nodes: 1, fabric: {mode: routed, advertiseToRouter: true, mtu: 1400}}
---
apiVersion: podnet.dev/v1alpha1
kind: Cluster
metadata: {name: c2}
spec: {nodeCIDR: 172.31.2.0/24, podCIDRs: [10.102.0.0/16, fd00:102::/56], serviceCIDRs: [10.202.0.0/16, fd00:202::/112], externalCIDR: 203.0.113.64/26, loadBalancerCIDRs: [], nodes: 1, fabric: {mode: routed, advertiseToRouter: true}}
---
apiVersion: podnet.dev/v1alpha1
kind: ClusterPeering
metadata: {name: c1-c2}
spec: {clusters: [c1, c2], transitCIDR: 192.0.2.0/30}
---
apiVersion: podnet.dev/v1alpha1
kind: ExternalHost
metadata: {name: far, annotations: {podnet.dev/cluster: c2}}
spec: {address: 100.64.0.7}
`;

function plan(): AddressPlan {
  const loaded = loadManifestText(text, "m.yaml");
  assert.deepEqual(
    loaded.diagnostics.filter((d) => d.severity === "error"),
    [],
  );
  return planAddresses(loaded.state);
}

test("the first cluster creates the veth between both routers; each router routes the peer's ranges", () => {
  const p = plan();
  const peering = p.peerings[0];
  assert.ok(peering);
  const mtuOf = (c: string) => p.clusters.find((x) => x.name === c)?.fabric.underlayMTU ?? 0;
  const [t1, t2] = p.clusters.map((c) => planTopology("lab", c, [], p.peerings, mtuOf));
  const l1 = peeringLinkName(peering, "c1");
  const l2 = peeringLinkName(peering, "c2");
  assert.ok(
    t1?.links.includes(
      `link add ${l1} mtu 1400 netns pn.lab.c1.underlay type veth peer name ${l2} mtu 1400 netns pn.lab.c2.underlay`,
    ),
  );
  assert.ok(!t2?.links.some((l) => l.includes(l1)), "only one side creates the pair");
  const r1 = t1?.namespaces[0];
  assert.ok(r1?.ip.includes(`addr replace 192.0.2.1/30 dev ${l1}`));
  assert.ok(
    r1?.ip.includes(`route replace 10.102.0.0/16 via 192.0.2.2 dev ${l1} proto ${ROUTER_ROUTE_PROTO}`),
  );
  // IPv6 over an IPv4 transit: the link-local twin of the peer's address.
  assert.ok(r1?.ip.includes(`addr replace fe80::c000:201/64 dev ${l1} nodad`));
  assert.ok(
    r1?.ip.includes(`route replace fd00:102::/56 via fe80::c000:202 dev ${l1} proto ${ROUTER_ROUTE_PROTO}`),
  );
  // c2's external host outside its external network is routed by c2 and, over the peering, by c1.
  assert.ok(
    r1?.ip.includes(`route replace 100.64.0.7/32 via 192.0.2.2 dev ${l1} proto ${ROUTER_ROUTE_PROTO}`),
  );
  assert.deepEqual(r1?.router?.peeringLinks, [l1]);
  // Nodes send IPv6 beyond the cluster to the router, as IPv4 (only with IPv6 peers).
  assert.ok(r1?.ip.includes("addr replace fe80::ac1f:101/64 dev sw0 nodad"));
  assert.ok(t1?.namespaces[1]?.ip.includes("route replace ::/0 via fe80::ac1f:101 dev eth0"));
  const r2 = t2?.namespaces[0];
  assert.ok(r2?.ip.includes(`route replace 100.64.0.7/32 dev ext0 proto ${ROUTER_ROUTE_PROTO}`));
  assert.ok(r2?.router?.routeDsts.includes("100.64.0.7/32"));
  const far = t2?.namespaces.find((n) => n.object === "far");
  assert.deepEqual(far?.ip.slice(2), [
    "addr replace 100.64.0.7/32 dev eth0",
    "link set eth0 up",
    far?.ip[4],
    "route replace 203.0.113.65/32 dev eth0",
    "route replace default via 203.0.113.65 dev eth0",
  ]);
});

test("nodes do not masquerade pods to a peer's routed pod ranges", () => {
  const p = plan();
  const c1 = p.clusters[0];
  assert.ok(c1);
  const rules = masqueradeRuleset(c1, p.peerings[0]?.sides[0].nonMasqueradeCIDRs);
  assert.match(
    rules,
    /ip daddr != \{ 10\.101\.0\.0\/16, 10\.201\.0\.0\/16, 172\.31\.1\.0\/24, 10\.102\.0\.0\/16 \}/,
  );
  assert.match(rules, /ip6 daddr != \{ fd00:101::\/56, fd00:201::\/112, fd00:102::\/56 \}/);
});
