/**
 * The endpoints of every Service, the way the EndpointSlice controller would publish them and kube-proxy
 * would read them: from the selector over the cluster's pods (with the pods' planned IPs), or, for a
 * Service without a selector, from the EndpointSlice objects labelled `kubernetes.io/service-name`.
 * Also the pods' hostPorts (the CNI portmap plugin's job, done by the proxy here). Pure: plain data.
 */
import { matchesSelector } from "../api/selector.js";
import type { ContainerPort, DesiredState, Pod, Protocol, Service } from "../api/types.js";
import { formatIp, tryParseIp } from "../ipam/cidr.js";
import type { ClusterPlan, PodPlan, ServicePlan, ServicePortPlan } from "../plan/types.js";

export type Family = 4 | 6;

/** One address of one endpoint: a dual-stack pod is two endpoints, one per family. */
export interface ProxyEndpoint {
  ip: string;
  family: Family;
  /** The node it runs on, when known: needed for the traffic policies `Local`. */
  node?: string;
  /** `namespace/name` of the pod, when the endpoint is one. */
  pod?: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  /**
   * Per service port (by its name; "" for the one unnamed port): the port this endpoint serves it on. A
   * port missing here is one this endpoint does not serve (a named targetPort the pod does not declare).
   */
  ports: Record<string, number>;
}

export interface ServiceEndpoints {
  namespace: string;
  name: string;
  /** `selector`: derived from pods; `endpointslices`: read from EndpointSlice objects (no selector). */
  source: "selector" | "endpointslices";
  endpoints: ProxyEndpoint[];
}

/** A pod's hostPort on its node: `<node address>:hostPort` → `podIP:containerPort`. */
export interface HostPortMapping {
  node: string;
  pod: string;
  protocol: Protocol;
  hostPort: number;
  podIp: string;
  family: Family;
  containerPort: number;
}

/** The key a service port has in `ProxyEndpoint.ports`. */
export function servicePortKey(port: { name?: string }): string {
  return port.name ?? "";
}

const canonical = new Map<string, string | undefined>();
/** The canonical text of an IP address (IPv6 compressed, lower case); undefined when not an address. */
export function canonicalIp(text: string): string | undefined {
  let c = canonical.get(text);
  if (c === undefined && !canonical.has(text)) {
    const ip = tryParseIp(text);
    c = ip ? formatIp(ip) : undefined;
    if (canonical.size > 200_000) canonical.clear();
    canonical.set(text, c);
  }
  return c;
}

export function ipFamily(ip: string): Family {
  return ip.includes(":") ? 6 : 4;
}

/** Pods of one cluster by namespace, and within a namespace by each `key=value` label they carry. */
class PodIndex {
  private readonly byNamespace = new Map<string, { all: Pod[]; byLabel: Map<string, Pod[]> }>();
  constructor(pods: readonly Pod[]) {
    for (const pod of pods) {
      let ns = this.byNamespace.get(pod.meta.namespace);
      if (!ns) {
        ns = { all: [], byLabel: new Map() };
        this.byNamespace.set(pod.meta.namespace, ns);
      }
      ns.all.push(pod);
      for (const [k, v] of Object.entries(pod.meta.labels)) {
        const key = `${k}=${v}`;
        const list = ns.byLabel.get(key);
        if (list) list.push(pod);
        else ns.byLabel.set(key, [pod]);
      }
    }
  }
  /** Pods of `namespace` whose labels contain every pair of `selector` (an empty selector: all of them). */
  select(namespace: string, selector: Record<string, string>): Pod[] {
    const ns = this.byNamespace.get(namespace);
    if (!ns) return [];
    const pairs = Object.entries(selector);
    if (pairs.length === 0) return ns.all;
    // Start from the rarest pair, then check the others.
    let smallest: Pod[] | undefined;
    for (const [k, v] of pairs) {
      const list = ns.byLabel.get(`${k}=${v}`);
      if (!list) return [];
      if (!smallest || list.length < smallest.length) smallest = list;
    }
    const sel = { matchLabels: selector, matchExpressions: [] };
    return (smallest ?? []).filter((p) => matchesSelector(sel, p.meta.labels));
  }
}

/** The container port a named targetPort refers to (name and protocol), as Kubernetes' FindPort. */
function findNamedPort(pod: Pod, name: string, protocol: Protocol): ContainerPort | undefined {
  for (const c of pod.containers)
    for (const p of c.ports) if (p.name === name && p.protocol === protocol) return p;
  return undefined;
}

function fromPods(
  svc: Service,
  plan: ServicePlan,
  index: PodIndex,
  placed: Map<string, PodPlan>,
  families: Set<Family>,
): ProxyEndpoint[] {
  const out: ProxyEndpoint[] = [];
  for (const pod of index.select(svc.meta.namespace, svc.selector ?? {})) {
    const podKey = `${pod.meta.namespace}/${pod.meta.name}`;
    const where = placed.get(podKey);
    if (!where || where.ips.length === 0) continue; // not placed: no IP, no endpoint
    const ports: Record<string, number> = {};
    for (const sp of plan.ports) {
      const target = resolveTargetPort(pod, sp);
      if (target !== undefined) ports[servicePortKey(sp)] = target;
    }
    // The EndpointSlice controller: ready when the pod is ready, or always with publishNotReadyAddresses.
    const ready = pod.ready || svc.publishNotReadyAddresses;
    for (const text of where.ips) {
      const ip = canonicalIp(text);
      if (ip === undefined || !families.has(ipFamily(ip))) continue;
      out.push({
        ip,
        family: ipFamily(ip),
        node: where.node,
        pod: podKey,
        ready,
        serving: pod.ready,
        terminating: false,
        ports,
      });
    }
  }
  return out;
}

function resolveTargetPort(pod: Pod, sp: ServicePortPlan): number | undefined {
  if (typeof sp.targetPort === "number") return sp.targetPort;
  return findNamedPort(pod, sp.targetPort, sp.protocol)?.containerPort;
}

function fromSlices(
  state: DesiredState,
  svc: Service,
  plan: ServicePlan,
  nodeOfIp: Map<string, PodPlan>,
  families: Set<Family>,
): ProxyEndpoint[] {
  const out: ProxyEndpoint[] = [];
  const seen = new Set<string>();
  for (const slice of state.endpointSlices) {
    if (slice.meta.cluster !== svc.meta.cluster || slice.meta.namespace !== svc.meta.namespace) continue;
    if (slice.serviceName !== svc.meta.name || slice.addressType === "FQDN") continue;
    // kube-proxy pairs a slice port with the service port of the same name and protocol.
    const ports: Record<string, number> = {};
    for (const sp of plan.ports) {
      const match = slice.ports.find((p) => (p.name ?? "") === (sp.name ?? "") && p.protocol === sp.protocol);
      if (match) ports[servicePortKey(sp)] = match.port;
    }
    for (const ep of slice.endpoints) {
      for (const text of ep.addresses) {
        const ip = canonicalIp(text);
        if (ip === undefined || !families.has(ipFamily(ip))) continue;
        const key = `${ip}|${JSON.stringify(ports)}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const pod = nodeOfIp.get(ip);
        const node = ep.nodeName ?? pod?.node;
        const ref = ep.targetRef?.kind === "Pod" ? ep.targetRef : undefined;
        const podName = ref ? `${ref.namespace ?? slice.meta.namespace}/${ref.name}` : undefined;
        out.push({
          ip,
          family: ipFamily(ip),
          ...(node !== undefined ? { node } : {}),
          ...(podName !== undefined ? { pod: podName } : {}),
          ready: ep.conditions.ready,
          serving: ep.conditions.serving,
          terminating: ep.conditions.terminating,
          ports,
        });
      }
    }
  }
  return out;
}

/** The address families a service's endpoints are wanted in: its ClusterIPs', else its ipFamilies, else both. */
function serviceFamilies(svc: Service, plan: ServicePlan): Set<Family> {
  const fromIps = plan.clusterIPs.map(ipFamily);
  if (fromIps.length > 0) return new Set(fromIps);
  const declared = svc.ipFamilies.map((f): Family => (f === "IPv6" ? 6 : 4));
  return new Set(declared.length > 0 ? declared : [4, 6]);
}

/**
 * The endpoints of every Service of the cluster `plan` describes (ExternalName services have none and are
 * left out; headless ones are included, DNS needs them), in the order of `plan.services`.
 */
export function deriveEndpoints(state: DesiredState, plan: ClusterPlan): ServiceEndpoints[] {
  const pods = state.pods.filter((p) => p.meta.cluster === plan.name);
  const index = new PodIndex(pods);
  const placed = new Map(plan.pods.map((p) => [`${p.namespace}/${p.name}`, p]));
  const byIp = new Map<string, PodPlan>();
  for (const p of plan.pods) {
    if (p.hostNetwork) continue;
    for (const ip of p.ips) {
      const c = canonicalIp(ip);
      if (c !== undefined) byIp.set(c, p);
    }
  }
  const objects = new Map(
    state.services
      .filter((s) => s.meta.cluster === plan.name)
      .map((s) => [`${s.meta.namespace}/${s.meta.name}`, s]),
  );
  const out: ServiceEndpoints[] = [];
  for (const sp of plan.services) {
    const svc = objects.get(`${sp.namespace}/${sp.name}`);
    if (!svc || svc.type === "ExternalName") continue;
    const families = serviceFamilies(svc, sp);
    const selected = svc.selector !== undefined;
    out.push({
      namespace: sp.namespace,
      name: sp.name,
      source: selected ? "selector" : "endpointslices",
      endpoints: selected
        ? fromPods(svc, sp, index, placed, families)
        : fromSlices(state, svc, sp, byIp, families),
    });
  }
  return out;
}

/** Every hostPort of the cluster's (non-hostNetwork) pods, per pod IP family. */
export function deriveHostPorts(state: DesiredState, plan: ClusterPlan): HostPortMapping[] {
  const placed = new Map(plan.pods.map((p) => [`${p.namespace}/${p.name}`, p]));
  const out: HostPortMapping[] = [];
  for (const pod of state.pods) {
    if (pod.meta.cluster !== plan.name || pod.hostNetwork) continue;
    const key = `${pod.meta.namespace}/${pod.meta.name}`;
    const where = placed.get(key);
    if (!where) continue;
    for (const c of pod.containers) {
      for (const p of c.ports) {
        if (p.hostPort === undefined) continue;
        for (const text of where.ips) {
          const ip = canonicalIp(text);
          if (ip === undefined) continue;
          out.push({
            node: where.node,
            pod: key,
            protocol: p.protocol,
            hostPort: p.hostPort,
            podIp: ip,
            family: ipFamily(ip),
            containerPort: p.containerPort,
          });
        }
      }
    }
  }
  return out;
}
