import assert from "node:assert/strict";
import { test } from "node:test";
import { loadManifestText } from "../api/index.js";
import { planAddresses } from "../plan/index.js";
import type { ClusterPlan } from "../plan/types.js";
import { deriveEndpoints, deriveHostPorts, type ServiceEndpoints } from "./endpoints.js";

function derive(
  yaml: string,
  cluster = "apiVersion: podnet.dev/v1alpha1\nkind: Cluster\nmetadata: {name: c}\nspec: {nodes: 2}\n",
) {
  const loaded = loadManifestText(`${cluster}---\n${yaml}`, "t.yaml");
  assert.deepEqual(
    loaded.diagnostics.filter((d) => d.severity === "error").map((d) => d.message),
    [],
  );
  const plan = planAddresses(loaded.state).clusters[0] as ClusterPlan;
  return { plan, state: loaded.state, endpoints: deriveEndpoints(loaded.state, plan) };
}

const of = (all: ServiceEndpoints[], name: string) => all.find((s) => s.name === name) as ServiceEndpoints;

const PODS = `
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: shop, labels: {app: web, tier: front}}
spec: {nodeName: node-1, containers: [{name: c, ports: [{name: http, containerPort: 8080}, {name: metrics, containerPort: 9100}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: shop, labels: {app: web}, annotations: {podnet.dev/ready: "false"}}
spec: {nodeName: node-2, containers: [{name: c, ports: [{name: http, containerPort: 9090}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: other-ns, namespace: default, labels: {app: web}}
spec: {containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
`;

test("selector: the namespace's matching pods, with their planned IPs, nodes and readiness", () => {
  const { plan, endpoints } = derive(`${PODS}---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}]}
`);
  const web = of(endpoints, "web");
  assert.equal(web.source, "selector");
  const ipOf = (name: string) => plan.pods.find((p) => p.name === name)?.ips[0];
  assert.deepEqual(
    web.endpoints.map((e) => [e.pod, e.ip, e.node, e.ready, e.serving, e.terminating]),
    [
      ["shop/a", ipOf("a"), "node-1", true, true, false],
      ["shop/b", ipOf("b"), "node-2", false, false, false],
    ],
  );
});

test("a named targetPort is resolved per pod; a pod without that name is no endpoint for that port", () => {
  const { endpoints } = derive(`${PODS}---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}, {name: metrics, port: 9100, targetPort: metrics}, {name: raw, port: 7000, targetPort: 7001}]
`);
  const ports = Object.fromEntries(of(endpoints, "web").endpoints.map((e) => [e.pod, e.ports]));
  assert.deepEqual(ports["shop/a"], { http: 8080, metrics: 9100, raw: 7001 });
  assert.deepEqual(ports["shop/b"], { http: 9090, raw: 7001 }, "b declares no port named metrics");
});

test("publishNotReadyAddresses makes unready pods ready endpoints (serving stays false)", () => {
  const { endpoints } = derive(`${PODS}---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {selector: {app: web}, publishNotReadyAddresses: true, ports: [{port: 80}]}
`);
  const b = of(endpoints, "web").endpoints.find((e) => e.pod === "shop/b");
  assert.deepEqual([b?.ready, b?.serving], [true, false]);
});

test("without a selector: EndpointSlice objects labelled with the service name, ports matched by name", () => {
  const { plan, endpoints } = derive(`${PODS}---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec: {ports: [{name: pg, port: 5432}, {name: admin, port: 8000}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: db-1, namespace: shop, labels: {kubernetes.io/service-name: db}}
addressType: IPv4
endpoints:
  - addresses: [192.0.2.10]
    nodeName: node-2
  - addresses: [192.0.2.11]
    conditions: {ready: false, serving: true, terminating: true}
ports: [{name: pg, port: 15432}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: db-2, namespace: shop, labels: {kubernetes.io/service-name: db}}
addressType: IPv4
endpoints: [{addresses: [10.244.0.2]}]
ports: [{name: admin, port: 8001}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: elsewhere, namespace: default, labels: {kubernetes.io/service-name: db}}
addressType: IPv4
endpoints: [{addresses: [198.51.100.1]}]
ports: [{name: pg, port: 1}]
`);
  const db = of(endpoints, "db");
  assert.equal(db.source, "endpointslices");
  const podOnIp = plan.pods.find((p) => p.ips[0] === "10.244.0.2");
  assert.deepEqual(
    db.endpoints.map((e) => [e.ip, e.node, e.ready, e.serving, e.terminating, e.ports]),
    [
      ["192.0.2.10", "node-2", true, true, false, { pg: 15432 }],
      ["192.0.2.11", undefined, false, true, true, { pg: 15432 }],
      // A slice address that is a pod's: its node comes from the plan (for the policies Local).
      ["10.244.0.2", podOnIp?.node, true, true, false, { admin: 8001 }],
    ],
  );
});

test("ExternalName services have no endpoints; headless ones do (DNS needs them)", () => {
  const { endpoints } = derive(`${PODS}---
apiVersion: v1
kind: Service
metadata: {name: head, namespace: shop}
spec: {clusterIP: None, selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: shop}
spec: {type: ExternalName, externalName: example.com}
`);
  assert.deepEqual(
    endpoints.map((e) => e.name),
    ["head"],
  );
  assert.equal(of(endpoints, "head").endpoints.length, 2);
});

test("dual-stack: one endpoint per family for a dual-stack Service, one family for a single-stack one", () => {
  const cluster =
    "apiVersion: podnet.dev/v1alpha1\nkind: Cluster\nmetadata: {name: c}\nspec: {nodes: 1, podCIDRs: [10.244.0.0/16, fd00:10:244::/56], serviceCIDRs: [10.96.0.0/12, fd00:10:96::/112]}\n";
  const { endpoints } = derive(
    `${PODS.split("---")[0]}---
apiVersion: v1
kind: Service
metadata: {name: dual, namespace: shop}
spec: {ipFamilyPolicy: RequireDualStack, selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: single, namespace: shop}
spec: {selector: {app: web}, ports: [{port: 80}]}
`,
    cluster,
  );
  assert.deepEqual(
    of(endpoints, "dual").endpoints.map((e) => e.family),
    [4, 6],
  );
  assert.deepEqual(
    of(endpoints, "single").endpoints.map((e) => e.family),
    [4],
  );
});

test("hostPorts of pods, with the pod's IP and node", () => {
  const { plan, state } = derive(`
apiVersion: v1
kind: Pod
metadata: {name: h, namespace: shop}
spec: {nodeName: node-2, containers: [{name: c, ports: [{containerPort: 80, hostPort: 8080}, {containerPort: 53, hostPort: 53, protocol: UDP}]}]}
`);
  const ip = plan.pods.find((p) => p.name === "h")?.ips[0] as string;
  assert.deepEqual(deriveHostPorts(state, plan), [
    {
      node: "node-2",
      pod: "shop/h",
      protocol: "TCP",
      hostPort: 8080,
      podIp: ip,
      family: 4,
      containerPort: 80,
    },
    { node: "node-2", pod: "shop/h", protocol: "UDP", hostPort: 53, podIp: ip, family: 4, containerPort: 53 },
  ]);
});
