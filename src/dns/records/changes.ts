/**
 * The difference between two zone inputs as `ZoneChange`s, so that a server which re-derives its input
 * after every state change updates the zone in place (O(what changed) once compared) instead of rebuilding it.
 */
import type { ClusterZoneInput, ZoneEndpoint, ZonePod, ZonePort, ZoneService } from "./input.js";
import type { ZoneChange } from "./zone.js";

function samePorts(a: readonly ZonePort[], b: readonly ZonePort[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as ZonePort;
    const y = b[i] as ZonePort;
    if (x.port !== y.port || x.name !== y.name || x.protocol !== y.protocol) return false;
  }
  return true;
}

function sameEndpoint(a: ZoneEndpoint, b: ZoneEndpoint): boolean {
  return a.ip === b.ip && a.hostname === b.hostname && a.ready === b.ready && samePorts(a.ports, b.ports);
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function sameService(a: ZoneService, b: ZoneService): boolean {
  if (a === b) return true;
  if (
    a.kind !== b.kind ||
    a.externalName !== b.externalName ||
    a.publishNotReadyAddresses !== b.publishNotReadyAddresses ||
    !sameStrings(a.clusterIPs, b.clusterIPs) ||
    !samePorts(a.ports, b.ports) ||
    a.endpoints.length !== b.endpoints.length
  )
    return false;
  for (let i = 0; i < a.endpoints.length; i++)
    if (!sameEndpoint(a.endpoints[i] as ZoneEndpoint, b.endpoints[i] as ZoneEndpoint)) return false;
  return true;
}

function samePods(a: readonly ZonePod[], b: readonly ZonePod[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as ZonePod;
    const y = b[i] as ZonePod;
    if (x.namespace !== y.namespace || !sameStrings(x.ips, y.ips)) return false;
  }
  return true;
}

const keyOf = (s: ZoneService) => `${s.namespace}/${s.name}`;

/**
 * The changes that turn a zone built from `before` into one built from `after`; undefined when a zone-wide
 * setting differs (domain, TTL, pod records mode, name server addresses): then build a new zone.
 */
export function zoneChanges(before: ClusterZoneInput, after: ClusterZoneInput): ZoneChange[] | undefined {
  if (
    before.domain !== after.domain ||
    before.ttl !== after.ttl ||
    before.podRecords !== after.podRecords ||
    !sameStrings(before.nameServerIPs, after.nameServerIPs)
  )
    return undefined;
  const changes: ZoneChange[] = [];
  if (!sameStrings(before.namespaces, after.namespaces))
    changes.push({ kind: "namespaces", namespaces: after.namespaces });
  // Inputs derived from the same plan list services in the same order: walk both while they line up,
  // and fall back to matching by key from the first difference in the list itself.
  const was = before.services;
  const now = after.services;
  let i = 0;
  for (const n = Math.min(was.length, now.length); i < n; i++) {
    const old = was[i] as ZoneService;
    const service = now[i] as ZoneService;
    if (old.namespace !== service.namespace || old.name !== service.name) break;
    if (!sameService(old, service)) changes.push({ kind: "service", service });
  }
  const previous = new Map<string, ZoneService>();
  for (let j = i; j < was.length; j++) previous.set(keyOf(was[j] as ZoneService), was[j] as ZoneService);
  for (let j = i; j < now.length; j++) {
    const service = now[j] as ZoneService;
    const key = keyOf(service);
    const old = previous.get(key);
    previous.delete(key);
    if (!old || !sameService(old, service)) changes.push({ kind: "service", service });
  }
  for (const gone of previous.values())
    changes.push({ kind: "service-removed", namespace: gone.namespace, name: gone.name });
  if (!samePods(before.pods, after.pods)) changes.push({ kind: "pods", pods: after.pods });
  return changes;
}
