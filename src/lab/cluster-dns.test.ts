import assert from "node:assert/strict";
import { test } from "node:test";
import { loadManifestText } from "../api/index.js";
import { parseDnsConfig } from "../dns/server/config.js";
import { planAddresses } from "../plan/index.js";
import { clusterDnsConfig, clusterDnsObjects, podResolvConf } from "./cluster-dns.js";
import { candidateNames, parseResolvConf } from "./resolve.js";
import { objectsOf, type StoredObject } from "./store.js";

const stored = (value: Record<string, unknown>): StoredObject => ({ key: "", value, from: "t.yaml:1" });
const cluster = (name: string) => stored({ kind: "Cluster", metadata: { name } });

test("clusterDnsObjects: a DNS pod and kube-dns per cluster, annotated when there are several", () => {
  const one = clusterDnsObjects([cluster("a")]);
  assert.deepEqual(
    one.map((o) => `${o.kind} ${(o.metadata as { name: string }).name}`),
    ["Pod cluster-dns", "Service kube-dns"],
  );
  const two = clusterDnsObjects([cluster("a"), cluster("b")]);
  assert.deepEqual(
    two.map((o) => (o.metadata as { annotations: Record<string, string> }).annotations["podnet.dev/cluster"]),
    ["a", "a", "b", "b"],
  );
  // A cluster that declares its own kube-dns keeps it.
  const own = stored({
    kind: "Service",
    metadata: { name: "kube-dns", namespace: "kube-system", annotations: { "podnet.dev/cluster": "b" } },
  });
  assert.equal(clusterDnsObjects([cluster("a"), cluster("b"), own]).length, 2);
});

test("the DNS objects load and plan: kube-dns gets the reserved 10th address of the service range", () => {
  const text = `apiVersion: podnet.dev/v1alpha1
kind: Cluster
metadata: {name: c}
spec: {serviceCIDRs: [10.43.0.0/16]}
`;
  const extra = clusterDnsObjects([cluster("c")])
    .map((o) => JSON.stringify(o))
    .join("\n---\n");
  const loaded = loadManifestText(`${text}---\n${extra}`, "t.yaml");
  assert.deepEqual(
    loaded.diagnostics.filter((d) => d.severity === "error"),
    [],
  );
  const plan = planAddresses(loaded.state).clusters[0];
  assert.equal(plan?.dnsServiceIP, "10.43.0.10");
  assert.deepEqual(plan?.services.find((s) => s.name === "kube-dns")?.clusterIPs, ["10.43.0.10"]);
  assert.equal(
    podResolvConf("shop", plan as NonNullable<typeof plan>),
    "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.43.0.10\noptions ndots:5\n",
  );
  const c = loaded.state.clusters[0] as (typeof loaded.state.clusters)[number];
  const config = clusterDnsConfig(
    {
      ...c,
      dns: {
        ...c.dns,
        forward: [{ zone: "remote.svc.cluster.local", servers: ["10.1.0.10"] }],
        upstream: ["192.0.2.53"],
      },
    },
    ["10.42.0.5"],
  );
  const parsed = parseDnsConfig(config, "generated");
  assert.deepEqual(parsed.diagnostics, []);
  assert.match(config, /forward remote\.svc\.cluster\.local 10\.1\.0\.10/);
});

test("resolv.conf: search first when the name has fewer dots than ndots, as glibc", () => {
  const conf = parseResolvConf(
    "search a.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n",
  );
  assert.deepEqual(conf, {
    nameservers: ["10.96.0.10"],
    search: ["a.svc.cluster.local", "svc.cluster.local", "cluster.local"],
    ndots: 5,
  });
  assert.deepEqual(candidateNames("web", conf).slice(0, 2), [
    "web.a.svc.cluster.local",
    "web.svc.cluster.local",
  ]);
  assert.equal(candidateNames("web", conf).at(-1), "web");
  assert.deepEqual(candidateNames("a.b.c.d.e.f", conf)[0], "a.b.c.d.e.f");
  assert.deepEqual(candidateNames("web.shop.svc.cluster.local.", conf), ["web.shop.svc.cluster.local"]);
});

/** c1 forwards remote.svc.cluster.local to c2 (`forward` under c1's spec.dns); c2 `c2fabric`, peered. */
function twoClusters(forward: string, c2extra: string, peered = true): string {
  const lines = [
    "apiVersion: podnet.dev/v1alpha1",
    "kind: Cluster",
    "metadata: {name: c1}",
    "spec:",
    "  nodeCIDR: 172.31.1.0/24",
    "  podCIDRs: [10.71.0.0/16]",
    "  serviceCIDRs: [10.72.0.0/16]",
    "  externalCIDR: 198.18.0.0/26",
    "  loadBalancerCIDRs: [198.18.0.64/26]",
    `  dns: {forward: [${forward}]}`,
    "---",
    "apiVersion: podnet.dev/v1alpha1",
    "kind: Cluster",
    "metadata: {name: c2}",
    "spec:",
    "  nodeCIDR: 172.31.2.0/24",
    "  podCIDRs: [10.73.0.0/16]",
    "  serviceCIDRs: [10.74.0.0/16]",
    "  externalCIDR: 198.18.0.128/26",
    "  loadBalancerCIDRs: [198.18.0.192/26]",
    "  nodes: 2",
    ...c2extra.split("\n").map((l) => `  ${l}`),
  ];
  if (peered)
    lines.push(
      "---",
      "apiVersion: podnet.dev/v1alpha1",
      "kind: ClusterPeering",
      "metadata: {name: p}",
      "spec: {clusters: [c1, c2]}",
    );
  return `${lines.join("\n")}\n`;
}

/** Loads like the lab does (with its DNS objects), plans, and makes c1's DNS configuration. */
function c1Config(text: string): { config: string; problems: string[]; objects: Record<string, unknown>[] } {
  const objects = clusterDnsObjects(objectsOf([{ file: "t.yaml", text }], []));
  const loaded = loadManifestText(
    `${text}---\n${objects.map((o) => JSON.stringify(o)).join("\n---\n")}`,
    "t.yaml",
  );
  assert.deepEqual(
    loaded.diagnostics.filter((d) => d.severity === "error"),
    [],
  );
  const plan = planAddresses(loaded.state);
  assert.deepEqual(
    plan.diagnostics.filter((d) => d.severity === "error"),
    [],
  );
  const problems: string[] = [];
  const c1 = loaded.state.clusters[0] as (typeof loaded.state.clusters)[number];
  const config = clusterDnsConfig(c1, ["10.71.0.2"], { lab: "lx", plan }, problems);
  return { config, problems, objects };
}

test("forward to a routed, advertised, peered cluster: its DNS pod's IP; over TLS with the lab CA and names", () => {
  const plain = c1Config(
    twoClusters(
      "{zone: remote.svc.cluster.local, cluster: c2}",
      "fabric: {mode: routed, advertiseToRouter: true}",
    ),
  );
  assert.deepEqual(plain.problems, []);
  assert.match(plain.config, /^ {4}forward remote\.svc\.cluster\.local 10\.73\.\d+\.\d+:53$/m);
  assert.deepEqual(parseDnsConfig(plain.config, "generated").diagnostics, []);
  // c2 is forwarded to: it gets the peering NodePort Service (TCP 53).
  const peering = plain.objects.find((o) => (o.metadata as { name: string }).name === "kube-dns-peering");
  assert.ok(peering);
  assert.deepEqual(
    (peering.spec as { ports: { name: string }[] }).ports.map((p) => p.name),
    ["dns-tcp"],
  );
  assert.equal(
    (peering.metadata as { annotations: Record<string, string> }).annotations["podnet.dev/cluster"],
    "c2",
  );

  const tls = c1Config(
    twoClusters(
      "{zone: remote.svc.cluster.local, cluster: c2, tls: {}}",
      "fabric: {mode: routed, advertiseToRouter: true}\ndns: {tls: {clientAuth: require}}",
    ),
  );
  assert.deepEqual(tls.problems, []);
  assert.match(
    tls.config,
    new RegExp(
      [
        "forward remote\\.svc\\.cluster\\.local tls://10\\.73\\.\\d+\\.\\d+:853 \\{",
        " {8}tls /run/podnet/labs/lx/pki/dns\\.c1\\.lx\\.pem /run/podnet/labs/lx/pki/dns\\.c1\\.lx-key\\.pem /run/podnet/labs/lx/pki/ca\\.pem",
        " {8}tls_servername dns\\.c2\\.lx",
        " {4}\\}",
      ].join("\n"),
    ),
  );
  assert.deepEqual(parseDnsConfig(tls.config, "generated").diagnostics, []);
  // The DNS pod of c2 declares 853 and its peering Service carries it too.
  const dnsPod = tls.objects.find(
    (o) =>
      o.kind === "Pod" &&
      (o.metadata as { annotations: Record<string, string> }).annotations["podnet.dev/cluster"] === "c2",
  );
  assert.match(JSON.stringify(dnsPod), /"dns-tls","containerPort":853/);
});

test("forward to an overlay cluster: every node with the peering NodePort, TCP, failover; unpeered: none", () => {
  const r = c1Config(twoClusters("{zone: remote.svc.cluster.local, cluster: c2}", "fabric: {mode: vxlan}"));
  assert.deepEqual(r.problems, []);
  const m =
    /forward remote\.svc\.cluster\.local (172\.31\.2\.\d+):(\d+) (172\.31\.2\.\d+):(\d+) \{\n {8}policy sequential\n {8}failover SERVFAIL REFUSED\n {8}force_tcp\n {4}\}/.exec(
      r.config,
    );
  assert.ok(m, r.config);
  assert.equal(m[2], m[4], "the same NodePort on every node");
  assert.ok(Number(m[2]) >= 30000 && Number(m[2]) <= 32767);
  assert.deepEqual(parseDnsConfig(r.config, "generated").diagnostics, []);
  const unpeered = c1Config(
    twoClusters(
      "{zone: remote.svc.cluster.local, cluster: c2}",
      "fabric: {mode: routed, advertiseToRouter: true}",
      false,
    ),
  );
  assert.doesNotMatch(unpeered.config, /forward remote/);
  assert.match(
    unpeered.problems.join("\n"),
    /^zone remote\.svc\.cluster\.local is not forwarded to cluster c2: cluster c2 is not reachable from c1: no: clusters c1 and c2 are not peered/,
  );
});

test("the serving side: a tls:// block on 853 with the cluster's certificate; clientAuth require", () => {
  const text = twoClusters(
    "{zone: remote.svc.cluster.local, cluster: c2, tls: {}}",
    "dns: {tls: {clientAuth: require}}",
  );
  const loaded = loadManifestText(text, "t.yaml");
  const c2 = loaded.state.clusters[1] as (typeof loaded.state.clusters)[number];
  const config = clusterDnsConfig(c2, ["10.73.0.5"], {
    lab: "lx",
    plan: { clusters: [], peerings: [], diagnostics: [] },
  });
  assert.match(
    config,
    /^tls:\/\/\.:853 \{\n {4}bind 10\.73\.0\.5\n {4}tls \/run\/podnet\/labs\/lx\/pki\/dns\.c2\.lx\.pem \S+-key\.pem \/run\/podnet\/labs\/lx\/pki\/ca\.pem \{\n {8}client_auth require_and_verify\n {4}\}\n {4}kubernetes cluster\.local/m,
  );
  const parsed = parseDnsConfig(config, "generated");
  assert.deepEqual(parsed.diagnostics, []);
  assert.deepEqual(
    parsed.config?.servers.map((b) => [b.transport, b.port, b.tls?.clientAuth]),
    [
      ["dns", 53, undefined],
      ["tls", 853, "require_and_verify"],
    ],
  );
  // A forward to a cluster that is not planned yet is left out, and said so.
  const problems: string[] = [];
  const c1 = loaded.state.clusters[0] as (typeof loaded.state.clusters)[number];
  const c1config = clusterDnsConfig(
    c1,
    ["10.71.0.2"],
    { lab: "lx", plan: { clusters: [], peerings: [], diagnostics: [] } },
    problems,
  );
  assert.doesNotMatch(c1config, /forward remote/);
  assert.deepEqual(problems, [
    "zone remote.svc.cluster.local is not forwarded to cluster c2: cluster c2 is not planned",
  ]);
});
