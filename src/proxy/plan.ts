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
import { type ProxyUpdate, planFragmentUpdate, planProxyUpdate } from "./diff.js";
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

  /** The shared chain of Services with `n` endpoints: dnat through the slot maps. */
  endpointsChainOf(n: number, local: boolean): NftChain {
    const ip = this.ip;
    return {
      name: endpointsChain(n, local),
      rules: (["tcp", "udp"] as const).map(
        (p) =>
          `meta l4proto ${p} dnat ${ip} to ${ip} daddr . th dport . numgen random mod ${n} map @${backendsMap(p, local)}`,
      ),
    };
  }

  /** The declaration (kind and spec) of one of the table's fixed sets and maps. */
  declaration(name: string): NftSet | undefined {
    return this.sets.get(name);
  }

  build(): NftTable {
    const ip = this.ip;
    const key = `${ip} daddr . meta l4proto . th dport`;
    const mark = `meta mark set meta mark | 0x${MASQUERADE_MARK.toString(16)}`;
    const shared = (local: boolean) =>
      [...(local ? this.counts.local : this.counts.cluster)]
        .sort((a, b) => a - b)
        .map((n) => this.endpointsChainOf(n, local));
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

/** A re-plan by ProxyPlanner: the ruleset, and the ONE transaction from the planner's previous ruleset. */
export interface ProxyChange {
  ruleset: ProxyRuleset;
  /** The ruleset `update` starts from (the planner's previous one); undefined on the first plan. */
  previous: ProxyRuleset | undefined;
  /** planProxyUpdate(previous, ruleset), computed from the change alone when it could be. */
  update: ProxyUpdate | undefined;
}

/**
 * planProxyRules with memory, and the transaction that goes with each re-plan (the node agent keeps one
 * planner per node). The planner keeps each Service's share of the tables (a fragment: its elements,
 * claims, chains, entries) and reference counts over all fragments (what is in the tables, and how many
 * fragments want it: hairpin addresses, endpoints-N chains, sticky sets). A re-plan compares each Service's
 * inputs with its fragment's (by identity, else by content), plans only the Services whose inputs
 * changed, and takes the transaction from what their old and new fragments touch: work proportional to
 * the change, not to the cluster: the input arrays are compared with the previous ones by identity from
 * both ends, and only what lies between the common prefix and suffix is looked at (InputIndex). The tables
 * themselves are built only when asked for (a full sync, a person). Inputs are plain data never changed
 * in place: a changed Service comes as new objects (as from the store and deriveEndpoints).
 *
 * The full path (replay every fragment into new tables, then planProxyUpdate over whole tables) is taken
 * on the first plan, when the node, its CIDRs or the address families change, and while two Services (or
 * a hostPort) contend for one address:port or element: then who wins depends on the order of all of them.
 * Both paths give what planProxyRules gives (property-tested in planner.test.ts).
 */
export class ProxyPlanner {
  private fragments = new Map<string, ServiceFragment>();
  private hostFragment: HostFragment | undefined;
  private contextKey = "";
  /** Reference counts over every fragment of `last`; undefined: the next re-plan takes the full path. */
  private live: Map<Family, LiveTable> | undefined;
  /** The inputs of `last`, by Service: updated from the parts of the input arrays that changed. */
  private index: InputIndex | undefined;
  private lastInput: ProxyInput | undefined;
  private last: ProxyRuleset | undefined;
  /** Of the last plan: Services replayed from memory (or left as they were), and Services planned afresh. */
  lastRun = { replayed: 0, planned: 0 };
  /** How the last plan was made: from the changed Services alone, or by the full path. */
  lastPath: "incremental" | "full" = "full";

  plan(input: ProxyInput): ProxyRuleset {
    return this.change(input).ruleset;
  }

  change(input: ProxyInput): ProxyChange {
    const previous = this.last;
    let result =
      this.live && this.index && this.lastInput && previous
        ? this.incremental(input, previous, this.live, this.index, this.lastInput)
        : undefined;
    this.lastPath = result ? "incremental" : "full";
    if (!result) {
      this.index = undefined;
      this.live = undefined;
      result = this.full(input, previous);
    }
    this.last = result.ruleset;
    this.lastInput = input;
    return result;
  }

  private full(input: ProxyInput, previous: ProxyRuleset | undefined): ProxyChange {
    const base = baseOf(input, familiesOf(input.services));
    const contextKey = JSON.stringify(base);
    if (contextKey !== this.contextKey) {
      this.fragments.clear();
      this.hostFragment = undefined;
      this.contextKey = contextKey;
    }
    const memory: FragmentMemory = {
      fragments: this.fragments,
      seen: new Set(),
      stats: { replayed: 0, planned: 0 },
      order: [],
      clean: true,
    };
    const ruleset = planRules(input, memory);
    this.lastRun = memory.stats;
    for (const ref of this.fragments.keys()) if (!memory.seen.has(ref)) this.fragments.delete(ref);
    this.hostFragment = memory.host;
    this.live = memory.clean ? liveTablesOf(base, memory.order, memory.host) : undefined;
    if (this.live) {
      this.index = new InputIndex();
      if (!this.index.rebuild(input)) this.live = undefined;
    }
    return { ruleset, previous, update: previous ? planProxyUpdate(previous, ruleset) : undefined };
  }

  /** The change from the changed Services alone; undefined when it needs the full path. */
  private incremental(
    input: ProxyInput,
    previous: ProxyRuleset,
    live: Map<Family, LiveTable>,
    index: InputIndex,
    before: ProxyInput,
  ): ProxyChange | undefined {
    // The Services whose plan, object or endpoints are not the same objects at the same places as before.
    const candidates = index.update(before, input);
    if (!candidates) return undefined; // a Service twice in an input: leave it to the full path
    const base = baseOf(input, index.families());
    if (JSON.stringify(base) !== this.contextKey) return undefined;
    const changed: { ref: string; plan: ServicePlan; svc: Service; endpoints: readonly ProxyEndpoint[] }[] =
      [];
    const removed: string[] = [];
    for (const ref of candidates === "all" ? index.refs(this.fragments.keys()) : candidates) {
      const plan = index.plans.get(ref);
      const svc = index.objects.get(ref);
      const f = this.fragments.get(ref);
      if (!plan || !svc || plan.headless || plan.type === "ExternalName") {
        if (f) removed.push(ref); // not proxied (any more)
        continue;
      }
      const endpoints = index.endpoints.get(ref) ?? NO_ENDPOINTS;
      if (!f || !sameInputs(f, plan, svc, endpoints)) changed.push({ ref, plan, svc, endpoints });
    }
    const hostPrint =
      input.hostPorts === before.hostPorts && this.hostFragment
        ? this.hostFragment.fingerprint
        : JSON.stringify(input.hostPorts ?? []);
    const hostChanged = this.hostFragment?.fingerprint !== hostPrint;

    // The changed Services planned alone (each in empty tables); their claims are checked against the
    // others' when their operations are counted in below.
    const planned = new Map<string, ServiceFragment>();
    for (const c of changed) {
      const ctx = contextOf(base);
      const fragment = recordFragment(ctx, () => planService(ctx, c.ref, c.plan, c.svc, c.endpoints));
      if (fragment.diagnostics.some((d) => d.code === "proxy-address-conflict")) return undefined;
      planned.set(c.ref, {
        ...fragment,
        plan: c.plan,
        service: c.svc,
        endpoints: c.endpoints,
      });
    }
    let host = this.hostFragment;
    if (hostChanged) {
      const ctx = contextOf(base);
      const fragment = recordFragment(ctx, () => {
        for (const h of input.hostPorts ?? []) planHostPort(ctx, h);
      });
      if (fragment.diagnostics.some((d) => d.code === "proxy-address-conflict")) return undefined;
      host = { ...fragment, fingerprint: hostPrint };
    }

    // Out with the old fragments, in with the new; what they touch, as it was, is kept for the diff.
    const gone: Fragment[] = removed.map((ref) => this.fragments.get(ref) as Fragment);
    for (const c of changed) {
      const old = this.fragments.get(c.ref);
      if (old) gone.push(old);
    }
    if (hostChanged && this.hostFragment) gone.push(this.hostFragment);
    const come: Fragment[] = [...planned.values()];
    if (hostChanged && host) come.push(host);
    const touched = new Map<Family, Touched>();
    for (const family of live.keys()) touched.set(family, new Touched());
    for (const f of gone) countIn(live, f, -1, touched);
    for (const f of come) if (!countIn(live, f, 1, touched)) return undefined; // change() counts afresh

    for (const ref of removed) this.fragments.delete(ref);
    for (const [ref, f] of planned) this.fragments.set(ref, f);
    this.hostFragment = host;
    this.lastRun = { replayed: this.fragments.size - changed.length, planned: changed.length };
    const update = planFragmentUpdate(
      [...touched].map(([family, t]) => t.tables(live.get(family) as LiveTable)),
      gone.flatMap((f) => f.entries),
      come.flatMap((f) => f.entries),
    );
    return { ruleset: lazyRuleset(input), previous, update };
  }
}

/**
 * The Services of the last input by `namespace/name`: their plans, objects and endpoints, and the address
 * families of the ClusterIPs. Updated from the windows of the input arrays that are not the same objects
 * at the same places as before (a common prefix and suffix compared by identity), so a caller that keeps
 * unchanged objects (the node agent's derivation, the benchmark) pays for the change, not the cluster.
 */
class InputIndex {
  readonly plans = new RefMap<ServicePlan>();
  readonly objects = new RefMap<Service>();
  readonly endpoints = new RefMap<readonly ProxyEndpoint[]>();
  private readonly familyCount = new Map<Family, number>();

  /** From the whole input; false when a Service appears twice (planProxyRules' order decides then). */
  rebuild(input: ProxyInput): boolean {
    this.plans.clear();
    this.objects.clear();
    this.endpoints.clear();
    this.familyCount.clear();
    for (const p of input.services) this.addPlan(p);
    for (const s of input.serviceObjects) this.objects.add(objectRef(s), s);
    for (const e of input.endpoints) this.endpoints.add(endpointsRef(e), e.endpoints);
    return !this.plans.twice && !this.objects.twice && !this.endpoints.twice;
  }

  /** The refs whose inputs may have changed ("all" after a rebuild); undefined when a Service is twice. */
  update(before: ProxyInput, input: ProxyInput): Set<string> | "all" | undefined {
    const services = changedWindow(before.services, input.services);
    const objects = changedWindow(before.serviceObjects, input.serviceObjects);
    const endpoints = changedWindow(before.endpoints, input.endpoints);
    const size = (w: { before: unknown[]; after: unknown[] }) => w.before.length + w.after.length;
    // Most of it changed (or new objects with equal contents, as after re-reading the store): start over.
    if (size(services) + size(objects) + size(endpoints) > 64 + input.services.length / 4)
      return this.rebuild(input) ? "all" : undefined;
    const refs = new Set<string>();
    for (const p of services.before) {
      refs.add(planRef(p));
      this.plans.remove(planRef(p));
      for (const ip of p.clusterIPs) this.countFamily(ipFamily(ip), -1);
    }
    for (const s of objects.before) refs.add(this.objects.remove(objectRef(s)));
    for (const e of endpoints.before) refs.add(this.endpoints.remove(endpointsRef(e)));
    for (const p of services.after) refs.add(this.addPlan(p));
    for (const s of objects.after) refs.add(this.objects.add(objectRef(s), s));
    for (const e of endpoints.after) refs.add(this.endpoints.add(endpointsRef(e), e.endpoints));
    if (this.plans.twice || this.objects.twice || this.endpoints.twice) return undefined;
    return refs;
  }

  /** Every Service ref known, and those of `also` (the remembered fragments). */
  *refs(also: Iterable<string>): Iterable<string> {
    const seen = new Set<string>();
    for (const ref of [...this.plans.keys(), ...also])
      if (!seen.has(ref)) {
        seen.add(ref);
        yield ref;
      }
  }

  families(): Set<Family> {
    return new Set([...this.familyCount.keys()]);
  }

  private addPlan(p: ServicePlan): string {
    for (const ip of p.clusterIPs) this.countFamily(ipFamily(ip), 1);
    return this.plans.add(planRef(p), p);
  }

  private countFamily(f: Family, sign: 1 | -1): void {
    const n = (this.familyCount.get(f) ?? 0) + sign;
    if (n > 0) this.familyCount.set(f, n);
    else this.familyCount.delete(f);
  }
}

/** ref → value, counting how many times each ref is in the input (more than once: `twice`). */
class RefMap<T> {
  private readonly values = new Map<string, { value: T; n: number }>();
  twice = false;
  get(ref: string): T | undefined {
    return this.values.get(ref)?.value;
  }
  keys(): IterableIterator<string> {
    return this.values.keys();
  }
  add(ref: string, value: T): string {
    const had = this.values.get(ref);
    if (had) {
      had.n++;
      had.value = value;
      this.twice = true;
    } else this.values.set(ref, { value, n: 1 });
    return ref;
  }
  remove(ref: string): string {
    const had = this.values.get(ref);
    if (had && --had.n === 0) this.values.delete(ref);
    return ref;
  }
  clear(): void {
    this.values.clear();
    this.twice = false;
  }
}

const planRef = (p: ServicePlan) => `${p.namespace}/${p.name}`;
const objectRef = (s: Service) => `${s.meta.namespace}/${s.meta.name}`;
const endpointsRef = (e: ServiceEndpoints) => `${e.namespace}/${e.name}`;

/** The part of `after` that is not `before`'s objects in place: what is left between a common prefix and suffix. */
function changedWindow<T>(before: readonly T[], after: readonly T[]): { before: T[]; after: T[] } {
  if (before === after) return { before: [], after: [] };
  let start = 0;
  const shorter = Math.min(before.length, after.length);
  while (start < shorter && before[start] === after[start]) start++;
  let endBefore = before.length;
  let endAfter = after.length;
  while (endBefore > start && endAfter > start && before[endBefore - 1] === after[endAfter - 1]) {
    endBefore--;
    endAfter--;
  }
  return { before: before.slice(start, endBefore), after: after.slice(start, endAfter) };
}

function familiesOf(services: readonly ServicePlan[]): Set<Family> {
  const out = new Set<Family>();
  for (const s of services) for (const ip of s.clusterIPs) out.add(ipFamily(ip));
  return out;
}

/** What a Service (or the node's hostPorts) added to one node's tables. */
interface Fragment {
  ops: Map<Family, TableOp[]>;
  entries: ProxyEntry[];
  diagnostics: Diagnostic[];
}

/** The node's hostPorts' share, with the inputs it was planned from (as JSON: a short list). */
interface HostFragment extends Fragment {
  fingerprint: string;
}

/** What one Service added to one node's tables, with what it was planned from. */
interface ServiceFragment extends Fragment {
  plan: ServicePlan;
  service: Service;
  endpoints: readonly ProxyEndpoint[];
}

interface FragmentMemory {
  fragments: Map<string, ServiceFragment>;
  seen: Set<string>;
  stats: { replayed: number; planned: number };
  /** Every fragment of the plan, in order (complete only while `clean`). */
  order: Fragment[];
  host?: HostFragment;
  /** No Service or hostPort lost an address:port to another. */
  clean: boolean;
}

/**
 * Plain data (what JSON would write) equal: objects by their defined fields, arrays item by item. Faster
 * than comparing JSON texts, and stops at the first difference; equal objects are not walked.
 */
function sameData(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameData(a[i], b[i])) return false;
    return true;
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let fields = 0;
  for (const k in x) {
    if (x[k] === undefined) continue;
    fields++;
    if (!sameData(x[k], y[k])) return false;
  }
  for (const k in y) if (y[k] !== undefined) fields--;
  return fields === 0;
}

/** Everything a Service's share of the tables depends on, besides the node (the planner's context key). */
function sameServiceInputs(
  f: ServiceFragment,
  plan: ServicePlan,
  svc: Service,
  endpoints: readonly ProxyEndpoint[],
): boolean {
  const was = f.service;
  return (
    was.externalTrafficPolicy === svc.externalTrafficPolicy &&
    was.internalTrafficPolicy === svc.internalTrafficPolicy &&
    was.sessionAffinity === svc.sessionAffinity &&
    was.sessionAffinityTimeoutSeconds === svc.sessionAffinityTimeoutSeconds &&
    sameData(was.loadBalancerSourceRanges, svc.loadBalancerSourceRanges) &&
    sameData(f.plan, plan) &&
    sameData(f.endpoints, endpoints)
  );
}

/** The fragment was planned from these inputs: the same objects, or equal ones (as after re-reading the store). */
function sameInputs(
  f: ServiceFragment,
  plan: ServicePlan,
  svc: Service,
  endpoints: readonly ProxyEndpoint[],
): boolean {
  if (f.plan === plan && f.service === svc && f.endpoints === endpoints) return true;
  if (!sameServiceInputs(f, plan, svc, endpoints)) return false;
  Object.assign(f, { plan, service: svc, endpoints }); // next time by identity
  return true;
}

/** Replays the Service's remembered share when its inputs are unchanged and its addresses still free. */
function replayFragment(
  ctx: NodeContext,
  f: ServiceFragment | undefined,
  plan: ServicePlan,
  svc: Service,
  endpoints: readonly ProxyEndpoint[],
): boolean {
  if (!f || !sameInputs(f, plan, svc, endpoints)) return false;
  for (const [family, ops] of f.ops) {
    const t = ctx.tables.get(family);
    if (!t) return false;
    for (const o of ops) if (o.op === "claim" && t.isClaimed(o.key)) return false; // someone else has it now
  }
  replayInto(ctx, f);
  return true;
}

function replayInto(ctx: NodeContext, f: Fragment): void {
  for (const [family, ops] of f.ops) (ctx.tables.get(family) as FamilyTable).replay(ops);
  ctx.entries.push(...f.entries);
  ctx.diagnostics.push(...f.diagnostics);
}

/** Plans one Service (or the hostPorts) while logging its share of the tables. */
function recordFragment(ctx: NodeContext, plan: () => void): Fragment {
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

/** What the tables of a node are built on, besides the Services: plain data (the planner's context key). */
interface PlanBase {
  me: string;
  nodeAddresses: string[];
  tableName: string;
  podCIDRs: readonly string[];
  serviceCIDRs: readonly string[];
  /** Address families with a table, in table order. */
  families: Family[];
}

/** `serviceFamilies`: the families of the Services' ClusterIPs. */
function baseOf(input: ProxyInput, serviceFamilies: ReadonlySet<Family>): PlanBase {
  const nodeAddresses = canonicalAll(input.node.addresses);
  const families = new Set<Family>(serviceFamilies);
  for (const c of input.podCIDRs) families.add(cidrFamily(c));
  for (const a of nodeAddresses) families.add(ipFamily(a));
  return {
    me: input.node.name,
    nodeAddresses,
    tableName: input.table ?? PROXY_TABLE,
    podCIDRs: input.podCIDRs,
    serviceCIDRs: input.serviceCIDRs ?? [],
    families: ([4, 6] as const).filter((f) => families.has(f)),
  };
}

/** Empty tables (but for the CIDR sets) of each family, ready to plan into. */
function contextOf(base: PlanBase): NodeContext {
  const ctx: NodeContext = {
    me: base.me,
    nodeAddresses: base.nodeAddresses,
    tables: new Map(),
    entries: [],
    diagnostics: [],
  };
  for (const f of base.families) {
    const serviceCidrs = base.serviceCIDRs.filter((c) => cidrFamily(c) === f);
    const t = new FamilyTable(f, base.tableName, serviceCidrs.length > 0);
    for (const c of base.podCIDRs) if (cidrFamily(c) === f) t.add(SET.podCidrs, { key: c });
    for (const c of serviceCidrs) t.add(SET.serviceCidrs, { key: c });
    ctx.tables.set(f, t);
  }
  return ctx;
}

function rulesetOf(ctx: NodeContext): ProxyRuleset {
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

/**
 * The ruleset of `input`, planned when first read: an incremental re-plan needs none of it (its
 * transaction comes from the fragments), a full sync or a person does. Equal to what the planner would
 * replay (property-tested), so planProxyRules itself is used.
 */
function lazyRuleset(input: ProxyInput): ProxyRuleset {
  let built: ProxyRuleset | undefined;
  const build = () => {
    built ??= planProxyRules(input);
    return built;
  };
  return {
    node: input.node.name,
    get tables() {
      return build().tables;
    },
    get entries() {
      return build().entries;
    },
    get diagnostics() {
      return build().diagnostics;
    },
    get text() {
      return build().text;
    },
  };
}

/** One family's table as reference counts over every fragment of a plan: what a change is diffed against. */
class LiveTable {
  /** set → key → element (a key has one owner: a second one is a conflict). */
  readonly elements = new Map<string, Map<string, NftElement>>();
  readonly claims = new Set<string>();
  /** Counted: several Services may want one hairpin address or one endpoints-N chain. */
  readonly hairpin = new Map<string, number>();
  readonly counts = new Map<string, number>();
  readonly stickyChains = new Map<string, NftChain>();
  readonly stickySets = new Map<string, { set: NftSet; refs: number }>();
  constructor(readonly shape: FamilyTable) {}
}

/** What a change touched in one family's table, each as it was before the change. */
class Touched {
  readonly elements = new Map<string, Map<string, NftElement | undefined>>();
  readonly hairpin = new Map<string, boolean>();
  readonly counts = new Map<string, boolean>();
  readonly chains = new Map<string, NftChain | undefined>();
  readonly sets = new Map<string, NftSet | undefined>();

  /** The touched part of the table before and after the change (planFragmentUpdate's input). */
  tables(live: LiveTable): { previous: NftTable; next: NftTable } {
    const shape = live.shape;
    const previous: NftTable = { family: shape.ip, name: shape.tableName, sets: [], chains: [] };
    const next: NftTable = { family: shape.ip, name: shape.tableName, sets: [], chains: [] };
    const pair = (name: string, before: NftElement[], after: NftElement[]) => {
      const d = shape.declaration(name) as NftSet;
      previous.sets.push({ ...d, elements: before });
      next.sets.push({ ...d, elements: after });
    };
    for (const [name, keys] of this.elements) {
      const now = live.elements.get(name);
      const before: NftElement[] = [];
      const after: NftElement[] = [];
      for (const [key, was] of keys) {
        if (was) before.push(was);
        const is = now?.get(key);
        if (is) after.push(is);
      }
      pair(name, before, after);
    }
    if (this.hairpin.size > 0) {
      const before: NftElement[] = [];
      const after: NftElement[] = [];
      for (const [ip, was] of this.hairpin) {
        if (was) before.push({ key: `${ip} . ${ip}` });
        if (live.hairpin.has(ip)) after.push({ key: `${ip} . ${ip}` });
      }
      pair(SET.hairpin, before, after);
    }
    for (const [key, was] of this.counts) {
      const [scope, n] = key.split(":");
      const chain = shape.endpointsChainOf(Number(n), scope === "local");
      if (was) previous.chains.push(chain);
      if (live.counts.has(key)) next.chains.push(chain);
    }
    for (const [name, was] of this.chains) {
      if (was) previous.chains.push(was);
      const is = live.stickyChains.get(name);
      if (is) next.chains.push(is);
    }
    for (const [name, was] of this.sets) {
      if (was) previous.sets.push(was);
      const is = live.stickySets.get(name)?.set;
      if (is) next.sets.push(is);
    }
    return { previous, next };
  }
}

function liveTablesOf(
  base: PlanBase,
  order: readonly Fragment[],
  host: Fragment | undefined,
): Map<Family, LiveTable> | undefined {
  const live = new Map<Family, LiveTable>();
  for (const [family, shape] of contextOf(base).tables) live.set(family, new LiveTable(shape));
  for (const f of host ? [...order, host] : order) if (!countIn(live, f, 1, undefined)) return undefined;
  return live;
}

/**
 * Counts a fragment in (+1) or out (-1), noting in `touched` how what it touches was before; false when
 * counting in finds an element, address:port or chain another fragment has (the full path decides).
 */
function countIn(
  live: Map<Family, LiveTable>,
  f: Fragment,
  sign: 1 | -1,
  touched: Map<Family, Touched> | undefined,
): boolean {
  for (const [family, ops] of f.ops) {
    const t = live.get(family);
    if (!t) return false;
    if (!countOps(t, ops, sign, touched?.get(family))) return false;
  }
  return true;
}

function countOps(
  live: LiveTable,
  ops: readonly TableOp[],
  sign: 1 | -1,
  touched: Touched | undefined,
): boolean {
  for (const o of ops) {
    if (o.op === "add") {
      let set = live.elements.get(o.set);
      if (!set) {
        set = new Map();
        live.elements.set(o.set, set);
      }
      const key = o.element.key;
      if (touched) {
        let keys = touched.elements.get(o.set);
        if (!keys) {
          keys = new Map();
          touched.elements.set(o.set, keys);
        }
        if (!keys.has(key)) keys.set(key, set.get(key));
      }
      if (sign < 0) set.delete(key);
      else if (set.has(key)) return false;
      else set.set(key, o.element);
    } else if (o.op === "claim") {
      if (sign < 0) live.claims.delete(o.key);
      else if (live.claims.has(o.key)) return false;
      else live.claims.add(o.key);
    } else if (o.op === "hairpin") count(live.hairpin, touched?.hairpin, o.ip, sign);
    else if (o.op === "count")
      count(live.counts, touched?.counts, `${o.local ? "local" : "cluster"}:${o.n}`, sign);
    else {
      const name = o.chain.name;
      if (touched && !touched.chains.has(name)) touched.chains.set(name, live.stickyChains.get(name));
      if (sign < 0) live.stickyChains.delete(name);
      else if (live.stickyChains.has(name)) return false;
      else live.stickyChains.set(name, o.chain);
      for (const set of o.sets) {
        const now = live.stickySets.get(set.name);
        if (touched && !touched.sets.has(set.name)) touched.sets.set(set.name, now?.set);
        if (sign < 0) {
          if (now && --now.refs === 0) live.stickySets.delete(set.name);
        } else if (!now) live.stickySets.set(set.name, { set, refs: 1 });
        else if (now.set.spec.join("\n") !== set.spec.join("\n")) return false;
        else now.refs++;
      }
    }
  }
  return true;
}

function count(
  counts: Map<string, number>,
  touched: Map<string, boolean> | undefined,
  key: string,
  sign: 1 | -1,
) {
  const n = counts.get(key) ?? 0;
  if (touched && !touched.has(key)) touched.set(key, n > 0);
  if (n + sign > 0) counts.set(key, n + sign);
  else counts.delete(key);
}

function planRules(input: ProxyInput, memory: FragmentMemory | undefined): ProxyRuleset {
  const base = baseOf(input, familiesOf(input.services));
  const ctx = contextOf(base);
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
    const known = memory.fragments.get(ref);
    if (replayFragment(ctx, known, plan, svc, endpoints)) {
      memory.stats.replayed++;
      memory.order.push(known as ServiceFragment);
      continue;
    }
    memory.stats.planned++;
    const fragment = recordFragment(ctx, () => planService(ctx, ref, plan, svc, endpoints));
    // A Service that lost an address to another depends on the order of all of them: never replayed.
    if (fragment.diagnostics.some((d) => d.code === "proxy-address-conflict")) {
      memory.fragments.delete(ref);
      memory.clean = false;
      continue;
    }
    const remembered: ServiceFragment = {
      ...fragment,
      plan,
      service: svc,
      endpoints,
    };
    memory.fragments.set(ref, remembered);
    memory.order.push(remembered);
  }
  const planHostPorts = () => {
    for (const h of input.hostPorts ?? []) planHostPort(ctx, h);
  };
  if (!memory) planHostPorts();
  else {
    const fragment = recordFragment(ctx, planHostPorts);
    if (fragment.diagnostics.some((d) => d.code === "proxy-address-conflict")) memory.clean = false;
    memory.host = { ...fragment, fingerprint: JSON.stringify(input.hostPorts ?? []) };
  }
  return rulesetOf(ctx);
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
