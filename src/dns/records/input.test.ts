/** clusterZoneInput: what the zone is built from, derived from the loader's state and the address plan. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { loadManifestText } from "../../api/index.js";
import { planAddresses } from "../../plan/index.js";
import type { ClusterPlan } from "../../plan/types.js";
import { clusterZoneInput, type ZoneService } from "./input.js";

const MANIFEST = `
apiVersion: podnet.dev/v1alpha1
kind: Cluster
metadata: {name: c}
spec: {nodes: 2, dns: {ttl: 30, podRecords: verified}}
---
apiVersion: v1
kind: Pod
metadata: {name: m-0, namespace: shop, labels: {app: m}}
spec: {hostname: m-0, subdomain: m, containers: [{name: c, ports: [{name: http, containerPort: 8080, protocol: TCP}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: other, namespace: shop, labels: {app: m}}
spec: {hostname: other, subdomain: elsewhere, containers: [{name: c, ports: [{name: http, containerPort: 9090}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: m, namespace: shop}
spec: {clusterIP: None, selector: {app: m}, ports: [{name: http, port: 80, targetPort: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: np, namespace: shop}
spec: {type: NodePort, selector: {app: m}, ports: [{name: dns, port: 53, protocol: UDP}]}
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: shop}
spec: {type: ExternalName, externalName: db.example.org}
`;

function derive() {
  const loaded = loadManifestText(MANIFEST, "input.yaml");
  assert.deepEqual(
    loaded.diagnostics.filter((d) => d.severity === "error").map((d) => d.message),
    [],
  );
  const plan = planAddresses(loaded.state).clusters[0] as ClusterPlan;
  return { plan, input: clusterZoneInput(loaded.state, plan) };
}

test("zone-wide settings come from the Cluster's spec.dns and the plan", () => {
  const { plan, input } = derive();
  assert.equal(input.domain, "cluster.local");
  assert.equal(input.ttl, 30);
  assert.equal(input.podRecords, "verified");
  assert.deepEqual(input.nameServerIPs, [plan.dnsServiceIP]);
  assert.ok(input.namespaces.includes("shop") && input.namespaces.includes("kube-system"));
  assert.equal(input.pods.length, 2);
});

test("services: kinds, ports, endpoint hostnames only where the subdomain names the service", () => {
  const { plan, input } = derive();
  const of = (name: string) => input.services.find((s) => s.name === name) as ZoneService;
  const ip = (pod: string) => plan.pods.find((p) => p.name === pod)?.ips[0];

  const m = of("m");
  assert.equal(m.kind, "Headless");
  assert.deepEqual(m.ports, [{ name: "http", protocol: "tcp", port: 80 }]);
  assert.deepEqual(
    m.endpoints.map((e) => [e.ip, e.hostname, e.ready, e.ports]),
    [
      [ip("m-0"), "m-0", true, [{ name: "http", protocol: "tcp", port: 8080 }]],
      // spec.subdomain names another service: no hostname (the EndpointSlice controller's rule).
      [ip("other"), undefined, true, [{ name: "http", protocol: "tcp", port: 9090 }]],
    ],
  );

  const np = of("np");
  assert.equal(np.kind, "ClusterIP", "NodePort services have a ClusterIP");
  assert.equal(np.clusterIPs.length, 1);
  assert.deepEqual(np.ports, [{ name: "dns", protocol: "udp", port: 53 }]);
  // A numeric targetPort (defaulted to the port): every pod serves it.
  assert.deepEqual(
    np.endpoints.map((e) => e.ports),
    [[{ name: "dns", protocol: "udp", port: 53 }], [{ name: "dns", protocol: "udp", port: 53 }]],
  );

  const ext = of("ext");
  assert.equal(ext.kind, "ExternalName");
  assert.equal(ext.externalName, "db.example.org");
  assert.deepEqual([ext.clusterIPs, ext.endpoints], [[], []]);
});
