import assert from "node:assert/strict";
import { test } from "node:test";
import { loadManifestText } from "./loader.js";
import { errorsOf, show, yaml } from "./testutil.js";

const clusters = yaml`
  apiVersion: podnet.dev/v1alpha1
  kind: Cluster
  metadata: {name: c1}
  spec: {nodeCIDR: 172.31.1.0/24, podCIDRs: [10.101.0.0/16], serviceCIDRs: [10.201.0.0/16]}
  ---
  apiVersion: podnet.dev/v1alpha1
  kind: Cluster
  metadata: {name: c2}
  spec: {nodeCIDR: 172.31.2.0/24, podCIDRs: [10.102.0.0/16], serviceCIDRs: [10.202.0.0/16], externalCIDR: 203.0.113.64/26, loadBalancerCIDRs: []}
`;

function load(peerings: string) {
  return loadManifestText(`${clusters}---\n${peerings}`, "p.yaml");
}

test("a ClusterPeering is read into state.peerings, in no cluster", () => {
  const r = load(yaml`
    apiVersion: podnet.dev/v1alpha1
    kind: ClusterPeering
    metadata: {name: c1-c2}
    spec: {clusters: [c1, c2], transitCIDR: 192.0.2.0/30}
  `);
  assert.deepEqual(errorsOf(r.diagnostics), [], show(r.diagnostics));
  assert.equal(r.state.peerings.length, 1);
  const p = r.state.peerings[0];
  assert.deepEqual(p?.clusters, ["c1", "c2"]);
  assert.equal(p?.transitCIDR, "192.0.2.0/30");
  assert.equal(p?.meta.cluster, "");
  assert.equal(p?.meta.source?.line, 11);
});

test("bad peerings: every problem with file:line, field and fix", () => {
  const r = load(yaml`
    apiVersion: podnet.dev/v1alpha1
    kind: ClusterPeering
    metadata: {name: unknown}
    spec:
      clusters: [c1, c9]
    ---
    apiVersion: podnet.dev/v1alpha1
    kind: ClusterPeering
    metadata: {name: self}
    spec:
      clusters: [c1, c1]
    ---
    apiVersion: podnet.dev/v1alpha1
    kind: ClusterPeering
    metadata: {name: three}
    spec:
      clusters: [c1, c2, c3]
    ---
    apiVersion: podnet.dev/v1alpha1
    kind: ClusterPeering
    metadata: {name: first}
    spec:
      clusters: [c1, c2]
    ---
    apiVersion: podnet.dev/v1alpha1
    kind: ClusterPeering
    metadata: {name: again}
    spec:
      clusters: [c2, c1]
    ---
    apiVersion: podnet.dev/v1alpha1
    kind: ClusterPeering
    metadata: {name: types}
    spec:
      clusters: c1
      transitCIDR: 2001:db8::/64
      typo: 1
    ---
    apiVersion: podnet.dev/v1alpha1
    kind: ClusterPeering
    metadata: {name: narrow}
    spec:
      clusters: [c1, c2]
      transitCIDR: 192.0.2.8/32
  `);
  const errors = errorsOf(r.diagnostics);
  const at = (line: number) => errors.filter((d) => d.source?.line === line);
  // Line numbers: the two clusters take 9 lines, the separator one.
  const unknown = at(15)[0];
  assert.match(unknown?.message ?? "", /unknown cluster "c9": declared clusters: c1, c2/);
  assert.equal(unknown?.path, "spec.clusters[1]");
  assert.match(unknown?.hint ?? "", /name one of: c1, c2/);
  assert.match(at(21)[0]?.message ?? "", /Duplicate value: "c1": a cluster cannot peer with itself/);
  assert.match(at(27)[0]?.message ?? "", /exactly two clusters, found 3/);
  const again = at(39)[0];
  assert.match(
    again?.message ?? "",
    /clusters c2 and c1 are already peered by ClusterPeering first \(p\.yaml:29\)/,
  );
  assert.match(at(45)[0]?.message ?? "", /expected a list, found a string/);
  assert.match(at(46)[0]?.message ?? "", /transit network must be IPv4/);
  assert.match(at(47)[0]?.message ?? "", /unknown field "typo"/);
  assert.match(at(54)[0]?.message ?? "", /a \/32 holds fewer than the two router addresses/);
  // The three bad ones at the last step (duplicate pair and narrow) are not peerings.
  assert.deepEqual(
    r.state.peerings.map((p) => p.meta.name),
    ["first"],
  );
});
