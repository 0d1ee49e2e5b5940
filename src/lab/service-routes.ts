/**
 * How the router reaches load-balancer IPs and externalIPs: a host route per address to the nodes that
 * should receive its traffic, as a MetalLB-style announcement would make the upstream router do. With
 * externalTrafficPolicy Local only nodes with a ready endpoint of the Service (the others drop that
 * traffic, and the client IP is kept); otherwise every node (ECMP). Pure.
 */
import type { DesiredState } from "../api/types.js";
import type { ClusterPlan } from "../plan/types.js";
import { deriveEndpoints } from "../proxy/index.js";

export interface ServiceRoute {
  /** The address, as a host prefix (/32 or /128). */
  dst: string;
  /** Underlay addresses of the nodes to send it to. */
  via: string[];
  service: string;
}

export function planServiceRoutes(state: DesiredState, cluster: ClusterPlan): ServiceRoute[] {
  const withAddresses = cluster.services.filter((s) => s.loadBalancerIPs.length + s.externalIPs.length > 0);
  if (withAddresses.length === 0) return [];
  const endpoints = deriveEndpoints(state, cluster);
  const routes: ServiceRoute[] = [];
  for (const svc of withAddresses) {
    const object = state.services.find(
      (s) =>
        s.meta.cluster === cluster.name && s.meta.namespace === svc.namespace && s.meta.name === svc.name,
    );
    const local = object?.externalTrafficPolicy === "Local";
    const readyNodes = new Set(
      (endpoints.find((e) => e.namespace === svc.namespace && e.name === svc.name)?.endpoints ?? [])
        .filter((e) => e.ready)
        .map((e) => e.node),
    );
    const via = cluster.nodes.filter((n) => !local || readyNodes.has(n.name)).map((n) => n.address);
    if (via.length === 0) continue;
    for (const ip of [...svc.loadBalancerIPs, ...svc.externalIPs]) {
      routes.push({
        dst: ip.includes(":") ? `${ip}/128` : `${ip}/32`,
        via,
        service: `${svc.namespace}/${svc.name}`,
      });
    }
  }
  return routes;
}

/** The router's lines: routes podnet owns carry `proto 99` (no name in rt_protos), flushed and re-added in one batch. */
export const SERVICE_ROUTE_PROTO = 99;

export function serviceRouteLines(routes: readonly ServiceRoute[], dev: string): string[] {
  const lines = [`route flush proto ${SERVICE_ROUTE_PROTO}`];
  for (const r of routes) {
    const hops = r.via.map((v) => `nexthop via ${v} dev ${dev}`).join(" ");
    lines.push(
      r.via.length === 1
        ? `route replace ${r.dst} via ${r.via[0]} dev ${dev} proto ${SERVICE_ROUTE_PROTO}`
        : `route replace ${r.dst} proto ${SERVICE_ROUTE_PROTO} ${hops}`,
    );
  }
  return lines;
}
