/**
 * The cluster zone: the records of the Kubernetes DNS-Based Service Discovery specification (schema
 * 1.1.0), answered the way CoreDNS's kubernetes plugin answers them (plugin/kubernetes/kubernetes.go
 * findServices/findPods, plugin/backend_lookup.go, reverse.go), with the deviations listed in the README.
 *
 * Build is one Map entry per service (O(services)); records are generated at lookup time from the
 * service's entry, so a lookup costs O(records it returns). Reverse and verified-pod indexes are built on
 * the first query that needs them and kept up to date by `update`.
 */
import type { PodRecordsMode } from "../../api/types.js";
import { tryParseIp } from "../../ipam/cidr.js";
import type { DnsRecord, LookupResult, Rcode, ZoneAnswerer } from "../types.js";
import type { ClusterZoneInput, ZoneEndpoint, ZonePod, ZonePort, ZoneService } from "./input.js";
import {
  addressFromReverse,
  dashedIp,
  isIpv6,
  parseRequest,
  podNameAddress,
  type RecordRequest,
} from "./names.js";

/** The schema version `dns-version.<zone>` TXT answers; CoreDNS gives it a TTL of 28800. */
export const DNS_SCHEMA_VERSION = "1.1.0";
const DNS_VERSION_TTL = 28800;
const DEFAULT_TTL = 5;
/** CoreDNS follows at most 8 CNAMEs inside its zone (backend_lookup.go: `len(previousRecords) > 7`). */
const MAX_CNAME_DEPTH = 8;
/** CoreDNS's port for endpoints whose slice declares no ports: an address, but no SRV record. */
const NO_PORT = -1;
const NO_PORTS: readonly ZonePort[] = [{ name: "", protocol: "" as ZonePort["protocol"], port: NO_PORT }];

export type ZoneChange =
  /** Adds the service, or replaces the one of that namespace and name. */
  | { kind: "service"; service: ZoneService }
  | { kind: "service-removed"; namespace: string; name: string }
  | { kind: "pods"; pods: ZonePod[] }
  | { kind: "namespaces"; namespaces: string[] };

/**
 * What a name resolves to before the query type is applied: CoreDNS's `[]msg.Service`. `host` is an
 * address, or for an ExternalName service the CNAME target; `target` is the owner name SRV records point to.
 */
interface Found {
  host: string;
  port: number;
  target: string;
  cname: boolean;
}

interface ServiceEntry {
  readonly service: ZoneService;
  /** `<service>.<namespace>.svc.<domain>` */
  readonly domain: string;
  /** ExternalName services: the CNAME target, lower case without the final dot; undefined for an IP. */
  readonly alias?: string;
  /** Ready endpoints (all of them with publishNotReadyAddresses); computed on first use. */
  published?: ZoneEndpoint[];
  /** Published endpoints by CoreDNS's endpoint hostname; computed on first endpoint-name query. */
  byHostname?: Map<string, ZoneEndpoint[]>;
}

interface ReverseIndex {
  /** ClusterIP → the (first) service that has it. */
  services: Map<string, ServiceEntry>;
  /** Published endpoint IP → the service it is an endpoint of (an array for the few that back several). */
  endpoints: Map<string, ServiceEntry | ServiceEntry[]>;
}

function published(entry: ServiceEntry): ZoneEndpoint[] {
  if (entry.published) return entry.published;
  const { endpoints, publishNotReadyAddresses } = entry.service;
  entry.published =
    publishNotReadyAddresses || endpoints.every((ep) => ep.ready)
      ? endpoints
      : endpoints.filter((ep) => ep.ready);
  return entry.published;
}

/** CoreDNS's endpointHostname (without endpoint_pod_names): the hostname, else the dashed IP. */
function endpointHostname(ep: ZoneEndpoint): string {
  return ep.hostname !== undefined ? ep.hostname.toLowerCase() : dashedIp(ep.ip);
}

function byHostname(entry: ServiceEntry): Map<string, ZoneEndpoint[]> {
  if (entry.byHostname) return entry.byHostname;
  const index = new Map<string, ZoneEndpoint[]>();
  for (const ep of published(entry)) {
    const name = endpointHostname(ep);
    const list = index.get(name);
    if (list) list.push(ep);
    else index.set(name, [ep]);
  }
  entry.byHostname = index;
  return index;
}

/** matchPortAndProtocol: an empty port or protocol in the query matches any. */
function portMatches(r: RecordRequest, p: ZonePort): boolean {
  return (r.port === "" || r.port === p.name) && (r.protocol === "" || r.protocol === p.protocol);
}

export class ClusterZone implements ZoneAnswerer {
  readonly zones: readonly string[];
  readonly domain: string;
  readonly ttl: number;
  /** SOA serial: the input's, plus one per `update`. */
  serial: number;
  private readonly dotDomain: string;
  private readonly podRecords: PodRecordsMode;
  private readonly nameServer: string;
  private readonly nameServerIPs: string[];
  /** Namespace → service name → entry (nested: no key concatenation on the lookup path). */
  private readonly services = new Map<string, Map<string, ServiceEntry>>();
  private namespaces: Set<string>;
  private pods: ZonePod[];
  private podIndex: Map<string, string | string[]> | undefined;
  private reverse: ReverseIndex | undefined;

  constructor(input: ClusterZoneInput) {
    this.domain = input.domain.toLowerCase().replace(/\.$/, "");
    this.dotDomain = `.${this.domain}`;
    this.zones = [this.domain, "in-addr.arpa", "ip6.arpa"];
    this.ttl = input.ttl ?? DEFAULT_TTL;
    this.serial = input.serial ?? 1;
    this.podRecords = input.podRecords ?? "disabled";
    this.nameServer = `ns.dns.${this.domain}`;
    this.nameServerIPs = [...new Set(input.nameServerIPs)];
    this.namespaces = new Set(input.namespaces.map((n) => n.toLowerCase()));
    this.pods = input.pods;
    for (const service of input.services) this.addService(service);
  }

  /** Applies changes in place (O(size of what changed)) and adds one to the SOA serial. */
  update(changes: ZoneChange | readonly ZoneChange[]): void {
    const list: readonly ZoneChange[] = "kind" in changes ? [changes] : changes;
    for (const change of list) {
      switch (change.kind) {
        case "service":
          this.removeService(change.service.namespace, change.service.name);
          this.addService(change.service);
          break;
        case "service-removed":
          this.removeService(change.namespace, change.name);
          break;
        case "pods":
          this.pods = change.pods;
          this.podIndex = undefined;
          break;
        case "namespaces":
          this.namespaces = new Set(change.namespaces.map((n) => n.toLowerCase()));
          break;
      }
    }
    this.serial++;
  }

  lookup(qname: string, qtype: string): LookupResult | undefined {
    if (qname === this.domain) return this.answerCluster(qname, "", qtype, 0);
    if (qname.endsWith(this.dotDomain))
      return this.answerCluster(qname, qname.slice(0, -this.dotDomain.length), qtype, 0);
    if (qname.endsWith(".in-addr.arpa") || qname.endsWith(".ip6.arpa") || qname === "in-addr.arpa")
      return qtype === "PTR" ? this.answerReverse(qname) : undefined;
    return undefined;
  }

  // ------------------------------------------------------------------------------------------
  // Answers

  private answerCluster(qname: string, base: string, qtype: string, depth: number): LookupResult {
    // Zone transfers are not served (CoreDNS without the transfer plugin refuses them).
    if (qtype === "AXFR" || qtype === "IXFR") return result("REFUSED", [], [], []);
    const found = this.find(base);
    if (found === undefined) return this.negative("NXDOMAIN");
    const first = found[0];
    if (first?.cname) return this.answerAlias(qname, first.host, qtype, depth);
    switch (qtype) {
      case "A":
      case "AAAA":
        return this.positive(addressRecords(qname, found, qtype === "AAAA", this.ttl), []);
      case "SRV":
        return this.answerSrv(qname, found);
      case "TXT":
        return base === "dns-version"
          ? this.positive(
              [{ name: qname, type: "TXT", ttl: DNS_VERSION_TTL, data: [DNS_SCHEMA_VERSION] }],
              [],
            )
          : this.negative("NOERROR");
      case "SOA":
        return base === "" ? this.positive([this.soa()], []) : this.negative("NOERROR");
      case "NS":
        return base === "" ? this.answerNs() : this.negative("NOERROR");
      default:
        // ANY, PTR, MX and every other type: CoreDNS's "fake A lookup" tells NODATA from NXDOMAIN.
        return this.negative("NOERROR");
    }
  }

  /** An ExternalName service: the CNAME for any type; targets inside the zone are followed (as CoreDNS). */
  private answerAlias(qname: string, target: string, qtype: string, depth: number): LookupResult {
    const cname: DnsRecord = { name: qname, type: "CNAME", ttl: this.ttl, data: target };
    const inZone = target === this.domain || target.endsWith(this.dotDomain);
    if (qtype === "CNAME" || !inZone || depth + 1 >= MAX_CNAME_DEPTH || target === qname)
      return this.positive([cname], []);
    const base = target === this.domain ? "" : target.slice(0, -this.dotDomain.length);
    const next = this.answerCluster(target, base, qtype, depth + 1);
    return result(next.rcode, [cname, ...next.answers], next.authority, next.additionals);
  }

  /**
   * SRV as plugin.SRV: priority 0, weight 100 shared evenly by the records found (at least 1), one SRV per
   * (target, port), the target's address in the additional section once per (target, address).
   */
  private answerSrv(qname: string, found: Found[]): LookupResult {
    const weight = Math.max(1, Math.floor((100 / (100 * found.length)) * 100));
    const answers: DnsRecord[] = [];
    const additionals: DnsRecord[] = [];
    const seenSrv = new Set<string>();
    const seenAddress = new Set<string>();
    for (const f of found) {
      if (f.port === NO_PORT) continue;
      const srvKey = `${f.target} ${f.port}`;
      if (!seenSrv.has(srvKey)) {
        seenSrv.add(srvKey);
        answers.push({
          name: qname,
          type: "SRV",
          ttl: this.ttl,
          data: { priority: 0, weight, port: f.port, target: f.target },
        });
      }
      const addressKey = `${f.target} ${f.host}`;
      if (!seenAddress.has(addressKey)) {
        seenAddress.add(addressKey);
        additionals.push({
          name: f.target,
          type: isIpv6(f.host) ? "AAAA" : "A",
          ttl: this.ttl,
          data: f.host,
        });
      }
    }
    return answers.length > 0 ? result("NOERROR", answers, [], additionals) : this.negative("NOERROR");
  }

  /** The apex NS: `ns.dns.<zone>`, its addresses (the cluster DNS service's) as glue. */
  private answerNs(): LookupResult {
    const ns: DnsRecord = { name: this.domain, type: "NS", ttl: this.ttl, data: this.nameServer };
    const glue: DnsRecord[] = this.nameServerIPs.map((ip) => ({
      name: this.nameServer,
      type: isIpv6(ip) ? "AAAA" : "A",
      ttl: this.ttl,
      data: ip,
    }));
    return result("NOERROR", [ns], [], glue);
  }

  /** PTR for a service ClusterIP, else for every service the address is a published endpoint of. */
  private answerReverse(qname: string): LookupResult | undefined {
    const ip = addressFromReverse(qname);
    if (ip === undefined) return undefined;
    const index = this.reverseIndex();
    const service = index.services.get(ip);
    const targets = new Set<string>();
    if (service) targets.add(service.domain);
    else
      for (const entry of entriesOf(index.endpoints.get(ip)))
        for (const ep of published(entry))
          if (ep.ip === ip) targets.add(`${endpointHostname(ep)}.${entry.domain}`);
    // Not a cluster address: undefined, so that the server forwards (CoreDNS's `fallthrough in-addr.arpa`).
    if (targets.size === 0) return undefined;
    const answers: DnsRecord[] = [];
    for (const target of targets) answers.push({ name: qname, type: "PTR", ttl: this.ttl, data: target });
    return result("NOERROR", answers, [], []);
  }

  private positive(answers: DnsRecord[], additionals: DnsRecord[]): LookupResult {
    return answers.length > 0 ? result("NOERROR", answers, [], additionals) : this.negative("NOERROR");
  }

  /** NXDOMAIN, or NOERROR without answers (NODATA): the SOA in the authority section, as CoreDNS. */
  private negative(rcode: "NXDOMAIN" | "NOERROR"): LookupResult {
    return result(rcode, [], [this.soa()], []);
  }

  /** plugin.SOA: TTL min(ttl, 300), minimum = ttl, CoreDNS's fixed timers. */
  private soa(): DnsRecord {
    return {
      name: this.domain,
      type: "SOA",
      ttl: Math.min(this.ttl, 300),
      data: {
        mname: this.nameServer,
        rname: `hostmaster.${this.domain}`,
        serial: this.serial,
        refresh: 7200,
        retry: 1800,
        expire: 86400,
        minimum: this.ttl,
      },
    };
  }

  // ------------------------------------------------------------------------------------------
  // Names → what they stand for (CoreDNS's Services / Records / findServices / findPods)

  /** Undefined: the name does not exist (NXDOMAIN). Empty: it exists without address data (NODATA). */
  private find(base: string): Found[] | undefined {
    if (base === "ns.dns")
      return this.nameServerIPs.map((ip) => ({
        host: ip,
        port: NO_PORT,
        target: this.nameServer,
        cname: false,
      }));
    // CoreDNS answers only TXT here and NXDOMAIN for other types; the name exists, so NODATA (README).
    if (base === "dns-version") return [];
    const r = parseRequest(base);
    if (r === undefined) return undefined;
    if (r.podOrSvc === "") return [];
    if (!this.namespaces.has(r.namespace)) return undefined;
    return r.podOrSvc === "pod" ? this.findPods(r) : this.findServices(r);
  }

  private findServices(r: RecordRequest): Found[] | undefined {
    if (r.service === "") return []; // `<ns>.svc.<zone>`: NODATA for an existing namespace
    const entry = this.services.get(r.namespace)?.get(r.service);
    if (!entry) return undefined;
    const svc = entry.service;
    if (svc.kind === "ExternalName") {
      // No endpoints under an ExternalName; an IP as externalName makes no CNAME (CoreDNS: NXDOMAIN).
      if (r.endpoint !== "" || entry.alias === undefined) return undefined;
      return [{ host: entry.alias, port: 0, target: entry.domain, cname: true }];
    }
    if (svc.kind === "Headless" || r.endpoint !== "") {
      const endpoints = r.endpoint !== "" ? byHostname(entry).get(r.endpoint) : published(entry);
      const out: Found[] = [];
      for (const ep of endpoints ?? []) {
        const target = `${endpointHostname(ep)}.${entry.domain}`;
        for (const p of ep.ports.length > 0 ? ep.ports : NO_PORTS)
          if (portMatches(r, p)) out.push({ host: ep.ip, port: p.port, target, cname: false });
      }
      return out.length > 0 ? out : undefined;
    }
    let matched = false;
    const out: Found[] = [];
    for (const p of svc.ports) {
      if (!portMatches(r, p)) continue;
      matched = true;
      for (const ip of svc.clusterIPs)
        out.push({ host: ip, port: p.port, target: entry.domain, cname: false });
    }
    return matched ? out : undefined;
  }

  private findPods(r: RecordRequest): Found[] | undefined {
    if (this.podRecords === "disabled") return undefined;
    if (r.service === "") return []; // `<ns>.pod.<zone>`: NODATA for an existing namespace
    const ip = podNameAddress(r.service);
    if (ip === undefined) return undefined;
    // Extra labels left of a pod name are ignored, as CoreDNS does: the owner is always the pod name.
    const found = [
      { host: ip, port: 0, target: `${r.service}.${r.namespace}.pod.${this.domain}`, cname: false },
    ];
    if (this.podRecords === "insecure") return found;
    // verified: a pod of that namespace has the address, written in its canonical (dashed) form.
    if (r.service !== dashedIp(ip)) return undefined;
    return this.podHasAddress(ip, r.namespace) ? found : undefined;
  }

  // ------------------------------------------------------------------------------------------
  // Indexes

  private addService(service: ZoneService): void {
    const namespace = service.namespace.toLowerCase();
    const name = service.name.toLowerCase();
    const alias = service.externalName?.toLowerCase().replace(/\.$/, "");
    const entry: ServiceEntry = {
      service,
      domain: `${name}.${namespace}.svc.${this.domain}`,
      ...(alias && !tryParseIp(alias) ? { alias } : {}),
    };
    let inNamespace = this.services.get(namespace);
    if (!inNamespace) {
      inNamespace = new Map();
      this.services.set(namespace, inNamespace);
    }
    inNamespace.set(name, entry);
    if (this.reverse) addToReverse(this.reverse, entry);
  }

  private removeService(namespace: string, name: string): void {
    const inNamespace = this.services.get(namespace.toLowerCase());
    const entry = inNamespace?.get(name.toLowerCase());
    if (!inNamespace || !entry) return;
    inNamespace.delete(name.toLowerCase());
    if (this.reverse) removeFromReverse(this.reverse, entry);
  }

  private reverseIndex(): ReverseIndex {
    if (this.reverse) return this.reverse;
    const index: ReverseIndex = { services: new Map(), endpoints: new Map() };
    for (const inNamespace of this.services.values())
      for (const entry of inNamespace.values()) addToReverse(index, entry);
    this.reverse = index;
    return index;
  }

  /** Whether a pod of `namespace` has the address `ip` (verified pod records). */
  private podHasAddress(ip: string, namespace: string): boolean {
    if (!this.podIndex) {
      // A namespace per address (an array only for the rare address in several namespaces, e.g. hostNetwork).
      const index = new Map<string, string | string[]>();
      for (const pod of this.pods) {
        const ns = pod.namespace.toLowerCase();
        for (const podIp of pod.ips) {
          const had = index.get(podIp);
          if (had === undefined) index.set(podIp, ns);
          else if (typeof had === "string") {
            if (had !== ns) index.set(podIp, [had, ns]);
          } else if (!had.includes(ns)) had.push(ns);
        }
      }
      this.podIndex = index;
    }
    const found = this.podIndex.get(ip);
    return typeof found === "string" ? found === namespace : (found?.includes(namespace) ?? false);
  }
}

function entriesOf(found: ServiceEntry | ServiceEntry[] | undefined): readonly ServiceEntry[] {
  return found === undefined ? [] : Array.isArray(found) ? found : [found];
}

function addToReverse(index: ReverseIndex, entry: ServiceEntry): void {
  const svc = entry.service;
  if (svc.kind === "ClusterIP")
    for (const ip of svc.clusterIPs) if (!index.services.has(ip)) index.services.set(ip, entry);
  for (const ep of published(entry)) {
    const had = index.endpoints.get(ep.ip);
    if (had === undefined) index.endpoints.set(ep.ip, entry);
    else if (!Array.isArray(had)) {
      if (had !== entry) index.endpoints.set(ep.ip, [had, entry]);
    } else if (!had.includes(entry)) had.push(entry);
  }
}

function removeFromReverse(index: ReverseIndex, entry: ServiceEntry): void {
  for (const ip of entry.service.clusterIPs) if (index.services.get(ip) === entry) index.services.delete(ip);
  for (const ep of published(entry)) {
    const had = index.endpoints.get(ep.ip);
    if (had === entry) index.endpoints.delete(ep.ip);
    else if (Array.isArray(had)) {
      const rest = had.filter((e) => e !== entry);
      if (rest.length === 0) index.endpoints.delete(ep.ip);
      else index.endpoints.set(ep.ip, rest.length === 1 ? (rest[0] as ServiceEntry) : rest);
    }
  }
}

/** plugin.A / plugin.AAAA: one record per distinct address of the family, owned by the query name. */
function addressRecords(qname: string, found: readonly Found[], v6: boolean, ttl: number): DnsRecord[] {
  const out: DnsRecord[] = [];
  let seen: Set<string> | undefined;
  for (const f of found) {
    if (isIpv6(f.host) !== v6) continue;
    if (out.length > 0) {
      seen ??= new Set(out.map((r) => r.data as string));
      if (seen.has(f.host)) continue;
      seen.add(f.host);
    }
    out.push({ name: qname, type: v6 ? "AAAA" : "A", ttl, data: f.host });
  }
  return out;
}

function result(
  rcode: Rcode,
  answers: DnsRecord[],
  authority: DnsRecord[],
  additionals: DnsRecord[],
): LookupResult {
  return { rcode, answers, authority, additionals };
}

/** The cluster zone for `input` (see ClusterZone). */
export function buildClusterZone(input: ClusterZoneInput): ClusterZone {
  return new ClusterZone(input);
}
