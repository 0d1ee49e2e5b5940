/**
 * The cluster zone's figures (issue 7): a zone of 10,000 services (half ClusterIP, half headless) and
 * 100,000 endpoints over 100 namespaces, synthetic input (src/dns/records/synthetic.ts). Target: rebuilt
 * after a change in under 100 ms. Prints, as medians:
 *
 *   build                 buildClusterZone(input) from scratch
 *   first PTR / pod       the lazy reverse index and verified-pod index, built by the first query needing them
 *   one-service change    a full rebuild; zoneChanges(before, after) + zone.update(changes) with every index
 *                         built (the incremental path a server takes)
 *   lookups/s             per question kind, and a mix, on one core
 *
 *   npm run bench:dns-zone     (or: node dist/bench/dns-zone.bench.js [services] [endpoints])
 */
import { zoneChanges } from "../src/dns/records/changes.js";
import { dashedIp, reverseName } from "../src/dns/records/names.js";
import {
  syntheticClusterIp,
  syntheticEndpointIp,
  syntheticNamespace,
  syntheticZoneInput,
  withoutLastEndpoint,
} from "../src/dns/records/synthetic.js";
import { buildClusterZone, type ClusterZone } from "../src/dns/records/zone.js";
import { mib, percentile, table } from "./support.js";

const [services = 10_000, endpoints = 100_000] = process.argv.slice(2).map(Number);
const perService = Math.max(1, Math.round(endpoints / services));

/** CPU time (user + system) of this process in milliseconds: steadier than wall time on a shared machine. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

interface Timing {
  wall: number;
  cpu: number;
}

/** Median wall and CPU time of `runs` calls of fn, in milliseconds. */
function median(runs: number, fn: () => unknown): Timing {
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c = cpuMs();
    const t = process.hrtime.bigint();
    fn();
    wall.push(Number(process.hrtime.bigint() - t) / 1e6);
    cpu.push(cpuMs() - c);
  }
  return { wall: percentile(wall, 50), cpu: percentile(cpu, 50) };
}

const ms = (x: number) => `${x.toFixed(2)} ms`;
const row = (phase: string, t: Timing) => [phase, ms(t.cpu), ms(t.wall)];

const t0 = process.hrtime.bigint();
const input = syntheticZoneInput({ services, endpointsPerService: perService });
const generated = Number(process.hrtime.bigint() - t0) / 1e6;
console.log(
  `zone: ${services} services (${services / 2} headless), ${services * perService} endpoints, ` +
    `${input.pods.length} pods, ${input.namespaces.length} namespaces (input generated in ${ms(generated)})\n`,
);

// Build, and the lazily built indexes.
const build = median(9, () => buildClusterZone(input));
const firstPtr = median(5, () => buildClusterZone(input).lookup(reverseName(syntheticEndpointIp(0)), "PTR"));
const firstPod = median(5, () =>
  buildClusterZone(input).lookup(`${dashedIp(syntheticEndpointIp(0))}.ns-0.pod.cluster.local`, "A"),
);

// One service changes (an endpoint goes away). `after` is re-derived (fresh objects, as a server that
// recomputes its input after every change has): the diff compares every service and endpoint.
const changed = Math.floor(services / 2) + 1; // a headless service, in the middle
const after = withoutLastEndpoint(syntheticZoneInput({ services, endpointsPerService: perService }), changed);
const rebuild = median(9, () => buildClusterZone(after));
const diff = median(9, () => zoneChanges(input, after));
const zone = buildClusterZone(input);
zone.lookup(reverseName(syntheticEndpointIp(0)), "PTR");
zone.lookup(`${dashedIp(syntheticEndpointIp(0))}.ns-0.pod.cluster.local`, "A");
const forward = zoneChanges(input, after) ?? [];
const backward = zoneChanges(after, input) ?? [];
let flip = false;
const update = median(21, () => {
  zone.update(flip ? backward : forward);
  flip = !flip;
});

// A yardstick for this machine's speed at the time of the run (the figures above scale with it).
const reference = median(5, () => {
  const map = new Map<string, number>();
  for (let n = 0; n < 100_000; n++) map.set(syntheticEndpointIp(n), n);
  return map;
});

console.log(
  table(
    ["phase (median)", "CPU", "wall"],
    [
      row("yardstick: 100,000 Map.set of generated IP keys", reference),
      row("build (services map)", build),
      row("build + first PTR (reverse index)", firstPtr),
      row("build + first verified pod A (pod index)", firstPod),
      row("one-service change: full rebuild", rebuild),
      row("one-service change: zoneChanges (diff)", diff),
      row("one-service change: zone.update", update),
      row("one-service change: diff + update", { cpu: diff.cpu + update.cpu, wall: diff.wall + update.wall }),
    ],
  ),
);

// Lookups per second, per kind of question, on a zone with its indexes built.
function questions(kind: string, n: number): [string, string][] {
  const out: [string, string][] = [];
  for (let k = 0; k < n; k++) {
    const i = (k * 7919) % services; // spread over the zone
    const ns = syntheticNamespace(i);
    const name = `svc-${i}.${ns}.svc.cluster.local`;
    const ep = syntheticEndpointIp(i * perService);
    const clusterIp = i % 2 === 0 ? i : i - 1; // a ClusterIP service's index
    switch (kind) {
      case "A ClusterIP":
        out.push([`svc-${clusterIp}.${syntheticNamespace(clusterIp)}.svc.cluster.local`, "A"]);
        break;
      case "A headless":
        out.push([i % 2 === 1 ? name : `svc-${i + 1}.${syntheticNamespace(i + 1)}.svc.cluster.local`, "A"]);
        break;
      case "SRV":
        out.push([`_http._tcp.${name}`, "SRV"]);
        break;
      case "PTR":
        out.push([reverseName(k % 2 === 0 ? ep : syntheticClusterIp(clusterIp)), "PTR"]);
        break;
      case "pod A (verified)":
        out.push([`${dashedIp(ep)}.${ns}.pod.cluster.local`, "A"]);
        break;
      case "NXDOMAIN":
        out.push([`missing-${i}.${ns}.svc.cluster.local`, "A"]);
        break;
    }
  }
  return out;
}

/** Lookups per CPU second and per wall second, over about one CPU second. */
function rate(z: ClusterZone, qs: [string, string][]): { cpu: number; wall: number; records: number } {
  let count = 0;
  let records = 0;
  const start = process.hrtime.bigint();
  const startCpu = cpuMs();
  let cpu = 0;
  while (cpu < 1000) {
    for (const [q, t] of qs) records += z.lookup(q, t)?.answers.length ?? 0;
    count += qs.length;
    cpu = cpuMs() - startCpu;
  }
  const wall = Number(process.hrtime.bigint() - start) / 1e6;
  return { cpu: (count / cpu) * 1000, wall: (count / wall) * 1000, records: records / count };
}

const perSecond = (x: number) => Math.round(x).toLocaleString("en-US");

const kinds = ["A ClusterIP", "A headless", "SRV", "PTR", "pod A (verified)", "NXDOMAIN"];
const rows: string[][] = [];
const mix: [string, string][] = [];
for (const kind of kinds) {
  const qs = questions(kind, 2000);
  mix.push(...qs.slice(0, 500));
  const r = rate(zone, qs);
  rows.push([kind, perSecond(r.cpu), perSecond(r.wall), r.records.toFixed(1)]);
}
const m = rate(zone, mix);
rows.push(["mix of the above", perSecond(m.cpu), perSecond(m.wall), m.records.toFixed(1)]);
console.log(`\n${table(["lookups (one thread)", "per CPU s", "per wall s", "answers each"], rows)}`);
console.log(`\nheap used: ${mib(process.memoryUsage().heapUsed)}`);
