/** Expansion of Deployments and StatefulSets into Pods. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { loadManifestText } from "./loader.js";
import { errorsOf, show, yaml } from "./testutil.js";
import type { Pod } from "./types.js";
import { canonicalJson, fnv1a32, podTemplateHash, replicaSuffix, SAFE_ALPHABET } from "./workload.js";

const deployment = (image: string, replicas: number) => yaml`
  apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: web
    namespace: shop
    labels: {app: web}
  spec:
    replicas: ${replicas}
    selector:
      matchLabels: {app: web}
    template:
      metadata:
        labels: {app: web, tier: front}
        annotations: {note: x}
      spec:
        containers:
          - name: web
            image: ${image}
            ports:
              - name: http
                containerPort: 8080
`;

function pods(text: string): Pod[] {
  const r = loadManifestText(text, "e.yaml");
  assert.deepEqual(errorsOf(r.diagnostics), [], show(r.diagnostics));
  return r.state.pods;
}

const SAFE = `[${SAFE_ALPHABET}]`;

test("FNV-1a test vectors", () => {
  assert.equal(fnv1a32(""), 0x811c9dc5);
  assert.equal(fnv1a32("a"), 0xe40c292c);
  assert.equal(fnv1a32("foobar"), 0xbf9cf968);
  assert.equal(fnv1a32("é"), fnv1a32("\u00e9"));
});

test("canonical JSON sorts keys at every level", () => {
  assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: null }] }), '{"a":[{"c":null,"d":2}],"b":1}');
});

test("pod-template-hash: 10 characters of the safe alphabet, stable, sensitive to the template", () => {
  const h = podTemplateHash({ metadata: { labels: { app: "web" } } });
  assert.match(h, new RegExp(`^${SAFE}{10}$`));
  assert.equal(h, podTemplateHash({ metadata: { labels: { app: "web" } } }));
  assert.notEqual(h, podTemplateHash({ metadata: { labels: { app: "web2" } } }));
  assert.match(replicaSuffix(h, 0), new RegExp(`^${SAFE}{5}$`));
});

test("Deployment pods: <name>-<hash>-<suffix>, deterministic across loads, unique", () => {
  const a = pods(deployment("nginx:1.27", 5));
  const b = pods(deployment("nginx:1.27", 5));
  assert.equal(a.length, 5);
  assert.deepEqual(
    a.map((p) => p.meta.name),
    b.map((p) => p.meta.name),
  );
  assert.equal(new Set(a.map((p) => p.meta.name)).size, 5);
  const re = new RegExp(`^web-(${SAFE}{10})-${SAFE}{5}$`);
  for (const p of a) {
    const m = re.exec(p.meta.name);
    assert.ok(m, p.meta.name);
    assert.equal(p.meta.labels["pod-template-hash"], m[1]);
    assert.deepEqual(p.meta.labels, { app: "web", tier: "front", "pod-template-hash": m[1] });
    assert.deepEqual(p.meta.annotations, { note: "x" });
    assert.equal(p.meta.namespace, "shop");
    assert.equal(p.meta.cluster, "default");
    assert.deepEqual(p.owner, { kind: "Deployment", name: "web" });
    assert.deepEqual(p.meta.source, { file: "e.yaml", line: 1 });
    assert.deepEqual(p.containers, [
      { name: "web", ports: [{ name: "http", containerPort: 8080, protocol: "TCP" }] },
    ]);
    assert.equal(p.ready, true);
    assert.equal(p.nodeName, undefined);
    assert.equal(p.hostname, undefined);
  }
});

test("the hash follows the template: a new image renames the pods, a new replica count does not", () => {
  const v1 = pods(deployment("nginx:1.27", 2)).map((p) => p.meta.name);
  const v2 = pods(deployment("nginx:1.28", 2)).map((p) => p.meta.name);
  const more = pods(deployment("nginx:1.27", 3)).map((p) => p.meta.name);
  assert.notEqual(v1[0]?.split("-")[1], v2[0]?.split("-")[1]);
  assert.deepEqual(more.slice(0, 2), v1);
});

test("replicas: 0 makes no pods; large replica counts make unique names", () => {
  assert.equal(pods(deployment("nginx", 0)).length, 0);
  const many = pods(deployment("nginx", 5000));
  assert.equal(new Set(many.map((p) => p.meta.name)).size, 5000);
});

test("StatefulSet pods: <name>-<i>, hostname = pod name, subdomain = serviceName, ordinal labels", () => {
  const ps = pods(yaml`
    apiVersion: v1
    kind: Service
    metadata:
      name: db
    spec:
      clusterIP: None
      selector: {app: db}
    ---
    apiVersion: apps/v1
    kind: StatefulSet
    metadata:
      name: db
    spec:
      serviceName: db
      replicas: 3
      selector:
        matchLabels: {app: db}
      template:
        metadata:
          labels: {app: db}
          annotations:
            podnet.dev/ready: "false"
        spec:
          nodeName: node-2
          containers:
            - name: pg
              ports: [{containerPort: 5432}]
  `);
  assert.deepEqual(
    ps.map((p) => [p.meta.name, p.hostname, p.subdomain, p.nodeName, p.ready]),
    [
      ["db-0", "db-0", "db", "node-2", false],
      ["db-1", "db-1", "db", "node-2", false],
      ["db-2", "db-2", "db", "node-2", false],
    ],
  );
  const labels = ps[1]?.meta.labels ?? {};
  assert.equal(labels["statefulset.kubernetes.io/pod-name"], "db-1");
  assert.equal(labels["apps.kubernetes.io/pod-index"], "1");
  assert.equal(labels.app, "db");
  assert.match(labels["controller-revision-hash"] ?? "", new RegExp(`^db-${SAFE}{10}$`));
  assert.deepEqual(ps[0]?.owner, { kind: "StatefulSet", name: "db" });
  assert.equal(ps[0]?.meta.source?.line, 9);
});

test("a StatefulSet without its Service warns; a pod name clash is an error", () => {
  const r = loadManifestText(
    yaml`
      apiVersion: apps/v1
      kind: StatefulSet
      metadata:
        name: db
      spec:
        serviceName: db
        replicas: 2
        selector: {matchLabels: {app: db}}
        template:
          metadata: {labels: {app: db}}
          spec: {containers: [{name: pg}]}
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: db-1
      spec:
        containers: [{name: pg}]
    `,
    "s.yaml",
  );
  const warning = r.diagnostics.find((d) => d.severity === "warning" && d.path === "spec.serviceName");
  assert.ok(warning, show(r.diagnostics));
  assert.match(warning.message, /no Service default\/db/);
  const errors = errorsOf(r.diagnostics);
  assert.equal(errors.length, 1, show(errors));
  assert.match(errors[0]?.message ?? "", /pod default\/db-1 of this StatefulSet has the name of another pod/);
  assert.deepEqual(
    r.state.pods.map((p) => p.meta.name),
    ["db-0", "db-1"],
  );
});

test("the template is validated once, not per replica", () => {
  const r = loadManifestText(
    deployment("nginx", 1000).replace("containerPort: 8080", "containerPort: 0"),
    "x.yaml",
  );
  assert.equal(errorsOf(r.diagnostics).length, 1, show(r.diagnostics));
});

test("workload nodeName must name a node; deployment pods keep it", () => {
  const text = yaml`
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
    spec:
      replicas: 2
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec:
          nodeName: node-9
          containers: [{name: web}]
  `;
  const r = loadManifestText(text, "n.yaml");
  const errors = errorsOf(r.diagnostics);
  assert.equal(errors.length, 1, show(errors));
  assert.equal(errors[0]?.path, "spec.template.spec.nodeName");
  assert.equal(errors[0]?.source?.line, 11);
  const ok = pods(text.replace("node-9", "node-2"));
  assert.deepEqual(
    ok.map((p) => p.nodeName),
    ["node-2", "node-2"],
  );
});
