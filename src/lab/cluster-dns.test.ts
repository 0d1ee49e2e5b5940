import assert from "node:assert/strict";
import { test } from "node:test";
import { loadManifestText } from "../api/index.js";
import { parseDnsConfig } from "../dns/server/config.js";
import { planAddresses } from "../plan/index.js";
import { clusterDnsConfig, clusterDnsObjects, podResolvConf } from "./cluster-dns.js";
import { candidateNames, parseResolvConf } from "./resolve.js";
import type { StoredObject } from "./store.js";

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
