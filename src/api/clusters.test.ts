/** Implicit cluster, nodes and namespaces; several clusters and the podnet.dev/cluster annotation. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { CLUSTER_ANNOTATION } from "./defaults.js";
import { loadManifestText } from "./loader.js";
import { errorsOf, show, yaml } from "./testutil.js";

const pod = (name: string, namespace: string, cluster?: string, nodeName?: string) => yaml`
  apiVersion: v1
  kind: Pod
  metadata:
    name: ${name}
    namespace: ${namespace}
    annotations: {${cluster ? `${CLUSTER_ANNOTATION}: ${cluster}` : ""}}
  spec:
    ${nodeName ? `nodeName: ${nodeName}` : "hostNetwork: false"}
    containers: [{name: c}]
`;

/** A Cluster with one node; `extra` lines go under spec. Six lines plus one per extra line. */
const cluster = (name: string, ...extra: string[]) =>
  [
    "apiVersion: podnet.dev/v1alpha1",
    "kind: Cluster",
    "metadata:",
    `  name: ${name}`,
    "spec:",
    "  nodes: 1",
    ...extra.map((l) => `  ${l}`),
    "",
  ].join("\n");

test("no Cluster: one implicit cluster `default` with two implicit nodes and the builtin namespaces", () => {
  const r = loadManifestText(pod("a", "default"), "c.yaml");
  assert.deepEqual(r.diagnostics, []);
  const s = r.state;
  assert.equal(s.clusters.length, 1);
  assert.equal(s.clusters[0]?.meta.name, "default");
  assert.equal(s.clusters[0]?.implicit, true);
  assert.equal(s.clusters[0]?.dns.serviceIP, "10.96.0.10");
  assert.deepEqual(
    s.nodes.map((n) => [n.meta.name, n.meta.cluster, n.implicit]),
    [
      ["node-1", "default", true],
      ["node-2", "default", true],
    ],
  );
  assert.deepEqual(
    s.namespaces.map((n) => [n.meta.name, n.implicit, n.meta.labels["kubernetes.io/metadata.name"]]),
    [
      ["default", true, "default"],
      ["kube-system", true, "kube-system"],
    ],
  );
  assert.equal(s.pods[0]?.meta.cluster, "default");
});

test("a namespace referenced but not declared is implicit, with one info per namespace", () => {
  const r = loadManifestText([pod("a", "shop"), pod("b", "shop"), pod("c", "blog")].join("---\n"), "c.yaml");
  assert.deepEqual(errorsOf(r.diagnostics), []);
  const infos = r.diagnostics.filter((d) => d.severity === "info");
  assert.deepEqual(
    infos.map((d) => [d.object, d.source?.line]),
    [
      ["Namespace shop", 1],
      ["Namespace blog", 21],
    ],
  );
  assert.match(infos[0]?.message ?? "", /namespace shop is not declared: podnet creates it/);
  assert.deepEqual(
    r.state.namespaces.map((n) => [n.meta.name, n.implicit]),
    [
      ["default", true],
      ["kube-system", true],
      ["shop", true],
      ["blog", true],
    ],
  );
});

test("a declared cluster gets spec.nodes implicit nodes; declared Nodes replace them", () => {
  const r = loadManifestText(
    cluster("lab", "fabric: {mode: vxlan}").replace("nodes: 1", "nodes: 3"),
    "c.yaml",
  );
  assert.deepEqual(r.diagnostics, []);
  assert.equal(r.state.clusters[0]?.implicit, false);
  assert.deepEqual(
    r.state.nodes.map((n) => n.meta.name),
    ["node-1", "node-2", "node-3"],
  );
  const withNodes = loadManifestText(
    `${cluster("lab")}---\n${yaml`
      apiVersion: v1
      kind: Node
      metadata:
        name: big-1
    `}`,
    "c.yaml",
  );
  assert.deepEqual(
    withNodes.state.nodes.map((n) => [n.meta.name, n.meta.cluster, n.implicit]),
    [["big-1", "lab", false]],
  );
  const w = withNodes.diagnostics.find((d) => d.severity === "warning");
  assert.equal(w?.path, "spec.nodes");
  assert.match(w?.message ?? "", /Node objects are declared/);
});

test("with one declared cluster the annotation is optional", () => {
  const r = loadManifestText(
    `${cluster("east")}---\n${pod("a", "default")}---\n${pod("b", "default", "east")}`,
    "c.yaml",
  );
  assert.deepEqual(errorsOf(r.diagnostics), [], show(r.diagnostics));
  assert.deepEqual(
    r.state.pods.map((p) => p.meta.cluster),
    ["east", "east"],
  );
});

test("with several clusters, every object names its cluster", () => {
  const text = [
    cluster("east"),
    cluster("west", "podCIDRs: [10.245.0.0/16]", "serviceCIDRs: [10.97.0.0/16]"),
    pod("a", "shop", "east"),
    pod("a", "shop", "west"), // same name in another cluster: not a duplicate
    pod("b", "shop"), // missing annotation
    pod("c", "shop", "north"), // unknown cluster
  ].join("---\n");
  const r = loadManifestText(text, "m.yaml");
  const errors = errorsOf(r.diagnostics);
  assert.equal(errors.length, 2, show(r.diagnostics));
  const [missing, unknown] = errors;
  assert.equal(missing?.object, "Pod shop/b");
  assert.equal(missing?.path, "metadata.annotations");
  assert.match(
    missing?.message ?? "",
    /missing annotation podnet\.dev\/cluster: the manifests declare 2 clusters \(east, west\)/,
  );
  assert.equal(unknown?.path, "metadata.annotations[podnet.dev/cluster]");
  assert.match(unknown?.message ?? "", /unknown cluster "north": declared clusters: east, west/);
  assert.deepEqual(
    r.state.pods.map((p) => `${p.meta.cluster}/${p.meta.name}`),
    ["east/a", "west/a"],
  );
  // Each cluster has its own nodes and namespaces.
  assert.deepEqual(
    r.state.nodes.map((n) => `${n.meta.cluster}/${n.meta.name}`),
    ["east/node-1", "west/node-1"],
  );
  assert.deepEqual(
    r.state.namespaces.filter((n) => n.meta.name === "shop").map((n) => n.meta.cluster),
    ["east", "west"],
  );
});

test("an unknown cluster with only the implicit cluster says so", () => {
  const errors = errorsOf(loadManifestText(pod("a", "default", "prod"), "c.yaml").diagnostics);
  assert.equal(errors.length, 1);
  assert.match(
    errors[0]?.message ?? "",
    /no Cluster object is declared \(the implicit cluster is "default"\)/,
  );
  assert.match(errors[0]?.hint ?? "", /declare a Cluster named prod/);
});

test("nodeName is checked within the pod's cluster", () => {
  const text = [
    cluster("east"),
    cluster("west", "podCIDRs: [10.245.0.0/16]", "serviceCIDRs: [10.97.0.0/16]"),
    yaml`
      apiVersion: v1
      kind: Node
      metadata:
        name: w1
        annotations: {podnet.dev/cluster: west}
    `,
    pod("a", "default", "west", "w1"),
    pod("b", "default", "east", "w1"),
  ].join("---\n");
  const errors = errorsOf(loadManifestText(text, "c.yaml").diagnostics);
  assert.equal(errors.length, 1, show(errors));
  assert.equal(errors[0]?.object, "Pod default/b");
  assert.match(errors[0]?.message ?? "", /node "w1" does not exist in cluster east/);
});

test("duplicate Clusters and duplicate objects in one cluster are errors", () => {
  const r = loadManifestText(
    [cluster("east"), cluster("east"), pod("a", "x"), pod("a", "x")].join("---\n"),
    "d.yaml",
  );
  const errors = errorsOf(r.diagnostics);
  assert.deepEqual(
    errors.map((d) => [d.object, d.source?.line]),
    [
      ["Cluster east", 11],
      ["Pod x/a", 28],
    ],
  );
  assert.match(errors[0]?.message ?? "", /duplicate Cluster east: first declared at d\.yaml:1/);
  assert.match(errors[1]?.message ?? "", /duplicate Pod x\/a: first declared at d\.yaml:15/);
});

const externalHost = (name: string, address: string, cluster: string) => yaml`
  apiVersion: podnet.dev/v1alpha1
  kind: ExternalHost
  metadata:
    name: ${name}
    annotations: {${CLUSTER_ANNOTATION}: ${cluster}}
  spec:
    address: ${address}
`;

test("ExternalHost addresses may lie outside the externalCIDR; hosts of one cluster may not share one", () => {
  const text = [
    cluster("east"),
    cluster("west", "podCIDRs: [10.245.0.0/16]", "serviceCIDRs: [10.97.0.0/16]"),
    externalHost("client", "10.96.100.7", "east"), // inside east's service range: the planner's concern
    externalHost("far", "192.0.2.10", "east"), // outside the externalCIDR 203.0.113.0/24
    externalHost("client", "10.96.100.7", "west"), // another cluster: not a duplicate
    externalHost("twin", "10.96.100.7", "east"),
  ].join("---\n");
  const r = loadManifestText(text, "x.yaml");
  const errors = errorsOf(r.diagnostics);
  assert.deepEqual(
    errors.map((d) => [d.object, d.path, d.source?.line]),
    [["ExternalHost twin", "spec.address", 47]],
    show(r.diagnostics),
  );
  assert.equal(
    errors[0]?.message,
    'Duplicate value: "10.96.100.7": ExternalHost client (x.yaml:17) already has address 10.96.100.7',
  );
  assert.deepEqual(
    r.state.externalHosts.map((h) => `${h.meta.cluster}/${h.meta.name} ${h.address}`),
    ["east/client 10.96.100.7", "east/far 192.0.2.10", "west/client 10.96.100.7", "east/twin 10.96.100.7"],
  );
});
