/**
 * NetworkPolicy → the nftables ruleset of one node, as plain data (table `inet podnet-policy`).
 *
 * Layout (why: see README.md, "The layout"):
 *
 *   chain egress-filter  { forward hook, priority 0:  ct established/related, own node, self → accept;
 *                          ip saddr vmap @egress-groups4 }        (local pods isolated for egress)
 *   chain ingress-filter { forward hook, priority 10: the same; ip daddr vmap @ingress-groups4 }
 *   chain egress-input   { input hook: ct established/related; ip saddr vmap @egress-groups4 } (to the node)
 *   chain in-<h> / out-<h>  one per distinct list of policies selecting a local pod: `jump pol-…` each, then drop
 *   chain pol-<h>-in / -out  one per policy with a local pod: a rule per (rule × peer kind × port kind), `accept`
 *   sets  peers-<h>4 (pod IPs a rule's selectors match), cidrs-<h>4 (ipBlocks, intervals),
 *         ports-<h> (protocol . port ranges, intervals), named-<h>4 (IP . protocol . port of named ports)
 *
 * An `accept` ends only its base chain: egress passes on to ingress-filter, so a same-node connection
 * needs both. A pod label change is elements (the groups maps, peers and named sets), plus at most a new
 * group or policy chain; a policy change flushes and refills that policy's chain.
 * The proxy DNATs at prerouting (priority -100), so the forward hook sees the pod behind a Service.
 */
import { createHash } from "node:crypto";
import { isEmptySelector } from "../api/selector.js";
import type { Protocol } from "../api/types.js";
import { type Family, formatIp, type IpRange, parseIp } from "../ipam/cidr.js";
import {
  type CompiledPolicy,
  type CompiledRule,
  type LabelChangeEffect,
  type PolicyIndex,
  type PolicyPod,
  podIpFor,
  rangesContain,
  resolveNamedPort,
  selectorPeerOf,
} from "./model.js";

export const POLICY_TABLE = "podnet-policy";

export interface PolicySetDef {
  name: string;
  /** `map` for the verdict maps. */
  kind: "set" | "map";
  /** nft type, e.g. `ipv4_addr`, `inet_proto . inet_service`, `ipv4_addr : verdict`. */
  type: string;
  interval: boolean;
  /** Sorted element texts (maps: `key : verdict`). */
  elements: string[];
}

export interface PolicyChainDef {
  name: string;
  /** Base chains: `type filter hook forward priority N; policy accept;`. */
  base?: string;
  rules: string[];
}

export interface PolicyRuleset {
  node: string;
  table: string;
  sets: PolicySetDef[];
  chains: PolicyChainDef[];
}

function shortHash(text: string): string {
  return createHash("sha1").update(text).digest("hex").slice(0, 12);
}

const FAMILY = { 4: { p: "ip", addr: "ipv4_addr" }, 6: { p: "ip6", addr: "ipv6_addr" } } as const;

function protoText(p: Protocol): string {
  return p.toLowerCase();
}

function rangeText(r: IpRange): string {
  const a = formatIp({ family: r.family, value: r.start });
  return r.start === r.end ? a : `${a}-${formatIp({ family: r.family, value: r.end })}`;
}

/** Merges sorted ranges that touch or overlap (nft rejects overlapping interval elements). */
function mergeRanges(ranges: IpRange[]): IpRange[] {
  const sorted = [...ranges].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: IpRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end + 1n) {
      if (r.end > last.end) last.end = r.end;
    } else out.push({ ...r });
  }
  return out;
}

/** Addresses as the runs of consecutive ones: `a-b` ranges (single addresses as they are), sorted. */
function ipRuns(ips: readonly string[]): string[] {
  const values = ips
    .map((ip) => parseIp(ip))
    .sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
  const ranges: IpRange[] = [];
  for (const a of values) {
    const last = ranges[ranges.length - 1];
    if (last && a.value <= last.end + 1n) {
      if (a.value > last.end) last.end = a.value;
    } else ranges.push({ family: a.family, start: a.value, end: a.value });
  }
  return ranges.map(rangeText);
}

function portRangesText(rule: CompiledRule): string[] {
  // Merge per protocol so that overlapping ranges of one rule do not clash in the interval set.
  const by = new Map<Protocol, [number, number][]>();
  for (const r of rule.numericPorts) {
    const list = by.get(r.protocol) ?? [];
    list.push([r.from, r.to]);
    by.set(r.protocol, list);
  }
  const out: string[] = [];
  for (const [proto, list] of by) {
    list.sort((a, b) => a[0] - b[0]);
    const merged: [number, number][] = [];
    for (const r of list) {
      const last = merged[merged.length - 1];
      if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
      else merged.push([r[0], r[1]]);
    }
    for (const [a, b] of merged) out.push(`${protoText(proto)} . ${a === b ? a : `${a}-${b}`}`);
  }
  return out.sort();
}

/**
 * Plans every node of one cluster from one PolicyIndex. Per-rule data (peer IPs, ranges, ports) is
 * computed once and shared by all nodes.
 */
export class PolicyPlanner {
  private readonly families: Family[];
  private readonly policyIds: string[];
  private readonly peerSetCache = new Map<
    string,
    {
      name: string;
      interval: boolean;
      elements: Record<Family, string[]>;
      policy: CompiledPolicy;
      rule: CompiledRule;
    }
  >();
  private readonly egressNamedCache = new Map<
    string,
    { name: string; elements: Record<Family, string[]>; rule: CompiledRule }
  >();

  constructor(
    readonly index: PolicyIndex,
    families?: Family[],
  ) {
    const seen = new Set<Family>();
    for (const p of index.world.pods) for (const ip of p.ips) seen.add(ip.includes(":") ? 6 : 4);
    this.families = families ?? ([4, 6] as Family[]).filter((f) => seen.has(f));
    if (this.families.length === 0) this.families = [4];
    this.policyIds = index.policies.map((p) => shortHash(`${index.world.cluster}/${p.key}`));
  }

  /**
   * Pod IPs (per family) of a rule's selector peers: one set shared by identical selector lists. Peers
   * that select by namespace only (whole namespaces, often every pod) are interval sets of the runs of
   * consecutive pod IPs — exact, and a few ranges instead of thousands of addresses; their members change
   * only with namespaces and pods, not with pod labels. Peers with pod selectors are hash sets, so that a
   * label change is one element.
   */
  private peerSet(
    policy: CompiledPolicy,
    rule: CompiledRule,
  ): { name: string; interval: boolean; elements: Record<Family, string[]> } {
    const key = rule.selectorKey;
    let entry = this.peerSetCache.get(key);
    if (!entry) {
      const interval = rule.selectorPeers.every(
        (sp) => !sp.set.peer.podSelector || isEmptySelector(sp.set.peer.podSelector),
      );
      const ips: Record<Family, string[]> = { 4: [], 6: [] };
      const members = new Set<number>();
      for (const sp of rule.selectorPeers) for (const i of sp.set.pods) members.add(i);
      for (const i of members) {
        const pod = this.index.world.pods[i] as PolicyPod;
        for (const f of this.families) {
          const ip = podIpFor(pod, f);
          if (ip) ips[f].push(ip);
        }
      }
      const elements: Record<Family, string[]> = interval
        ? { 4: ipRuns(ips[4]), 6: ipRuns(ips[6]) }
        : { 4: ips[4].sort(), 6: ips[6].sort() };
      entry = {
        name: `${interval ? "peerns" : "peers"}-${shortHash(key)}`,
        interval,
        elements,
        policy,
        rule,
      };
      this.peerSetCache.set(key, entry);
    }
    return entry;
  }

  /**
   * Egress named ports resolve on the destination: IP . proto . port of every pod the peers allow. One
   * set per distinct (peers, named ports), shared by the rules and nodes that have it.
   */
  private egressNamed(rule: CompiledRule): { name: string; elements: Record<Family, string[]> } {
    const blocks = rule.blocks.map((b) => b.ranges.map((r) => `${r.start}-${r.end}`).join(",")).join(";");
    const ports = rule.namedPorts.map((n) => `${n.protocol}/${n.name}`).join(",");
    const key = `${rule.anyPeer}|${rule.selectorKey}|${blocks}|${ports}`;
    const hit = this.egressNamedCache.get(key);
    if (hit) return hit;
    const pods = this.index.world.pods;
    let candidates: Iterable<number>;
    if (rule.anyPeer || rule.blocks.length > 0) candidates = pods.keys();
    else {
      const members = new Set<number>();
      for (const sp of rule.selectorPeers) for (const i of sp.set.pods) members.add(i);
      candidates = members;
    }
    const elements: Record<Family, string[]> = { 4: [], 6: [] };
    for (const i of candidates) {
      const pod = pods[i] as PolicyPod;
      if (pod.hostNetwork) continue;
      for (const f of this.families) {
        const ip = podIpFor(pod, f);
        if (!ip) continue;
        const peerOk =
          rule.anyPeer ||
          selectorPeerOf(rule, i) !== undefined ||
          rule.blocks.some((b) => b.family === f && rangesContain(b.ranges, ip));
        if (!peerOk) continue;
        for (const n of rule.namedPorts) {
          const port = resolveNamedPort(pod, n.name, n.protocol);
          if (port !== undefined) elements[f].push(`${ip} . ${protoText(n.protocol)} . ${port}`);
        }
      }
    }
    const entry = {
      name: `named-e-${shortHash(key)}`,
      elements: { 4: [...new Set(elements[4])].sort(), 6: [...new Set(elements[6])].sort() },
      rule,
    };
    this.egressNamedCache.set(key, entry);
    return entry;
  }

  /**
   * After updatePodLabels (model.ts) changed the index: the new elements of the shared sets whose members
   * changed (selector peers; egress named ports, which list their peers), by set name. Every node using
   * one of them gets the same elements; the changed pods' own nodes must be planned again (their groups,
   * and ingress named ports resolve on local pods).
   */
  refreshAfterLabelChange(effect: LabelChangeEffect): Map<string, string[]> {
    const sets = new Map<string, string[]>();
    const touched = (rule: CompiledRule) => rule.selectorPeers.some((sp) => effect.peerSets.has(sp.set.id));
    for (const [key, entry] of [...this.peerSetCache]) {
      if (!touched(entry.rule)) continue;
      this.peerSetCache.delete(key);
      const fresh = this.peerSet(entry.policy, entry.rule);
      for (const f of this.families) sets.set(`${fresh.name}${f}`, fresh.elements[f]);
    }
    for (const [key, entry] of [...this.egressNamedCache]) {
      if (!touched(entry.rule)) continue;
      this.egressNamedCache.delete(key);
      const fresh = this.egressNamed(entry.rule);
      for (const f of this.families) sets.set(`${fresh.name}${f}`, fresh.elements[f]);
    }
    return sets;
  }

  /** The ruleset of one node: its local (non-hostNetwork) pods' isolation and the policies selecting them. */
  planNode(node: string, table = POLICY_TABLE): PolicyRuleset {
    const { index } = this;
    const pods = index.world.pods;
    const sets = new Map<string, PolicySetDef>();
    const chains: PolicyChainDef[] = [];
    const addSet = (def: PolicySetDef) => {
      if (!sets.has(def.name)) sets.set(def.name, def);
    };
    const local: number[] = [];
    pods.forEach((p, i) => {
      if (p.node === node && !p.hostNetwork) local.push(i);
    });
    const groupChains = new Map<string, PolicyChainDef>();
    const neededPolicies = { ingress: new Set<number>(), egress: new Set<number>() };
    const groupElements = {
      ingress: { 4: [] as string[], 6: [] as string[] },
      egress: { 4: [] as string[], 6: [] as string[] },
    };
    const selfElements: Record<Family, string[]> = { 4: [], 6: [] };
    for (const i of local) {
      const pod = pods[i] as PolicyPod;
      for (const f of this.families) {
        const ip = podIpFor(pod, f);
        if (ip) selfElements[f].push(`${ip} . ${ip}`);
      }
      for (const direction of ["ingress", "egress"] as const) {
        const selecting = (direction === "ingress" ? index.ingressPolicies : index.egressPolicies)[i] ?? [];
        if (selecting.length === 0) continue;
        const suffix = direction === "ingress" ? "in" : "out";
        const ids = selecting.map((pi) => this.policyIds[pi] as string).sort();
        const group = `${suffix}-${shortHash(ids.join(","))}`;
        if (!groupChains.has(group))
          groupChains.set(group, {
            name: group,
            rules: [...ids.map((id) => `jump pol-${id}-${suffix}`), "drop"],
          });
        for (const pi of selecting) neededPolicies[direction].add(pi);
        for (const f of this.families) {
          const ip = podIpFor(pod, f);
          if (ip) groupElements[direction][f].push(`${ip} : jump ${group}`);
        }
      }
    }
    for (const f of this.families) {
      const { addr } = FAMILY[f];
      addSet({
        name: `self${f}`,
        kind: "set",
        type: `${addr} . ${addr}`,
        interval: false,
        elements: selfElements[f].sort(),
      });
      for (const direction of ["ingress", "egress"] as const)
        addSet({
          name: `${direction}-groups${f}`,
          kind: "map",
          type: `${addr} : verdict`,
          interval: false,
          elements: groupElements[direction][f].sort(),
        });
    }
    for (const direction of ["egress", "ingress"] as const) {
      const priority = direction === "egress" ? 0 : 10;
      const rules = ["ct state established,related accept", "fib saddr type local accept"];
      for (const f of this.families) {
        const { p } = FAMILY[f];
        rules.push(`${p} saddr . ${p} daddr @self${f} accept`);
        rules.push(`${p} ${direction === "egress" ? "saddr" : "daddr"} vmap @${direction}-groups${f}`);
      }
      chains.push({
        name: `${direction}-filter`,
        base: `type filter hook forward priority ${priority}; policy accept;`,
        rules,
      });
    }
    // A local pod's packets to the node itself (its addresses, a hostNetwork endpoint behind a Service)
    // take the input hook, not forward: egress isolation applies there too.
    const input = ["ct state established,related accept"];
    for (const f of this.families) input.push(`${FAMILY[f].p} saddr vmap @egress-groups${f}`);
    chains.push({
      name: "egress-input",
      base: "type filter hook input priority 0; policy accept;",
      rules: input,
    });
    for (const g of [...groupChains.values()].sort((a, b) => a.name.localeCompare(b.name))) chains.push(g);
    const localSet = new Set(local);
    for (const direction of ["ingress", "egress"] as const) {
      for (const pi of [...neededPolicies[direction]].sort((a, b) => a - b)) {
        const policy = index.policies[pi] as CompiledPolicy;
        const rules: string[] = [];
        const compiled = (direction === "ingress" ? policy.ingress : policy.egress) ?? [];
        for (const rule of compiled) rules.push(...this.ruleLines(pi, policy, rule, localSet, addSet));
        chains.push({ name: `pol-${this.policyIds[pi]}-${direction === "ingress" ? "in" : "out"}`, rules });
      }
    }
    return {
      node,
      table,
      sets: [...sets.values()].sort((a, b) => a.name.localeCompare(b.name)),
      chains,
    };
  }

  private ruleLines(
    pi: number,
    policy: CompiledPolicy,
    rule: CompiledRule,
    local: Set<number>,
    addSet: (d: PolicySetDef) => void,
  ): string[] {
    const ingress = rule.direction === "ingress";
    const comment = `comment "${policy.key} ${rule.direction}[${rule.index}]"`;
    const out: string[] = [];
    let portsMatch: string | undefined;
    if (rule.numericPorts.length > 0) {
      const elements = portRangesText(rule);
      const name = `ports-${shortHash(elements.join(","))}`;
      addSet({ name, kind: "set", type: "inet_proto . inet_service", interval: true, elements });
      portsMatch = `meta l4proto . th dport @${name}`;
    }
    const hasSelectorPeers = rule.selectorPeers.length > 0;
    for (const f of this.families) {
      const { p, addr } = FAMILY[f];
      const dir = ingress ? "saddr" : "daddr";
      const peerMatches: string[] = [];
      if (rule.anyPeer) peerMatches.push("");
      else {
        if (hasSelectorPeers) {
          const s = this.peerSet(policy, rule);
          addSet({
            name: `${s.name}${f}`,
            kind: "set",
            type: addr,
            interval: s.interval,
            elements: s.elements[f],
          });
          peerMatches.push(`${p} ${dir} @${s.name}${f}`);
        }
        const ranges = mergeRanges(rule.blocks.filter((b) => b.family === f).flatMap((b) => b.ranges));
        if (ranges.length > 0) {
          const elements = ranges.map(rangeText);
          const name = `cidrs-${shortHash(elements.join(","))}${f}`;
          addSet({ name, kind: "set", type: addr, interval: true, elements });
          peerMatches.push(`${p} ${dir} @${name}`);
        }
      }
      const portMatches: string[] = [];
      if (rule.anyPort) portMatches.push("");
      else if (portsMatch) portMatches.push(portsMatch);
      for (const pm of portMatches)
        for (const peer of peerMatches) out.push([peer, pm, "accept", comment].filter(Boolean).join(" "));
      if (rule.namedPorts.length > 0) {
        let name = `named-${this.policyIds[pi]}-i${rule.index}${f}`;
        let elements: string[];
        if (ingress) {
          // Resolved on each destination: this node's pods the policy selects.
          elements = [];
          for (const i of policy.selected) {
            if (!local.has(i)) continue;
            const pod = this.index.world.pods[i] as PolicyPod;
            const ip = podIpFor(pod, f);
            if (!ip) continue;
            for (const n of rule.namedPorts) {
              const port = resolveNamedPort(pod, n.name, n.protocol);
              if (port !== undefined) elements.push(`${ip} . ${protoText(n.protocol)} . ${port}`);
            }
          }
          elements = [...new Set(elements)].sort();
        } else {
          const shared = this.egressNamed(rule);
          name = `${shared.name}${f}`;
          elements = shared.elements[f];
        }
        addSet({ name, kind: "set", type: `${addr} . inet_proto . inet_service`, interval: false, elements });
        const named = `${p} daddr . meta l4proto . th dport @${name}`;
        // Egress: the named set already holds only the destinations the peers allow.
        if (ingress)
          for (const peer of peerMatches)
            out.push([peer, named, "accept", comment].filter(Boolean).join(" "));
        else out.push(`${named} accept ${comment}`);
      }
    }
    return out;
  }
}

/** `previous` with new elements for the sets it has among `sets` (the other sets are shared unchanged). */
export function patchRuleset(
  previous: PolicyRuleset,
  sets: ReadonlyMap<string, string[]>,
): PolicyRuleset | undefined {
  if (!previous.sets.some((s) => sets.has(s.name))) return undefined;
  return {
    ...previous,
    sets: previous.sets.map((s) => {
      const elements = sets.get(s.name);
      return elements ? { ...s, elements } : s;
    }),
  };
}

/** The ruleset as nft commands (one transaction with `nft -f`): chains before the rules that jump to them. */
export function renderRuleset(r: PolicyRuleset): string {
  const t = `inet ${r.table}`;
  const lines = [`add table ${t}`];
  for (const s of r.sets) lines.push(setDeclaration(t, s));
  for (const c of r.chains)
    lines.push(c.base ? `add chain ${t} ${c.name} { ${c.base} }` : `add chain ${t} ${c.name}`);
  for (const s of r.sets) if (s.kind === "set") lines.push(...elementLines("add", t, s.name, s.elements));
  // Group chains before policy chains is irrelevant to nft; maps jump to chains that exist by now.
  for (const c of r.chains) for (const rule of c.rules) lines.push(`add rule ${t} ${c.name} ${rule}`);
  for (const s of r.sets) if (s.kind === "map") lines.push(...elementLines("add", t, s.name, s.elements));
  return `${lines.join("\n")}\n`;
}

/** Replaces the node's table in one transaction (after an agent restart, or the first time). */
export function policySyncScript(r: PolicyRuleset): string {
  return `add table inet ${r.table}\ndelete table inet ${r.table}\n${renderRuleset(r)}`;
}

export function setDeclaration(t: string, s: PolicySetDef): string {
  return `add ${s.kind} ${t} ${s.name} { type ${s.type};${s.interval ? " flags interval;" : ""} }`;
}

const ELEMENTS_PER_COMMAND = 5000;

export function elementLines(
  verb: "add" | "delete",
  t: string,
  set: string,
  elements: readonly string[],
): string[] {
  const out: string[] = [];
  for (let i = 0; i < elements.length; i += ELEMENTS_PER_COMMAND) {
    const chunk = elements.slice(i, i + ELEMENTS_PER_COMMAND);
    // delete takes keys only (a map element's key is the text before " : ").
    const text = verb === "delete" ? chunk.map((e) => e.split(" : ")[0]) : chunk;
    out.push(`${verb} element ${t} ${set} { ${text.join(", ")} }`);
  }
  return out;
}
