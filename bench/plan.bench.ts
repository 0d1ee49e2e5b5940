/**
 * Plans 1,000 nodes, 100,000 pods (100 Deployments x 1,000 replicas) and 10,000 Services, and prints
 * the time of each phase and the peak memory. Target (issue 2): under 2 s and under 500 MiB.
 *   npm run bench            (or: node dist/bench/plan.bench.js [nodes] [pods] [services])
 */
import { loadManifestText } from "../src/api/index.js";
import { planAddresses } from "../src/plan/index.js";
import { mib } from "./support.js";

const [nodes = 1000, pods = 100_000, services = 10_000] = process.argv.slice(2).map(Number);
const deployments = 100;

function manifest(): string {
  const docs: string[] = [
    `apiVersion: podnet.dev/v1alpha1
kind: Cluster
metadata: {name: big}
spec:
  nodeCIDR: 172.16.0.0/16
  podCIDRs: [10.128.0.0/9]
  serviceCIDRs: [10.96.0.0/12]
  nodeCIDRMaskSize: 24`,
  ];
  for (let i = 0; i < nodes; i++) docs.push(`apiVersion: v1\nkind: Node\nmetadata: {name: node-${i}}`);
  for (let d = 0; d < deployments; d++) {
    docs.push(`apiVersion: apps/v1
kind: Deployment
metadata: {name: app-${d}, namespace: ns-${d % 10}}
spec:
  replicas: ${Math.floor(pods / deployments)}
  selector: {matchLabels: {app: app-${d}}}
  template:
    metadata: {labels: {app: app-${d}}}
    spec:
      containers:
        - name: main
          image: registry.example/app:1
          ports: [{name: http, containerPort: 8080}, {name: metrics, containerPort: 9090}]`);
  }
  for (let s = 0; s < services; s++) {
    docs.push(`apiVersion: v1
kind: Service
metadata: {name: svc-${s}, namespace: ns-${s % 10}}
spec:
  selector: {app: app-${s % deployments}}
  ports: [{name: http, port: 80, targetPort: http}]`);
  }
  return docs.join("\n---\n");
}

const text = manifest();
const t0 = performance.now();
const loaded = loadManifestText(text, "bench.yaml");
const t1 = performance.now();
const plan = planAddresses(loaded.state);
const t2 = performance.now();
const errors = [...loaded.diagnostics, ...plan.diagnostics].filter((d) => d.severity === "error");
if (errors.length > 0) {
  console.error(errors.slice(0, 5));
  process.exit(1);
}
const cluster = plan.clusters[0];
const peakRss = process.resourceUsage().maxRSS * 1024;

console.log(
  `podnet plan benchmark: ${nodes} nodes, ${cluster?.pods.length} pods, ${cluster?.services.length} services`,
);
console.log(
  `  manifest size        ${mib(text.length)} of YAML, ${loaded.state.pods.length} pods after expansion`,
);
console.log(`  load + validate      ${(t1 - t0).toFixed(0)} ms`);
console.log(`  plan addresses       ${(t2 - t1).toFixed(0)} ms`);
console.log(`  total                ${(t2 - t0).toFixed(0)} ms   (target < 2000 ms)`);
console.log(`  peak memory (RSS)    ${mib(peakRss)}   (target < 500 MiB)`);
