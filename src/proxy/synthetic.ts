/**
 * Synthetic proxy inputs for unit tests and the benchmark: N ClusterIP Services of one TCP port, each with
 * K ready endpoints on another node. Plain data, deterministic.
 */
import { defaultService } from "../api/service.js";
import type { Service } from "../api/types.js";
import type { ServicePlan } from "../plan/types.js";
import type { ProxyEndpoint, ServiceEndpoints } from "./endpoints.js";
import type { ProxyInput } from "./plan.js";

export interface SyntheticOptions {
  services: number;
  endpointsPerService: number;
  /** Endpoint addresses of service i (default: distinct addresses in 10.245.0.0/16 and up). */
  endpointIps?: (service: number) => string[];
  /** Table name (default podnet-proxy). */
  table?: string;
}

export const SYNTHETIC = {
  node: "node-1",
  nodeAddress: "172.31.0.2",
  podCIDRs: ["10.244.0.0/15"],
  serviceCIDRs: ["10.96.0.0/16"],
  port: 80,
  targetPort: 8080,
} as const;

/** The ClusterIP of synthetic service i (0-based): 10.96.0.0/16 from .1 on. */
export function syntheticVip(i: number): string {
  const n = i + 1;
  return `10.96.${(n >> 8) & 255}.${n & 255}`;
}

function defaultEndpointIps(i: number, k: number): string[] {
  return Array.from({ length: k }, (_, j) => {
    const n = i * k + j;
    return `10.${245 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`;
  });
}

export function syntheticServiceObject(name: string, namespace = "bench"): Service {
  return {
    ...defaultService({ name, namespace, cluster: "bench", labels: {}, annotations: {} }),
    ipFamilies: ["IPv4"],
    selector: { app: name },
    ports: [{ name: "http", protocol: "TCP", port: SYNTHETIC.port, targetPort: SYNTHETIC.targetPort }],
  };
}

export function syntheticEndpoint(ip: string, node = "node-2"): ProxyEndpoint {
  return {
    ip,
    family: 4,
    node,
    ready: true,
    serving: true,
    terminating: false,
    ports: { http: SYNTHETIC.targetPort },
  };
}

/** N services × K endpoints as planProxyRules' input for node-1 (endpoints are on node-2). */
export function syntheticProxyInput(o: SyntheticOptions): ProxyInput {
  const services: ServicePlan[] = [];
  const serviceObjects: Service[] = [];
  const endpoints: ServiceEndpoints[] = [];
  for (let i = 0; i < o.services; i++) {
    const name = `svc-${i}`;
    services.push({
      namespace: "bench",
      name,
      type: "ClusterIP",
      clusterIPs: [syntheticVip(i)],
      headless: false,
      ports: [{ name: "http", protocol: "TCP", port: SYNTHETIC.port, targetPort: SYNTHETIC.targetPort }],
      loadBalancerIPs: [],
      externalIPs: [],
    });
    serviceObjects.push(syntheticServiceObject(name));
    const ips = o.endpointIps?.(i) ?? defaultEndpointIps(i, o.endpointsPerService);
    endpoints.push({
      namespace: "bench",
      name,
      source: "selector",
      endpoints: ips.map((ip) => syntheticEndpoint(ip)),
    });
  }
  return {
    services,
    serviceObjects,
    endpoints,
    node: { name: SYNTHETIC.node, addresses: [SYNTHETIC.nodeAddress] },
    podCIDRs: [...SYNTHETIC.podCIDRs],
    serviceCIDRs: [...SYNTHETIC.serviceCIDRs],
    ...(o.table ? { table: o.table } : {}),
  };
}

/** `input` plus one more synthetic service (index = current count), with `endpoints` endpoints. */
export function withExtraService(input: ProxyInput, endpoints: number): ProxyInput {
  const extra = syntheticProxyInput({ services: input.services.length + 1, endpointsPerService: endpoints });
  const i = input.services.length;
  return {
    ...input,
    services: [...input.services, extra.services[i] as ServicePlan],
    serviceObjects: [...input.serviceObjects, extra.serviceObjects[i] as Service],
    endpoints: [...input.endpoints, extra.endpoints[i] as ServiceEndpoints],
  };
}

/** `input` with the last endpoint of service `index` gone. */
export function withoutLastEndpoint(input: ProxyInput, index: number): ProxyInput {
  return {
    ...input,
    endpoints: input.endpoints.map((e, i) =>
      i === index ? { ...e, endpoints: e.endpoints.slice(0, -1) } : e,
    ),
  };
}

/** `input` with service `index` answering on `port` instead (its plan and object are new; endpoints kept). */
export function withChangedPort(input: ProxyInput, index: number, port: number): ProxyInput {
  const swap = <T>(list: readonly T[], value: (old: T) => T) =>
    list.map((x, i) => (i === index ? value(x) : x));
  return {
    ...input,
    services: swap(input.services, (p) => ({ ...p, ports: p.ports.map((sp) => ({ ...sp, port })) })),
    serviceObjects: swap(input.serviceObjects, (s) => ({
      ...s,
      ports: s.ports.map((sp) => ({ ...sp, port })),
    })),
  };
}
