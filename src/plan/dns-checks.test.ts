import assert from "node:assert/strict";
import { test } from "node:test";
import { formatDiagnostic } from "../api/diagnostics.js";
import { loadManifestText } from "../api/index.js";
import { checkDnsForwards, shadowedNamespaces } from "./dns-checks.js";

/** Two clusters; c1 has `dns` (YAML lines under spec.dns, indented by 4) and the namespace `remote`. */
function manifests(dns: string[], c2 = "  dns: {tls: {}}"): string {
  return [
    "apiVersion: podnet.dev/v1alpha1",
    "kind: Cluster",
    "metadata: {name: c1}",
    "spec:",
    "  nodeCIDR: 172.31.1.0/24",
    "  podCIDRs: [10.71.0.0/16]",
    "  serviceCIDRs: [10.72.0.0/16]",
    "  dns:",
    ...dns.map((l) => `    ${l}`),
    "---",
    "apiVersion: podnet.dev/v1alpha1",
    "kind: Cluster",
    "metadata: {name: c2}",
    "spec:",
    "  nodeCIDR: 172.31.2.0/24",
    "  podCIDRs: [10.73.0.0/16]",
    "  serviceCIDRs: [10.74.0.0/16]",
    c2,
    "---",
    "apiVersion: v1",
    "kind: Namespace",
    "metadata: {name: remote, annotations: {podnet.dev/cluster: c1}}",
    "",
  ].join("\n");
}

const load = (dns: string[], c2?: string) => loadManifestText(manifests(dns, c2), "m.yaml");
const errors = (dns: string[], c2?: string) =>
  load(dns, c2)
    .diagnostics.filter((d) => d.severity === "error")
    .map(formatDiagnostic);

test("forward to a cluster: read with its entry's line; tls {} and the serving side's clientAuth", () => {
  const r = load(
    ["forward:", "- zone: other.svc.cluster.local", "  cluster: c2", "  tls: {}"],
    "  dns: {tls: {clientAuth: require}}",
  );
  assert.deepEqual(
    r.diagnostics.filter((d) => d.severity === "error"),
    [],
  );
  const [c1, c2] = r.state.clusters;
  assert.deepEqual(c1?.dns.forward[0]?.source, { file: "m.yaml", line: 10 });
  assert.deepEqual(c1?.dns.forward, [
    {
      zone: "other.svc.cluster.local",
      servers: [],
      cluster: "c2",
      tls: {},
      source: { file: "m.yaml", line: 10 },
    },
  ]);
  assert.deepEqual(c2?.dns.tls, { clientAuth: "require" });
  assert.deepEqual(checkDnsForwards(r.state), []);
});

test("forward entries: servers and cluster both or neither, itself, bad names, tls with servers", () => {
  assert.match(
    errors(["forward:", "- {zone: a.svc.cluster.local, cluster: c2, servers: [10.0.0.1]}"]).join("\n"),
    /m\.yaml:10: error: Cluster c1: spec\.dns\.forward\[0\]\.cluster: give either servers or cluster, not both/,
  );
  assert.match(
    errors(["forward:", "- {zone: a.svc.cluster.local}"]).join("\n"),
    /m\.yaml:10: error: .*spec\.dns\.forward\[0\]\.servers: Required value: at least one server, or cluster\n {4}fix: .*cluster: c2/,
  );
  assert.match(
    errors(["forward:", "- {zone: a.svc.cluster.local, cluster: c1}"]).join("\n"),
    /spec\.dns\.forward\[0\]\.cluster: cluster c1 cannot forward a zone to its own DNS/,
  );
  assert.match(
    errors(["forward:", "- {zone: 'not a zone', cluster: c2}"]).join("\n"),
    /spec\.dns\.forward\[0\]\.zone: invalid zone "not a zone"/,
  );
  assert.match(
    errors(["forward:", "- {zone: a.svc.cluster.local, servers: [10.0.0.1], tls: {}}"]).join("\n"),
    /tls\.serverName: Required value: the name the servers' certificate carries[\s\S]*tls\.ca: Required value/,
  );
  assert.match(
    errors(["forward:", "- {zone: a.svc.cluster.local, cluster: c2, tls: {ca: ca.pem, severName: x}}"]).join(
      "\n",
    ),
    /tls\.severName: unknown field "severName"\n {4}fix: did you mean "serverName"\?[\s\S]*tls\.ca: invalid CA path "ca\.pem": must be absolute/,
  );
  assert.match(
    errors(["tls: {clientAuth: always}"]).join("\n"),
    /spec\.dns\.tls\.clientAuth: unsupported value "always"/,
  );
});

test("cross-cluster checks: unknown cluster, TLS to a cluster that does not serve it, zone outside its domain", () => {
  const unknown = checkDnsForwards(load(["forward:", "- {zone: a.svc.cluster.local, cluster: c9}"]).state);
  assert.deepEqual(unknown.map(formatDiagnostic), [
    'm.yaml:10: error: Cluster c1: spec.dns.forward[0].cluster: unknown cluster "c9": declared clusters: c1, c2\n    fix: name one of: c2',
  ]);
  const noTls = checkDnsForwards(
    load(["forward:", "- {zone: a.svc.cluster.local, cluster: c2, tls: {}}"], "  nodes: 2").state,
  );
  assert.match(
    formatDiagnostic(noTls[0] as never),
    /cluster c2's DNS does not serve DNS over TLS[\s\S]*add spec\.dns\.tls: \{\} to Cluster c2/,
  );
  const outside = checkDnsForwards(load(["forward:", "- {zone: example.org, cluster: c2}"]).state);
  assert.match(
    formatDiagnostic(outside[0] as never),
    /warning: .*zone example\.org is outside cluster c2's domain cluster\.local/,
  );
});

test("shadowing: a forwarded zone over a local namespace warns (file:line of the entry), others do not", () => {
  const r = load(["forward:", "- {zone: remote.svc.cluster.local, cluster: c2}"]);
  const found = checkDnsForwards(r.state);
  assert.deepEqual(found.map(formatDiagnostic), [
    "m.yaml:10: warning: Cluster c1: spec.dns.forward[0].zone: forwarded zone remote.svc.cluster.local shadows namespace remote of cluster c1: its Services' names will resolve in cluster c2, not here\n" +
      "    fix: give the remote namespace a name cluster c1 does not use and forward that zone, or move cluster c1's objects out of namespace remote",
  ]);
  // Not an error: the plan stays usable.
  assert.equal(found[0]?.severity, "warning");
  const c1 = r.state.clusters[0] as (typeof r.state.clusters)[number];
  assert.deepEqual(shadowedNamespaces("db.remote.svc.cluster.local", c1, r.state), ["remote"]);
  assert.deepEqual(shadowedNamespaces("svc.cluster.local", c1, r.state), [
    "default",
    "kube-system",
    "remote",
  ]);
  assert.deepEqual(shadowedNamespaces("other.svc.cluster.local", c1, r.state), []);
  assert.deepEqual(shadowedNamespaces("remote.svc.example.org", c1, r.state), []);
  // c2 has no namespace remote: forwarding the same zone from c2 to c1 shadows nothing.
  const back = load([], "  dns: {forward: [{zone: remote.svc.cluster.local, cluster: c1}]}");
  assert.deepEqual(checkDnsForwards(back.state), []);
  // Plain servers are named as the target.
  const servers = checkDnsForwards(
    load(["forward:", "- {zone: remote.svc.cluster.local, servers: [10.9.0.10]}"]).state,
  );
  assert.match(servers[0]?.message ?? "", /will resolve in the servers 10\.9\.0\.10, not here/);
});
