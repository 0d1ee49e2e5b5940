import assert from "node:assert/strict";
import { test } from "node:test";
import { loadManifestText } from "../api/index.js";
import { planAddresses } from "./address-plan.js";
import { formatPlan } from "./format.js";
import { ownerOfAddress, peeringReachability } from "./peering.js";
import type { AddressPlan } from "./types.js";

function cluster(name: string, n: number, fabric: string, extra = ""): string {
  return `apiVersion: podnet.dev/v1alpha1
kind: Cluster
metadata: {name: ${name}}
spec:
  nodeCIDR: 172.31.${n}.0/24
  podCIDRs: [10.10${n}.0.0/16${extra}]
  serviceCIDRs: [10.20${n}.0.0/16]
  externalCIDR: 203.0.113.${(n - 1) * 64}/26
  loadBalancerCIDRs: [198.51.100.${(n - 1) * 64}/26]
  nodes: 1
  fabric: ${fabric}
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

function plan(text: string, previous?: AddressPlan): AddressPlan {
  const loaded = loadManifestText(text, "m.yaml");
  assert.deepEqual(
    loaded.diagnostics.filter((d) => d.severity === "error"),
    [],
  );
  return planAddresses(loaded.state, { previous });
}

test("routes over a peering: what the peer's router routes; pod ranges only when advertised", () => {
  const p = plan(
    cluster("c1", 1, ROUTED) +
      cluster("c2", 2, ROUTED) +
      cluster("c3", 3, "{mode: vxlan}") +
      peering("c1-c2", "c1", "c2", "192.0.2.0/30") +
      peering("c1-c3", "c1", "c3"),
  );
  assert.deepEqual(p.diagnostics, []);
  const [p12, p13] = p.peerings;
  assert.equal(p12?.transitCIDR, "192.0.2.0/30");
  assert.equal(p12?.transitFrom, "manifest");
  assert.deepEqual(
    p12?.sides.map((s) => s.address),
    ["192.0.2.1", "192.0.2.2"],
  );
  assert.deepEqual(
    p12?.sides[0].routes.map((r) => `${r.dst} via ${r.via}`),
    [
      "172.31.2.0/24 via 192.0.2.2",
      "10.102.0.0/16 via 192.0.2.2",
      "203.0.113.64/26 via 192.0.2.2",
      "198.51.100.64/26 via 192.0.2.2",
    ],
  );
  assert.deepEqual(p12?.sides[0].nonMasqueradeCIDRs, ["10.102.0.0/16"]);
  assert.deepEqual(p12?.sides[1].nonMasqueradeCIDRs, ["10.101.0.0/16"]);
  // The default pool's first /30 is taken by c1-c2: the next one.
  assert.equal(p13?.transitCIDR, "192.0.2.4/30");
  assert.equal(p13?.transitFrom, "allocated");
  const c1ToC3 = p13?.sides[0].routes.map((r) => r.dst) ?? [];
  assert.ok(!c1ToC3.includes("10.103.0.0/16"), "a vxlan cluster's pods are not routed");
  assert.ok(
    p13?.sides[1].routes.some((r) => r.dst === "10.101.0.0/16"),
    "c3 routes to c1's pods",
  );
  assert.deepEqual(p13?.sides[0].nonMasqueradeCIDRs, []);
  assert.deepEqual(p13?.sides[1].nonMasqueradeCIDRs, []);
});

test("reachability: routed both ways keeps the client IP; vxlan and unpeered say why", () => {
  const p = plan(
    cluster("c1", 1, ROUTED) +
      cluster("c2", 2, ROUTED) +
      cluster("c3", 3, "{mode: vxlan}") +
      cluster("c4", 4, "{mode: routed, advertiseToRouter: false, masquerade: false}") +
      peering("a", "c1", "c2") +
      peering("b", "c1", "c3") +
      peering("c", "c4", "c1"),
  );
  const r12 = peeringReachability(p, "c1", "c2");
  assert.deepEqual(
    [r12.peered, r12.nodesReachable, r12.podsAddressable, r12.clientIpKept],
    [true, true, true, true],
  );
  const r13 = peeringReachability(p, "c1", "c3");
  assert.deepEqual([r13.nodesReachable, r13.podsAddressable], [true, false]);
  assert.match(
    r13.reason,
    /^no: cluster c3 uses the vxlan fabric: its pod IPs \(10\.103\.0\.0\/16\) exist only inside c3/,
  );
  assert.match(r13.reason, /load-balancer IP \(198\.51\.100\.128\/26\) or a NodePort/);
  const r31 = peeringReachability(p, "c3", "c1");
  assert.deepEqual([r31.podsAddressable, r31.clientIpKept], [true, false]);
  assert.match(r31.reason, /^yes, masqueraded/);
  const r23 = peeringReachability(p, "c2", "c3");
  assert.equal(r23.peered, false);
  assert.match(r23.reason, /not peered.*declare a ClusterPeering with clusters: \[c2, c3\]/);
  const r41 = peeringReachability(p, "c4", "c1");
  assert.deepEqual([r41.nodesReachable, r41.podsAddressable], [false, false]);
  assert.match(r41.reason, /replies from c1 have no way back to c4's pods/);
  assert.deepEqual(ownerOfAddress(p, "10.103.0.9"), { cluster: "c3", what: "pod", cidr: "10.103.0.0/16" });
  // podnet plan prints the peerings and every ordered pair.
  const text = formatPlan(p);
  assert.match(
    text,
    /PEERING a: c1 \(192\.0\.2\.1\) <-> c2 \(192\.0\.2\.2\) over 192\.0\.2\.0\/30 \(allocated\)/,
  );
  assert.match(text, /c1 -> c3: nodes yes, pod IPs no\n {4}why: no: cluster c3 uses the vxlan fabric/);
});

test("transit networks: the default pool skips declared ranges, the previous plan is kept, overlaps are errors", () => {
  // c1's external network takes 192.0.2.0/26: allocation starts after it.
  const c1 = cluster("c1", 1, ROUTED).replace("203.0.113.0/26", "192.0.2.0/26");
  const first = plan(c1 + cluster("c2", 2, ROUTED) + peering("x", "c1", "c2"));
  assert.equal(first.peerings[0]?.transitCIDR, "192.0.2.64/30");
  // A peering inserted before it takes the next free block; x keeps its own.
  const again = plan(
    c1 +
      cluster("c2", 2, ROUTED) +
      cluster("c3", 3, ROUTED) +
      peering("y", "c2", "c3") +
      peering("x", "c1", "c2"),
    first,
  );
  assert.deepEqual(
    again.peerings.map((p) => `${p.name} ${p.transitCIDR} ${p.transitFrom}`),
    ["y 192.0.2.68/30 allocated", "x 192.0.2.64/30 previous"],
  );
  const clash = planAddresses(
    loadManifestText(
      cluster("c1", 1, ROUTED) + cluster("c2", 2, ROUTED) + peering("z", "c1", "c2", "172.31.2.0/30"),
      "m.yaml",
    ).state,
  );
  const error = clash.diagnostics.find((d) => d.code === "range-overlap");
  assert.equal(error?.object, "ClusterPeering z");
  assert.equal(error?.path, "spec.transitCIDR");
  assert.equal(error?.source?.line, 25);
  assert.match(
    error?.message ?? "",
    /transit CIDR of peering z 172\.31\.2\.0\/30 overlaps node CIDR 172\.31\.2\.0\/24 \(cluster c2\)/,
  );
});

test("dual-stack peers: IPv6 pod ranges are routed between clusters that both have IPv6", () => {
  const p = plan(
    cluster("c1", 1, ROUTED, ", fd00:101::/56").replace(
      "[10.201.0.0/16]",
      "[10.201.0.0/16, fd00:201::/112]",
    ) +
      cluster("c2", 2, ROUTED, ", fd00:102::/56").replace(
        "[10.202.0.0/16]",
        "[10.202.0.0/16, fd00:202::/112]",
      ) +
      peering("v6", "c1", "c2"),
  );
  assert.deepEqual(
    p.diagnostics.filter((d) => d.severity === "error"),
    [],
  );
  const side = p.peerings[0]?.sides[0];
  assert.ok(side?.routes.some((r) => r.dst === "fd00:102::/56"));
  assert.deepEqual(side?.nonMasqueradeCIDRs, ["10.102.0.0/16", "fd00:102::/56"]);
});
