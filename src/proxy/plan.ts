/**
 * planProxyRules: the service proxy of ONE node (kube-proxy's job) as nftables tables, one per address
 * family (`ip podnet-proxy`, `ip6 podnet-proxy`). Pure: plain data plus its text; the node agent applies
 * the text with `nft -f` (one transaction) and later changes with planProxyUpdate (diff.ts).
 *
 * The layout ("slot maps", chosen by measurement: see README.md) keeps per-Service state in named map
 * ELEMENTS, not in rules or chains:
 *
 *   services       map  daddr . proto . dport → goto endpoints-N | goto sticky-… | drop
 *   tcp-backends   map  daddr . dport . slot → endpoint . port   (slot = numgen random mod N; udp-… alike)
 *   endpoints-N    one shared chain per endpoint count N: dnat through the backends maps
 *
 * so a Service is a handful of elements, a change to one Service is a handful of element commands, and no
 * rule binds an anonymous set (on this kernel every such binding scans the whole pending transaction).
 * Only ClientIP session affinity needs per-Service chains (with per-endpoint named sets, as kube-proxy).
 */
import type { Diagnostic } from "../api/diagnostics.js";
import type { DesiredState, Service } from "../api/types.js";
import { sha256Hex } from "../linux/sha256.js";
import type { ClusterPlan, ServicePlan, ServicePortPlan } from "../plan/types.js";
import {
  canonicalIp,
  deriveEndpoints,
  deriveHostPorts,
  type Family,
  type HostPortMapping,
  ipFamily,
  type ProxyEndpoint,
  type ServiceEndpoints,
  servicePortKey,
} from "./endpoints.js";
import {
  describeTable,
  type NftChain,
  type NftElement,
  type NftSet,
  type NftTable,
  renderTable,
} from "./nft-model.js";

export const PROXY_TABLE = "podnet-proxy";
/** Packet mark bit: "masquerade this connection" (kube-proxy's bit), set in nat chains, cleared at postrouting. */
export const MASQUERADE_MARK = 0x4000;
/** Chain priorities (numbers: nft 1.0.6 rejects some names, e.g. dstnat on output). */
export const PRIORITY = { firewall: -110, dnat: -100, afterDnat: -90, snat: 100 } as const;

export interface ProxyInput {
  /** The cluster's services as planned: ClusterIPs, nodePorts, load-balancer IPs, externalIPs. */
  services: readonly ServicePlan[];
  /** The Service objects (traffic policies, session affinity), matched to `services` by namespace/name. */
  serviceObjects: readonly Service[];
  /** deriveEndpoints(state, plan). */
  endpoints: readonly ServiceEndpoints[];
  /** This node: its name (for the traffic policies Local) and the addresses NodePorts and hostPorts answer on. */
  node: { name: string; addresses: readonly string[] };
  /** The cluster's pod CIDRs: traffic to a ClusterIP from anywhere else is masqueraded. */
  podCIDRs: readonly string[];
  /** The cluster's service CIDRs: traffic to an address there that no Service has is dropped. */
  serviceCIDRs?: readonly string[];
  /** Pods' hostPorts (deriveHostPorts); only this node's are used. */
  hostPorts?: readonly HostPortMapping[];
  /** Table name; default PROXY_TABLE (benchmarks and tests use their own). */
  table?: string;
}

export type EntryKind = "clusterIP" | "nodePort" | "loadBalancer" | "externalIP" | "hostPort";

/** One address:port the proxy answers and where it sends connections: the explainable view of the tables. */
export interface ProxyEntry {
  family: Family;
  kind: EntryKind;
  address: string;
  protocol: "TCP" | "UDP";
  port: number;
  /** `namespace/name:port` of the Service port (`namespace/pod` for a hostPort). */
  owner: string;
  /** Endpoints (`ip:port`) that get the connections (for policy Local: the sources inside the cluster). */
  endpoints: string[];
  /** externalTrafficPolicy Local: endpoints for sources outside the cluster (this node's; empty: dropped). */
  localEndpoints?: string[];
  /** Only when `endpoints` is empty: `reject` (no endpoint anywhere) or `drop` (none on this node, policy Local). */
  ifNoEndpoint?: "reject" | "drop";
  /** How the client address is seen: `kept`, `masqueraded` (always), or masqueraded for off-cluster clients. */
  source: "kept" | "masqueraded" | "masqueraded-from-outside";
  /** ClientIP session affinity timeout, seconds. */
  affinitySeconds?: number;
}

export interface ProxyRuleset {
  node: string;
  /** One table per address family in use, IPv4 first. */
  tables: NftTable[];
  entries: ProxyEntry[];
  diagnostics: Diagnostic[];
  /** All tables in nft syntax, for `nft -f` into a namespace that has none of them yet (one transaction). */
  text: string;
}

interface Target {
  ip: string;
  port: number;
}

const PROTOCOL_NAME = { TCP: "tcp", UDP: "udp" } as const;

/** Names of everything in the table, in one place. */
const SET = {
  podCidrs: "pod-cidrs",
  serviceCidrs: "service-cidrs",
  clusterIps: "cluster-ips",
  masqueradeEntries: "masquerade-entries",
  localPolicyEntries: "local-policy-entries",
  noEndpointEntries: "no-endpoint-entries",
  firewallEntries: "firewall-entries",
  firewallAllowed: "firewall-allowed",
  hairpin: "hairpin-endpoints",
  services: "services",
  localPolicyServices: "local-policy-services",
} as const;

type Proto = "tcp" | "udp";

/**
 * The slot maps, one per protocol: nft 1.0.6 reads a `typeof … th dport` map back from the kernel with
 * the protocol of its data, and then refuses `add rule` for the other protocol ("conflicting protocols").
 */
function backendsMap(proto: Proto, local: boolean): string {
  return `${proto}-${local ? "local-" : ""}backends`;
}

function endpointsChain(n: number, local: boolean): string {
  return local ? `local-endpoints-${n}` : `endpoints-${n}`;
}

/** kube-proxy's choice: ready endpoints; when there are none, those still serving while terminating. */
function usable(eps: readonly ProxyEndpoint[]): ProxyEndpoint[] {
  const ready = eps.filter((e) => e.ready);
  return ready.length > 0 ? ready : eps.filter((e) => e.serving && e.terminating);
}

function targetsOf(eps: readonly ProxyEndpoint[], portKey: string): Target[] {
  const seen = new Set<string>();
  const out: Target[] = [];
  for (const e of eps) {
    const port = e.ports[portKey];
    if (port === undefined) continue;
    const k = `${e.ip}|${port}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push({ ip: e.ip, port });
  }
  // Stable slots: the same endpoints always land in the same slots, whatever order they came in.
  return out.sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : a.port - b.port));
}

function hostPortText(t: Target): string {
  return t.ip.includes(":") ? `[${t.ip}]:${t.port}` : `${t.ip}:${t.port}`;
}

/** One change a Service made to a family's table: what `FamilyTable.replay` applies again. */
type TableOp =
  | { op: "add"; set: string; element: NftElement }
  | { op: "claim"; key: string }
  | { op: "hairpin"; ip: string }
  | { op: "count"; local: boolean; n: number }
  | { op: "sticky"; chain: NftChain; sets: NftSet[] };

/** Builds one family's table. */
class FamilyTable {
  readonly ip: "ip" | "ip6";
  readonly addr: "ipv4_addr" | "ipv6_addr";
  private readonly sets = new Map<string, NftSet>();
  private readonly entryKeys = new Set<string>();
  private readonly stickyChains = new Map<string, NftChain>();
  private readonly stickySets = new Map<string, NftSet>();
  private readonly counts = { cluster: new Set<number>(), local: new Set<number>() };
  private readonly hairpin = new Set<string>();

  constructor(
    readonly family: Family,
    readonly tableName: string,
    readonly hasServiceCidrs: boolean,
  ) {
    this.ip = family === 4 ? "ip" : "ip6";
    this.addr = family === 4 ? "ipv4_addr" : "ipv6_addr";
    const a = this.addr;
    const entry = `${a} . inet_proto . inet_service`;
    const slotMap = (p: Proto) =>
      `typeof ${this.ip} daddr . th dport . numgen random mod 65536 : ${this.ip} daddr . ${p} dport`;
    this.declare(SET.podCidrs, "set", [`type ${a}`, "flags interval"]);
    if (hasServiceCidrs) this.declare(SET.serviceCidrs, "set", [`type ${a}`, "flags interval"]);
    this.declare(SET.clusterIps, "set", [`type ${a}`]);
    this.declare(SET.masqueradeEntries, "set", [`type ${entry}`]);
    this.declare(SET.localPolicyEntries, "set", [`type ${entry}`]);
    this.declare(SET.noEndpointEntries, "set", [`type ${entry}`]);
    this.declare(SET.firewallEntries, "set", [`type ${entry}`]);
    this.declare(SET.firewallAllowed, "set", [`type ${entry} . ${a}`, "flags interval"]);
    this.declare(SET.hairpin, "set", [`type ${a} . ${a}`]);
    this.declare(SET.services, "map", [`type ${entry} : verdict`]);
    this.declare(SET.localPolicyServices, "map", [`type ${entry} : verdict`]);
    for (const local of [false, true])
      for (const p of ["tcp", "udp"] as const) this.declare(backendsMap(p, local), "map", [slotMap(p)]);
  }

  private declare(name: string, kind: "set" | "map", spec: string[]): void {
    this.sets.set(name, { name, kind, spec, elements: [] });
  }

  /** While set, every change a Service makes is also logged here (a fragment, replayed by `replay`). */
  log: TableOp[] | undefined;

  add(set: string, element: NftElement): void {
    (this.sets.get(set) as NftSet).elements.push(element);
    this.log?.push({ op: "add", set, element });
  }

  /** Claims an address:port; false when another Service (or hostPort) has it already. */
  claim(key: string): boolean {
    if (this.entryKeys.has(key)) return false;
    this.entryKeys.add(key);
    this.log?.push({ op: "claim", key });
    return true;
  }

  isClaimed(key: string): boolean {
    return this.entryKeys.has(key);
  }

  addHairpin(ip: string): void {
    this.log?.push({ op: "hairpin", ip });
    this.insertHairpin(ip);
  }

  private insertHairpin(ip: string): void {
    if (!this.hairpin.has(ip)) {
      this.hairpin.add(ip);
      (this.sets.get(SET.hairpin) as NftSet).elements.push({ key: `${ip} . ${ip}` });
    }
  }

  /** Applies a logged fragment again (its claims were checked free by the caller). */
  replay(ops: readonly TableOp[]): void {
    for (const o of ops) {
      if (o.op === "add") (this.sets.get(o.set) as NftSet).elements.push(o.element);
      else if (o.op === "claim") this.entryKeys.add(o.key);
      else if (o.op === "hairpin") this.insertHairpin(o.ip);
      else if (o.op === "count") (o.local ? this.counts.local : this.counts.cluster).add(o.n);
      else {
        if (!this.stickyChains.has(o.chain.name)) this.stickyChains.set(o.chain.name, o.chain);
        for (const set of o.sets) if (!this.stickySets.has(set.name)) this.stickySets.set(set.name, set);
      }
    }
  }

  /**
   * The verdict that sends connections for `entry` to `targets`: a shared endpoints-N chain reading the
   * entry's slots from a backends map, or the Service port's sticky chain with affinity.
   */
  balance(
    entry: { address: string; proto: Proto; port: number },
    targets: Target[],
    local: boolean,
    sticky: { id: string; seconds: number } | undefined,
  ): string {
    if (sticky) return `goto ${this.stickyChain(sticky.id, targets, local, sticky.seconds, entry.proto)}`;
    const map = backendsMap(entry.proto, local);
    targets.forEach((t, slot) => {
      this.add(map, { key: `${entry.address} . ${entry.port} . ${slot}`, value: `${t.ip} . ${t.port}` });
    });
    (local ? this.counts.local : this.counts.cluster).add(targets.length);
    this.log?.push({ op: "count", local, n: targets.length });
    return `goto ${endpointsChain(targets.length, local)}`;
  }

  /**
   * ClientIP affinity, as kube-proxy: a named set of recent clients per endpoint (timeout = the Service's),
   * checked first; otherwise a uniform random pick (rule i matches with probability 1/(n-i)). Named sets
   * only: binding them costs no scan of the transaction.
   */
  private stickyChain(id: string, targets: Target[], local: boolean, seconds: number, proto: string): string {
    const name = `sticky-${id}${local ? "-local" : ""}`;
    if (this.stickyChains.has(name)) return name;
    const saddr = `${this.ip} saddr`;
    const setObjects: NftSet[] = [];
    const sets = targets.map((t) => {
      const set = `sticky-${sha256Hex(`${id}|${t.ip}|${t.port}`).slice(0, 10)}`;
      if (!this.stickySets.has(set)) {
        this.stickySets.set(set, {
          name: set,
          kind: "set",
          spec: [`type ${this.addr}`, "flags dynamic,timeout", `timeout ${seconds}s`],
          elements: [],
        });
      }
      setObjects.push(this.stickySets.get(set) as NftSet);
      return set;
    });
    const dnat = (i: number) =>
      `update @${sets[i]} { ${saddr} } dnat ${this.ip} to ${hostPortText(targets[i] as Target)}`;
    const rules = targets.map((_, i) => `meta l4proto ${proto} ${saddr} @${sets[i]} ${dnat(i)}`);
    targets.forEach((_, i) => {
      const n = targets.length - i;
      rules.push(
        n > 1
          ? `meta l4proto ${proto} numgen random mod ${n} 0 ${dnat(i)}`
          : `meta l4proto ${proto} ${dnat(i)}`,
      );
    });
    const chain = { name, rules };
    this.stickyChains.set(name, chain);
    this.log?.push({ op: "sticky", chain, sets: setObjects });
    return name;
  }

  build(): NftTable {
    const ip = this.ip;
    const key = `${ip} daddr . meta l4proto . th dport`;
    const mark = `meta mark set meta mark | 0x${MASQUERADE_MARK.toString(16)}`;
    const dnatVia = (n: number, local: boolean) =>
      (["tcp", "udp"] as const).map(
        (p) =>
          `meta l4proto ${p} dnat ${ip} to ${ip} daddr . th dport . numgen random mod ${n} map @${backendsMap(p, local)}`,
      );
    const shared = (local: boolean) =>
      [...(local ? this.counts.local : this.counts.cluster)]
        .sort((a, b) => a - b)
        .map((n) => ({ name: endpointsChain(n, local), rules: dnatVia(n, local) }));
    const unserved = [
      `${key} @${SET.noEndpointEntries} reject`,
      // Still addressed to a ClusterIP after DNAT: the Service has no endpoint, or not this port.
      `${ip} daddr @${SET.clusterIps} reject`,
      ...(this.hasServiceCidrs ? [`${ip} daddr @${SET.serviceCidrs} drop`] : []),
    ];
    const chains: NftChain[] = [
      {
        name: "filter-prerouting",
        base: { type: "filter", hook: "prerouting", priority: PRIORITY.firewall },
        rules: [`${key} @${SET.firewallEntries} ${key} . ${ip} saddr != @${SET.firewallAllowed} drop`],
      },
      {
        name: "nat-prerouting",
        base: { type: "nat", hook: "prerouting", priority: PRIORITY.dnat },
        rules: ["jump services"],
      },
      {
        name: "nat-output",
        base: { type: "nat", hook: "output", priority: PRIORITY.dnat },
        rules: ["jump services"],
      },
      {
        name: "filter-prerouting-post-dnat",
        base: { type: "filter", hook: "prerouting", priority: PRIORITY.afterDnat },
        rules: ["jump unserved"],
      },
      {
        name: "filter-output-post-dnat",
        base: { type: "filter", hook: "output", priority: PRIORITY.afterDnat },
        rules: ["jump unserved"],
      },
      {
        name: "nat-postrouting",
        base: { type: "nat", hook: "postrouting", priority: PRIORITY.snat },
        rules: ["jump masquerading"],
      },
      {
        name: "services",
        rules: [
          `${ip} saddr != @${SET.podCidrs} ${ip} daddr @${SET.clusterIps} ${mark}`,
          `${key} @${SET.masqueradeEntries} ${mark}`,
          `fib saddr type local ${key} @${SET.localPolicyEntries} ${mark}`,
          `${ip} saddr != @${SET.podCidrs} fib saddr type != local ${key} vmap @${SET.localPolicyServices}`,
          `${key} vmap @${SET.services}`,
        ],
      },
      ...shared(false),
      ...shared(true),
      ...[...this.stickyChains.values()].sort((a, b) => (a.name < b.name ? -1 : 1)),
      { name: "unserved", rules: unserved },
      {
        name: "masquerading",
        rules: [
          // Hairpin: a pod reaching itself through a Service must not see its own address as the client.
          `ct status dnat ${ip} saddr . ${ip} daddr @${SET.hairpin} masquerade fully-random`,
          `meta mark & 0x${MASQUERADE_MARK.toString(16)} == 0 return`,
          `meta mark set meta mark ^ 0x${MASQUERADE_MARK.toString(16)}`,
          "masquerade fully-random",
        ],
      },
    ];
    const sets = [
      ...this.sets.values(),
      ...[...this.stickySets.values()].sort((a, b) => (a.name < b.name ? -1 : 1)),
    ];
    return { family: ip, name: this.tableName, sets, chains };
  }
}

function diagnostic(code: string, object: string, message: string, hint?: string, path?: string): Diagnostic {
  return { severity: "warning", code, object, message, ...(hint ? { hint } : {}), ...(path ? { path } : {}) };
}

const SCTP_MESSAGE = "SCTP is not supported on this kernel (no SCTP module): this port is not proxied";

/** What every step of one node's planning reads and adds to. */
interface NodeContext {
  me: string;
  nodeAddresses: string[];
  tables: Map<Family, FamilyTable>;
  entries: ProxyEntry[];
  diagnostics: Diagnostic[];
}

/** One Service's addresses, canonical, and its policies. */
interface ServiceView {
  ref: string;
  endpoints: readonly ProxyEndpoint[];
  clusterIps: string[];
  loadBalancerIps: string[];
  externalIps: string[];
  affinity?: number;
  etpLocal: boolean;
  itpLocal: boolean;
  sourceRanges: readonly string[];
}

function canonicalAll(list: readonly string[]): string[] {
  const out: string[] = [];
  for (const t of list) {
    const c = canonicalIp(t);
    if (c !== undefined) out.push(c);
  }
  return out;
}

const cidrFamily = (c: string): Family => (c.includes(":") ? 6 : 4);

/** One port of one Service in one family's table: its ClusterIPs, then its ways in from outside. */
function planServicePort(ctx: NodeContext, s: ServiceView, port: ServicePortPlan, family: Family): void {
  const t = ctx.tables.get(family) as FamilyTable;
  const proto = PROTOCOL_NAME[port.protocol as "TCP" | "UDP"];
  const portKey = servicePortKey(port);
  const owner = `${s.ref}:${port.name ?? port.port}`;
  const mine = s.endpoints.filter((e) => e.family === family && e.ports[portKey] !== undefined);
  const cluster = targetsOf(usable(mine), portKey);
  const local = targetsOf(usable(mine.filter((e) => e.node === ctx.me)), portKey);
  for (const e of mine) if (e.node === ctx.me) t.addHairpin(e.ip);
  const sticky =
    s.affinity !== undefined
      ? { id: sha256Hex(`${s.ref}|${portKey}|${proto}`).slice(0, 10), seconds: s.affinity }
      : undefined;
  const claim = (address: string, p: number, kind: EntryKind): string | undefined => {
    const key = `${address} . ${proto} . ${p}`;
    if (t.claim(key)) return key;
    ctx.diagnostics.push(
      diagnostic(
        "proxy-address-conflict",
        `Service ${s.ref}`,
        `${kind} ${address}:${p}/${port.protocol} is already taken by another Service or hostPort; not proxied`,
      ),
    );
    return undefined;
  };
  const record = (entry: ProxyEntry) => {
    if (s.affinity !== undefined) entry.affinitySeconds = s.affinity;
    ctx.entries.push(entry);
  };

  // ClusterIPs: internalTrafficPolicy Local limits them to this node's endpoints (none here: drop).
  for (const vip of s.clusterIps) {
    if (ipFamily(vip) !== family) continue;
    const key = claim(vip, port.port, "clusterIP");
    if (key === undefined) continue;
    const scope = s.itpLocal ? local : cluster;
    const entry: ProxyEntry = {
      family,
      kind: "clusterIP",
      address: vip,
      protocol: port.protocol as "TCP" | "UDP",
      port: port.port,
      owner,
      endpoints: cluster.length > 0 ? scope.map(hostPortText) : [],
      source: "masqueraded-from-outside",
    };
    if (cluster.length === 0)
      entry.ifNoEndpoint = "reject"; // not in the map: `unserved` rejects it
    else {
      const target = { address: vip, proto, port: port.port };
      const verdict = scope.length > 0 ? t.balance(target, scope, s.itpLocal, sticky) : "drop";
      if (scope.length === 0) entry.ifNoEndpoint = "drop";
      t.add(SET.services, { key, value: verdict, comment: `${owner} clusterIP` });
    }
    record(entry);
  }

  // Ways in from outside: NodePort on this node's addresses, load-balancer IPs, external IPs.
  const external: { kind: EntryKind; address: string; port: number }[] = [];
  if (port.nodePort !== undefined)
    for (const a of ctx.nodeAddresses) external.push({ kind: "nodePort", address: a, port: port.nodePort });
  for (const a of s.loadBalancerIps) external.push({ kind: "loadBalancer", address: a, port: port.port });
  for (const a of s.externalIps) external.push({ kind: "externalIP", address: a, port: port.port });
  for (const x of external) {
    if (ipFamily(x.address) !== family) continue;
    const key = claim(x.address, x.port, x.kind);
    if (key === undefined) continue;
    const comment = `${owner} ${x.kind}`;
    const entry: ProxyEntry = {
      family,
      kind: x.kind,
      address: x.address,
      protocol: port.protocol as "TCP" | "UDP",
      port: x.port,
      owner,
      endpoints: cluster.map(hostPortText),
      source: s.etpLocal ? "kept" : "masqueraded",
    };
    if (cluster.length === 0) {
      t.add(SET.noEndpointEntries, { key, comment });
      entry.ifNoEndpoint = "reject";
    } else {
      // Sources inside the cluster (pods, this node) always reach every endpoint.
      const target = { address: x.address, proto, port: x.port };
      t.add(SET.services, { key, value: t.balance(target, cluster, false, sticky), comment });
      if (s.etpLocal) {
        // Sources outside: this node's endpoints only, client address kept; none here: drop.
        t.add(SET.localPolicyEntries, { key, comment });
        const verdict = local.length > 0 ? t.balance(target, local, true, sticky) : "drop";
        t.add(SET.localPolicyServices, { key, value: verdict, comment });
        entry.localEndpoints = local.map(hostPortText);
      } else t.add(SET.masqueradeEntries, { key, comment });
    }
    if (x.kind === "loadBalancer" && s.sourceRanges.length > 0) {
      t.add(SET.firewallEntries, { key, comment });
      for (const range of s.sourceRanges)
        if (cidrFamily(range) === family) t.add(SET.firewallAllowed, { key: `${key} . ${range}` });
    }
    record(entry);
  }
}

/** A hostPort of a pod on this node: <node address>:hostPort → podIP:containerPort (CNI portmap's job). */
function planHostPort(ctx: NodeContext, h: HostPortMapping): void {
  if (h.node !== ctx.me) return;
  if (h.protocol === "SCTP") {
    ctx.diagnostics.push(
      diagnostic("proxy-sctp-unsupported", `Pod ${h.pod}`, `hostPort ${h.hostPort}/SCTP: ${SCTP_MESSAGE}`),
    );
    return;
  }
  const t = ctx.tables.get(h.family);
  if (!t) return;
  const proto = PROTOCOL_NAME[h.protocol];
  t.addHairpin(h.podIp);
  for (const a of ctx.nodeAddresses) {
    if (ipFamily(a) !== h.family) continue;
    const key = `${a} . ${proto} . ${h.hostPort}`;
    if (!t.claim(key)) {
      ctx.diagnostics.push(
        diagnostic(
          "proxy-address-conflict",
          `Pod ${h.pod}`,
          `hostPort ${a}:${h.hostPort}/${h.protocol} is already taken by a Service or another pod; not mapped`,
        ),
      );
      continue;
    }
    const target = { ip: h.podIp, port: h.containerPort };
    const verdict = t.balance({ address: a, proto, port: h.hostPort }, [target], false, undefined);
    t.add(SET.services, { key, value: verdict, comment: `${h.pod} hostPort` });
    ctx.entries.push({
      family: h.family,
      kind: "hostPort",
      address: a,
      protocol: h.protocol,
      port: h.hostPort,
      owner: h.pod,
      endpoints: [hostPortText(target)],
      source: "kept",
    });
  }
}

/** The proxy ruleset of one node: see the module comment. */
export function planProxyRules(input: ProxyInput): ProxyRuleset {
  return planRules(input, undefined);
}

/**
 * planProxyRules with memory: each Service's share of the tables (its elements, claims and chains) is kept
 * and replayed while that Service, its endpoints and the node stay the same, so a re-plan after one change
 * among 10,000 Services plans one Service (the node agent keeps one planner per node).
 */
export class ProxyPlanner {
  private fragments = new Map<string, ServiceFragment>();
  private contextKey = "";
  /** Of the last plan: Services replayed from memory, and Services planned afresh. */
  lastRun = { replayed: 0, planned: 0 };

  plan(input: ProxyInput): ProxyRuleset {
    const key = JSON.stringify([
      input.node,
      input.podCIDRs,
      input.serviceCIDRs ?? [],
      input.table ?? PROXY_TABLE,
      [...new Set(input.services.flatMap((s) => s.clusterIPs.map(ipFamily)))].sort(),
    ]);
    if (key !== this.contextKey) {
      this.fragments.clear();
      this.contextKey = key;
    }
    const seen = new Set<string>();
    this.lastRun = { replayed: 0, planned: 0 };
    const ruleset = planRules(input, { fragments: this.fragments, seen, stats: this.lastRun });
    for (const ref of this.fragments.keys()) if (!seen.has(ref)) this.fragments.delete(ref);
    return ruleset;
  }
}

/** What one Service added to one node's tables, with what it was planned from. */
interface ServiceFragment {
  plan: ServicePlan;
  service: Service;
  endpoints: readonly ProxyEndpoint[];
  fingerprint: string;
  ops: Map<Family, TableOp[]>;
  entries: ProxyEntry[];
  diagnostics: Diagnostic[];
}

interface FragmentMemory {
  fragments: Map<string, ServiceFragment>;
  seen: Set<string>;
  stats: { replayed: number; planned: number };
}

/** Everything a Service's share of the tables depends on, besides the node (the planner's context key). */
function serviceFingerprint(plan: ServicePlan, svc: Service, endpoints: readonly ProxyEndpoint[]): string {
  return JSON.stringify([
    plan,
    svc.externalTrafficPolicy,
    svc.internalTrafficPolicy,
    svc.loadBalancerSourceRanges,
    svc.sessionAffinity,
    svc.sessionAffinityTimeoutSeconds,
    endpoints,
  ]);
}

/** Replays the Service's remembered share when its inputs are unchanged and its addresses still free. */
function replayFragment(
  ctx: NodeContext,
  f: ServiceFragment | undefined,
  plan: ServicePlan,
  svc: Service,
  endpoints: readonly ProxyEndpoint[],
): boolean {
  if (!f) return false;
  if (f.plan !== plan || f.service !== svc || f.endpoints !== endpoints) {
    if (f.fingerprint !== serviceFingerprint(plan, svc, endpoints)) return false;
    Object.assign(f, { plan, service: svc, endpoints });
  }
  for (const [family, ops] of f.ops) {
    const t = ctx.tables.get(family);
    if (!t) return false;
    for (const o of ops) if (o.op === "claim" && t.isClaimed(o.key)) return false; // someone else has it now
  }
  for (const [family, ops] of f.ops) (ctx.tables.get(family) as FamilyTable).replay(ops);
  ctx.entries.push(...f.entries);
  ctx.diagnostics.push(...f.diagnostics);
  return true;
}

/** Plans one Service while logging its share of the tables. */
function recordFragment(
  ctx: NodeContext,
  plan: () => void,
): Omit<ServiceFragment, "plan" | "service" | "endpoints" | "fingerprint"> {
  const ops = new Map<Family, TableOp[]>();
  for (const [family, t] of ctx.tables) {
    t.log = [];
    ops.set(family, t.log);
  }
  const entriesFrom = ctx.entries.length;
  const diagnosticsFrom = ctx.diagnostics.length;
  try {
    plan();
  } finally {
    for (const t of ctx.tables.values()) t.log = undefined;
  }
  return {
    ops,
    entries: ctx.entries.slice(entriesFrom),
    diagnostics: ctx.diagnostics.slice(diagnosticsFrom),
  };
}

const NO_ENDPOINTS: readonly ProxyEndpoint[] = [];

function planRules(input: ProxyInput, memory: FragmentMemory | undefined): ProxyRuleset {
  const tableName = input.table ?? PROXY_TABLE;
  const nodeAddresses = canonicalAll(input.node.addresses);
  const ctx: NodeContext = {
    me: input.node.name,
    nodeAddresses,
    tables: new Map(),
    entries: [],
    diagnostics: [],
  };
  const families = new Set<Family>();
  for (const c of input.podCIDRs) families.add(cidrFamily(c));
  for (const s of input.services) for (const ip of s.clusterIPs) families.add(ipFamily(ip));
  for (const a of nodeAddresses) families.add(ipFamily(a));
  for (const f of [4, 6] as const) {
    if (!families.has(f)) continue;
    const serviceCidrs = (input.serviceCIDRs ?? []).filter((c) => cidrFamily(c) === f);
    const t = new FamilyTable(f, tableName, serviceCidrs.length > 0);
    for (const c of input.podCIDRs) if (cidrFamily(c) === f) t.add(SET.podCidrs, { key: c });
    for (const c of serviceCidrs) t.add(SET.serviceCidrs, { key: c });
    ctx.tables.set(f, t);
  }

  const objects = new Map(input.serviceObjects.map((s) => [`${s.meta.namespace}/${s.meta.name}`, s]));
  const endpointsOf = new Map(input.endpoints.map((e) => [`${e.namespace}/${e.name}`, e.endpoints]));
  for (const plan of input.services) {
    const ref = `${plan.namespace}/${plan.name}`;
    const svc = objects.get(ref);
    if (!svc || plan.headless || plan.type === "ExternalName") continue; // not proxied
    const endpoints = endpointsOf.get(ref) ?? NO_ENDPOINTS;
    if (!memory) {
      planService(ctx, ref, plan, svc, endpoints);
      continue;
    }
    memory.seen.add(ref);
    if (replayFragment(ctx, memory.fragments.get(ref), plan, svc, endpoints)) {
      memory.stats.replayed++;
      continue;
    }
    memory.stats.planned++;
    const fragment = recordFragment(ctx, () => planService(ctx, ref, plan, svc, endpoints));
    // A Service that lost an address to another depends on the order of all of them: never replayed.
    if (fragment.diagnostics.some((d) => d.code === "proxy-address-conflict")) memory.fragments.delete(ref);
    else
      memory.fragments.set(ref, {
        ...fragment,
        plan,
        service: svc,
        endpoints,
        fingerprint: serviceFingerprint(plan, svc, endpoints),
      });
  }
  for (const h of input.hostPorts ?? []) planHostPort(ctx, h);

  const tables = [...ctx.tables.values()].map((t) => t.build());
  let text: string | undefined;
  return {
    node: ctx.me,
    tables,
    entries: ctx.entries,
    diagnostics: ctx.diagnostics,
    // Rendered when asked for: a diff-applying caller never needs the whole text.
    get text() {
      text ??= tables.map(renderTable).join("");
      return text;
    },
  };
}

/** One Service's ClusterIPs and ports, in every family's table. */
function planService(
  ctx: NodeContext,
  ref: string,
  plan: ServicePlan,
  svc: Service,
  endpoints: readonly ProxyEndpoint[],
): void {
  const view: ServiceView = {
    ref,
    endpoints,
    clusterIps: canonicalAll(plan.clusterIPs),
    loadBalancerIps: canonicalAll(plan.loadBalancerIPs),
    externalIps: canonicalAll(plan.externalIPs),
    etpLocal: svc.externalTrafficPolicy === "Local",
    itpLocal: svc.internalTrafficPolicy === "Local",
    sourceRanges: svc.loadBalancerSourceRanges,
  };
  if (svc.sessionAffinity === "ClientIP") view.affinity = svc.sessionAffinityTimeoutSeconds ?? 10800;
  for (const [family, t] of ctx.tables)
    for (const vip of view.clusterIps)
      if (ipFamily(vip) === family) t.add(SET.clusterIps, { key: vip, comment: ref });
  plan.ports.forEach((port, portIndex) => {
    if (port.protocol === "SCTP") {
      ctx.diagnostics.push(
        diagnostic(
          "proxy-sctp-unsupported",
          `Service ${ref}`,
          `port ${port.port}/SCTP: ${SCTP_MESSAGE}`,
          "use TCP or UDP, or run on a kernel with the sctp module",
          `spec.ports[${portIndex}]`,
        ),
      );
      return;
    }
    for (const family of ctx.tables.keys()) planServicePort(ctx, view, port, family);
  });
}

/** The ruleset as a person reads it (elements inside their sets). */
export function describeProxyRuleset(r: ProxyRuleset): string {
  return r.tables.map(describeTable).join("\n");
}

/**
 * Replaces whatever proxy tables a namespace holds by `r`, in ONE transaction (a node agent's restart when
 * it does not trust what it recorded): established connections keep their conntrack NAT bindings, only
 * session-affinity memories start afresh.
 */
export function proxySyncScript(r: ProxyRuleset): string {
  const name = r.tables[0]?.name ?? PROXY_TABLE;
  // Both families, so that a family the cluster no longer uses goes too (`add table` first: deleting an
  // absent table would fail the transaction).
  const reset = ["ip", "ip6"].map((f) => `add table ${f} ${name}\ndelete table ${f} ${name}\n`).join("");
  return reset + r.text;
}

/** planProxyRules' input for `nodeName` from the desired state and the cluster's address plan. */
export function proxyInputFor(
  state: DesiredState,
  plan: ClusterPlan,
  nodeName: string,
  // Endpoints and host ports are the cluster's: a caller planning every node derives them once.
  derived: { endpoints: ServiceEndpoints[]; hostPorts: HostPortMapping[] } = clusterEndpoints(state, plan),
): ProxyInput {
  const node = plan.nodes.find((n) => n.name === nodeName);
  if (!node) throw new Error(`cluster ${plan.name} has no node ${nodeName}`);
  return {
    services: plan.services,
    serviceObjects: state.services.filter((s) => s.meta.cluster === plan.name),
    endpoints: derived.endpoints,
    node: { name: node.name, addresses: [node.address] },
    podCIDRs: plan.ranges.podCIDRs,
    serviceCIDRs: plan.ranges.serviceCIDRs,
    hostPorts: derived.hostPorts.filter((h) => h.node === nodeName),
  };
}

/** A cluster's endpoints and host ports, for `proxyInputFor` of each of its nodes. */
export function clusterEndpoints(
  state: DesiredState,
  plan: ClusterPlan,
): { endpoints: ServiceEndpoints[]; hostPorts: HostPortMapping[] } {
  return { endpoints: deriveEndpoints(state, plan), hostPorts: deriveHostPorts(state, plan) };
}
