/**
 * Synthetic zone inputs for the benchmark and the update tests: N services over 100 namespaces, every
 * other one headless (half of those with StatefulSet-style hostnames), K ready endpoints each on distinct
 * pod addresses, one named TCP port. Plain data, deterministic.
 */
import type { ClusterZoneInput, ZoneEndpoint, ZonePod, ZoneService } from "./input.js";

export interface SyntheticZoneOptions {
  services: number;
  endpointsPerService: number;
  namespaces?: number;
}

const HTTP = { name: "http", protocol: "tcp", port: 80 } as const;
const HTTP_TARGET = { name: "http", protocol: "tcp", port: 8080 } as const;

/** The ClusterIP of synthetic service i (0-based): 10.96.0.0/16 from .1 on. */
export function syntheticClusterIp(i: number): string {
  const n = i + 1;
  return `10.96.${(n >> 8) & 255}.${n & 255}`;
}

/** The address of synthetic endpoint n (0-based, over all services): 10.244.0.0/14 from .0 on. */
export function syntheticEndpointIp(n: number): string {
  return `10.${244 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`;
}

export function syntheticNamespace(i: number, namespaces = 100): string {
  return `ns-${i % namespaces}`;
}

export function syntheticService(i: number, o: SyntheticZoneOptions): ZoneService {
  const headless = i % 2 === 1;
  const name = `svc-${i}`;
  const endpoints: ZoneEndpoint[] = [];
  for (let j = 0; j < o.endpointsPerService; j++) {
    const ip = syntheticEndpointIp(i * o.endpointsPerService + j);
    const hostname = headless && i % 4 === 1 ? `${name}-${j}` : undefined;
    endpoints.push({ ip, ...(hostname ? { hostname } : {}), ready: true, ports: [HTTP_TARGET] });
  }
  return {
    namespace: syntheticNamespace(i, o.namespaces),
    name,
    kind: headless ? "Headless" : "ClusterIP",
    clusterIPs: headless ? [] : [syntheticClusterIp(i)],
    ports: [HTTP],
    publishNotReadyAddresses: false,
    endpoints,
  };
}

export function syntheticZoneInput(o: SyntheticZoneOptions): ClusterZoneInput {
  const namespaces = o.namespaces ?? 100;
  const services: ZoneService[] = [];
  const pods: ZonePod[] = [];
  for (let i = 0; i < o.services; i++) {
    const svc = syntheticService(i, o);
    services.push(svc);
    for (const ep of svc.endpoints) pods.push({ namespace: svc.namespace, ips: [ep.ip] });
  }
  return {
    domain: "cluster.local",
    ttl: 5,
    podRecords: "verified",
    nameServerIPs: ["10.96.0.10"],
    namespaces: Array.from({ length: namespaces }, (_, i) => `ns-${i}`),
    services,
    pods,
  };
}

/** `input` with service i's last endpoint gone (a pod deleted): a copy sharing every other service. */
export function withoutLastEndpoint(input: ClusterZoneInput, i: number): ClusterZoneInput {
  const services = input.services.slice();
  const svc = services[i];
  if (!svc) throw new RangeError(`no service ${i}`);
  services[i] = { ...svc, endpoints: svc.endpoints.slice(0, -1) };
  return { ...input, services };
}
