/**
 * What the cluster zone is built from: plain data, one entry per Service with its endpoints as the
 * EndpointSlice controller publishes them (hostname, readiness, per-endpoint ports), the pods' IPs and the
 * namespaces. `clusterZoneInput` derives it from the lab's state (DesiredState + ClusterPlan), reusing the
 * proxy's endpoint derivation so that DNS and the service proxy agree on what an endpoint is.
 */
import type { DesiredState, EndpointSlice, Pod, PodRecordsMode, Protocol } from "../../api/types.js";
import type { ClusterPlan } from "../../plan/types.js";
import { deriveEndpoints } from "../../proxy/endpoints.js";

/** A port as DNS names it: `_<name>._<protocol>`. Lower case; `name` is "" for an unnamed port. */
export interface ZonePort {
  name: string;
  protocol: "tcp" | "udp" | "sctp";
  port: number;
}

/** One address of one endpoint (a dual-stack pod is two endpoints, as in EndpointSlices). */
export interface ZoneEndpoint {
  /** Canonical text (IPv6 compressed, lower case). */
  ip: string;
  /** EndpointSlice `hostname` (a pod's spec.hostname when its spec.subdomain names the service). */
  hostname?: string;
  /** EndpointSlice `conditions.ready`. */
  ready: boolean;
  /**
   * The ports this endpoint serves, named after the service ports, with the endpoint's (target) port
   * numbers: the EndpointSlice ports. Empty: the slice has no ports (addresses only, no SRV records).
   */
  ports: ZonePort[];
}

export type ZoneServiceKind = "ClusterIP" | "Headless" | "ExternalName";

export interface ZoneService {
  namespace: string;
  name: string;
  /** NodePort and LoadBalancer services are `ClusterIP` here: DNS only sees their cluster IPs. */
  kind: ZoneServiceKind;
  /** Canonical text; ClusterIP services only. */
  clusterIPs: string[];
  /** ExternalName services only: the CNAME target, without the trailing dot. */
  externalName?: string;
  /** The service's ports with the service port numbers (ClusterIP SRV records). */
  ports: ZonePort[];
  /** Not-ready endpoints are published too (the EndpointSlice controller marks them ready). */
  publishNotReadyAddresses: boolean;
  endpoints: ZoneEndpoint[];
}

export interface ZonePod {
  namespace: string;
  /** Canonical text, one per family. */
  ips: string[];
}

export interface ClusterZoneInput {
  /** The cluster domain, e.g. `cluster.local` (no trailing dot). */
  domain: string;
  /** TTL of the zone's records in seconds. Default 5 (CoreDNS's default). */
  ttl?: number;
  /** `a-b-c-d.<ns>.pod.<domain>` records. Default `disabled` (CoreDNS's default). */
  podRecords?: PodRecordsMode;
  /** SOA serial. Default 1; every `update` adds one. */
  serial?: number;
  /** Addresses of the name server `ns.dns.<domain>`: the cluster DNS service's ClusterIPs. */
  nameServerIPs: string[];
  /** Namespaces that exist: names under a missing namespace are NXDOMAIN. */
  namespaces: string[];
  services: ZoneService[];
  /** Needed for `verified` pod records only. */
  pods: ZonePod[];
}

export interface ClusterZoneOptions {
  /** Default: the Cluster's `spec.dns.ttl`. */
  ttl?: number;
  /** Default: the Cluster's `spec.dns.podRecords`. */
  podRecords?: PodRecordsMode;
  serial?: number;
}

export function zonePort(port: { name?: string; protocol: Protocol; port: number }): ZonePort {
  return {
    name: (port.name ?? "").toLowerCase(),
    protocol: port.protocol.toLowerCase() as ZonePort["protocol"],
    port: port.port,
  };
}

/**
 * The EndpointSlice controller's endpoint hostname for a pod behind a service: the pod's hostname when its
 * subdomain is the service's name (same namespace, which selection guarantees).
 */
function podHostname(pod: Pod | undefined, serviceName: string): string | undefined {
  if (!pod?.hostname || pod.subdomain !== serviceName) return undefined;
  return pod.hostname;
}

/** Hostnames that EndpointSlice objects give their addresses, per `namespace/service`, per IP. */
function sliceHostnames(slices: readonly EndpointSlice[], cluster: string): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  for (const slice of slices) {
    if (slice.meta.cluster !== cluster || slice.serviceName === undefined) continue;
    for (const ep of slice.endpoints) {
      if (ep.hostname === undefined) continue;
      const key = `${slice.meta.namespace}/${slice.serviceName}`;
      let byIp = out.get(key);
      if (!byIp) {
        byIp = new Map();
        out.set(key, byIp);
      }
      for (const ip of ep.addresses) byIp.set(ip, ep.hostname);
    }
  }
  return out;
}

/** The cluster zone's input for the cluster `plan` describes, from the lab's desired state and plan. */
export function clusterZoneInput(
  state: DesiredState,
  plan: ClusterPlan,
  options: ClusterZoneOptions = {},
): ClusterZoneInput {
  const cluster = state.clusters.find((c) => c.meta.name === plan.name);
  // Only pods with a hostname and a subdomain can give an endpoint a hostname.
  const pods = new Map<string, Pod>();
  for (const pod of state.pods)
    if (pod.meta.cluster === plan.name && pod.hostname && pod.subdomain)
      pods.set(`${pod.meta.namespace}/${pod.meta.name}`, pod);
  const objects = new Map(
    state.services
      .filter((s) => s.meta.cluster === plan.name)
      .map((s) => [`${s.meta.namespace}/${s.meta.name}`, s]),
  );
  const endpointsOf = new Map(deriveEndpoints(state, plan).map((e) => [`${e.namespace}/${e.name}`, e]));
  const hostnamesFromSlices = sliceHostnames(state.endpointSlices, plan.name);

  const services: ZoneService[] = [];
  for (const sp of plan.services) {
    const key = `${sp.namespace}/${sp.name}`;
    const svc = objects.get(key);
    const ports = sp.ports.map(zonePort);
    const kind = sp.type === "ExternalName" ? "ExternalName" : sp.headless ? "Headless" : "ClusterIP";
    const derived = endpointsOf.get(key);
    const fromSlices = hostnamesFromSlices.get(key);
    const endpoints: ZoneEndpoint[] = (derived?.endpoints ?? []).map((ep) => {
      const hostname =
        derived?.source === "selector"
          ? podHostname(ep.pod === undefined ? undefined : pods.get(ep.pod), sp.name)
          : fromSlices?.get(ep.ip);
      const served: ZonePort[] = [];
      for (const p of sp.ports) {
        const target = ep.ports[p.name ?? ""];
        if (target !== undefined) served.push(zonePort({ ...p, port: target }));
      }
      return { ip: ep.ip, ...(hostname !== undefined ? { hostname } : {}), ready: ep.ready, ports: served };
    });
    services.push({
      namespace: sp.namespace,
      name: sp.name,
      kind,
      clusterIPs: kind === "ClusterIP" ? sp.clusterIPs : [],
      ...(kind === "ExternalName" && sp.externalName !== undefined ? { externalName: sp.externalName } : {}),
      ports,
      publishNotReadyAddresses: svc?.publishNotReadyAddresses ?? false,
      endpoints,
    });
  }

  const dnsService = plan.services.find((s) => s.namespace === "kube-system" && s.name === "kube-dns");
  const nameServerIPs = dnsService?.clusterIPs.length ? dnsService.clusterIPs : [plan.dnsServiceIP];
  const ttl = options.ttl ?? cluster?.dns.ttl;
  const podRecords = options.podRecords ?? cluster?.dns.podRecords;
  return {
    domain: plan.domain,
    ...(ttl !== undefined ? { ttl } : {}),
    ...(podRecords !== undefined ? { podRecords } : {}),
    ...(options.serial !== undefined ? { serial: options.serial } : {}),
    nameServerIPs,
    namespaces: state.namespaces.filter((n) => n.meta.cluster === plan.name).map((n) => n.meta.name),
    services,
    pods: plan.pods.map((p) => ({ namespace: p.namespace, ips: p.ips })),
  };
}
