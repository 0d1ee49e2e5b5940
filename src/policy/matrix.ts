/**
 * The static reachability matrix: every pod to every pod, per port and protocol, from manifests alone.
 * Set algebra on bitsets, not a scan of all policies per pair:
 *
 *   ingress row of source s = (pods not isolated for ingress) ∪ (targets of every any-peer rule)
 *                             ∪ ⋃ targets(r) over the ingress rules r whose peers match s
 *   egress row of source s  = all pods, if s is not isolated for egress, else ⋃ destinations(r) over the
 *                             egress rules of the policies selecting s
 *   row(s) = ingress row ∩ egress row, plus s itself
 *
 * Rows are cached by what they depend on (the list of rules matching s; the policies selecting s), so
 * pods alike cost one row. Named ports are resolved per destination pod; hostNetwork sources (own-node
 * rule) fall back to the per-pair evaluator. The same verdicts as evaluate.ts (a unit test checks it).
 */
import type { Protocol } from "../api/types.js";
import { formatMatrix } from "../lab/matrix.js";
import { evaluateConnection } from "./evaluate.js";
import {
  type CompiledRule,
  type PolicyIndex,
  type PolicyPod,
  rangesContain,
  resolveNamedPort,
} from "./model.js";

export interface ReachabilityMatrix {
  /** Pod keys (`ns/name`), rows and columns. */
  pods: string[];
  ports: number[];
  protocols: Protocol[];
  /** `${port}/${protocol}` → one bitset row per pod (bit d of row s: s reaches d). */
  rows: Map<string, Uint32Array[]>;
}

/** Bitsets over pod indices: 32 pods a word. */
const Bits = {
  make(n: number): Uint32Array {
    return new Uint32Array((n + 31) >>> 5);
  },
  full(n: number): Uint32Array {
    const b = Bits.make(n);
    b.fill(0xffffffff);
    const rest = n & 31;
    if (rest) b[b.length - 1] = (1 << rest) - 1;
    return b;
  },
  set(b: Uint32Array, i: number): void {
    b[i >>> 5] = ((b[i >>> 5] as number) | (1 << (i & 31))) >>> 0;
  },
  has(b: Uint32Array, i: number): boolean {
    return (((b[i >>> 5] as number) >>> (i & 31)) & 1) === 1;
  },
  or(into: Uint32Array, b: Uint32Array): void {
    for (let i = 0; i < into.length; i++) into[i] = (into[i] as number) | (b[i] as number);
  },
  isEmpty(b: Uint32Array): boolean {
    for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
    return true;
  },
};

/** Does the rule's port list allow port/protocol regardless of the destination (numeric ports)? */
function numericAllows(rule: CompiledRule, port: number, protocol: Protocol): boolean {
  if (rule.anyPort) return true;
  return rule.numericPorts.some((r) => r.protocol === protocol && port >= r.from && port <= r.to);
}

function namedAllows(rule: CompiledRule, pod: PolicyPod, port: number, protocol: Protocol): boolean {
  return rule.namedPorts.some(
    (n) => n.protocol === protocol && resolveNamedPort(pod, n.name, protocol) === port,
  );
}

/** Pods whose address an ipBlock peer of the rule contains. */
function blockMembers(index: PolicyIndex, rule: CompiledRule, cache: Map<CompiledRule, number[]>): number[] {
  let out = cache.get(rule);
  if (out) return out;
  out = [];
  if (rule.blocks.length > 0) {
    const pods = index.world.pods;
    for (let i = 0; i < pods.length; i++) {
      const ip = (pods[i] as PolicyPod).ips[0];
      if (ip && rule.blocks.some((b) => rangesContain(b.ranges, ip))) out.push(i);
    }
  }
  cache.set(rule, out);
  return out;
}

function computeOne(
  index: PolicyIndex,
  port: number,
  protocol: Protocol,
  blockCache: Map<CompiledRule, number[]>,
): Uint32Array[] {
  const pods = index.world.pods;
  const n = pods.length;
  const full = Bits.full(n);

  // Ingress: per rule, the destinations it opens (selected pods whose ports match), gathered per group of
  // sources (a selector peer's pods, or a rule's ipBlock members): sources alike share their group.
  const isolatedIn = Bits.make(n);
  const ingressBase = Bits.make(n);
  const opened = new Map<number, Uint32Array>(); // group → destinations its sources may reach
  const groupMembers = new Map<number, Iterable<number>>();
  let nextBlockGroup = index.peerSets.length;
  const open = (group: number, members: Iterable<number>, targets: Uint32Array) => {
    const o = opened.get(group);
    if (o) Bits.or(o, targets);
    else {
      opened.set(group, Uint32Array.from(targets));
      groupMembers.set(group, members);
    }
  };
  for (const policy of index.policies) {
    if (!policy.ingress) continue;
    for (const i of policy.selected) Bits.set(isolatedIn, i);
    for (const rule of policy.ingress) {
      const targets = Bits.make(n);
      const numeric = numericAllows(rule, port, protocol);
      for (const i of policy.selected)
        if (numeric || namedAllows(rule, pods[i] as PolicyPod, port, protocol)) Bits.set(targets, i);
      if (Bits.isEmpty(targets)) continue;
      if (rule.anyPeer) {
        Bits.or(ingressBase, targets);
        continue;
      }
      for (const sp of rule.selectorPeers) open(sp.set.id, sp.set.pods, targets);
      if (rule.blocks.length > 0) open(nextBlockGroup++, blockMembers(index, rule, blockCache), targets);
    }
  }
  for (let w = 0; w < ingressBase.length; w++)
    ingressBase[w] = ((ingressBase[w] as number) | (~(isolatedIn[w] as number) & (full[w] as number))) >>> 0;
  const sourceGroups: number[][] = pods.map(() => []);
  for (const [group, members] of groupMembers)
    for (const s of members) (sourceGroups[s] as number[]).push(group);

  // Egress: per rule, the destinations it allows.
  const ruleDestinations = new Map<CompiledRule, Uint32Array>();
  const namedCache = new Map<string, Uint32Array>();
  const namedBits = (name: string): Uint32Array => {
    let b = namedCache.get(name);
    if (!b) {
      b = Bits.make(n);
      for (let i = 0; i < n; i++)
        if (resolveNamedPort(pods[i] as PolicyPod, name, protocol) === port) Bits.set(b, i);
      namedCache.set(name, b);
    }
    return b;
  };
  const peerSetBits = new Map<number, Uint32Array>();
  const peerBits = (id: number, members: Set<number>): Uint32Array => {
    let b = peerSetBits.get(id);
    if (!b) {
      b = Bits.make(n);
      for (const i of members) Bits.set(b, i);
      peerSetBits.set(id, b);
    }
    return b;
  };
  const destinationsOf = (rule: CompiledRule): Uint32Array => {
    let d = ruleDestinations.get(rule);
    if (d) return d;
    let peers: Uint32Array;
    if (rule.anyPeer) peers = full;
    else {
      peers = Bits.make(n);
      for (const sp of rule.selectorPeers) Bits.or(peers, peerBits(sp.set.id, sp.set.pods));
      for (const i of blockMembers(index, rule, blockCache)) Bits.set(peers, i);
    }
    if (numericAllows(rule, port, protocol)) d = peers;
    else {
      // Named ports resolve on each destination: the pods whose port of that name is this one.
      const resolving = Bits.make(n);
      for (const np of rule.namedPorts) if (np.protocol === protocol) Bits.or(resolving, namedBits(np.name));
      d = Bits.make(n);
      for (let w = 0; w < d.length; w++) d[w] = (peers[w] as number) & (resolving[w] as number);
    }
    ruleDestinations.set(rule, d);
    return d;
  };

  const ingressCache = new Map<string, Uint32Array>();
  const egressCache = new Map<string, Uint32Array>();
  const rows: Uint32Array[] = new Array(n);
  for (let s = 0; s < n; s++) {
    const pod = pods[s] as PolicyPod;
    if (pod.hostNetwork) {
      rows[s] = Bits.make(n);
      for (let d = 0; d < n; d++) {
        const v = evaluateConnection(
          index,
          { pod: s, ip: pod.ips[0] ?? "" },
          { pod: d, ip: (pods[d] as PolicyPod).ips[0] ?? "" },
          port,
          protocol,
        );
        if (v.allowed) Bits.set(rows[s] as Uint32Array, d);
      }
      continue;
    }
    const groups = sourceGroups[s] as number[];
    const inKey = groups.join(",");
    let ingress = ingressCache.get(inKey);
    if (!ingress) {
      ingress = Uint32Array.from(ingressBase);
      for (const g of groups) Bits.or(ingress, opened.get(g) as Uint32Array);
      ingressCache.set(inKey, ingress);
    }
    const selecting = index.egressPolicies[s] as number[];
    const outKey = selecting.join(",");
    let egress = egressCache.get(outKey);
    if (!egress) {
      if (selecting.length === 0) egress = full;
      else {
        egress = Bits.make(n);
        for (const pi of selecting)
          for (const rule of index.policies[pi]?.egress ?? []) Bits.or(egress, destinationsOf(rule));
      }
      egressCache.set(outKey, egress);
    }
    const row = new Uint32Array(ingress.length);
    for (let w = 0; w < row.length; w++) row[w] = (ingress[w] as number) & (egress[w] as number);
    Bits.set(row, s); // a pod always reaches itself
    rows[s] = row;
  }
  return rows;
}

/** The matrix over every pod of the index, for each port and protocol. */
export function computeReachability(
  index: PolicyIndex,
  ports: readonly number[],
  protocols: readonly Protocol[],
): ReachabilityMatrix {
  const rows = new Map<string, Uint32Array[]>();
  const blockCache = new Map<CompiledRule, number[]>();
  for (const port of ports)
    for (const protocol of protocols)
      rows.set(`${port}/${protocol}`, computeOne(index, port, protocol, blockCache));
  return { pods: index.world.pods.map((p) => p.key), ports: [...ports], protocols: [...protocols], rows };
}

export function reaches(
  m: ReachabilityMatrix,
  from: number,
  to: number,
  port: number,
  protocol: Protocol,
): boolean {
  const rows = m.rows.get(`${port}/${protocol}`);
  const row = rows?.[from];
  return row ? Bits.has(row, to) : false;
}

/**
 * The matrix as `podnet lab matrix` prints it: a section `PORT/PROTOCOL:` per port and protocol with
 * formatMatrix's table, over the pods `only` lists (default all), and a last line.
 */
export function formatReachability(
  m: ReachabilityMatrix,
  only?: readonly string[],
  lastLine?: string,
): string {
  const at = new Map(m.pods.map((p, i) => [p, i]));
  const names = only ? only.filter((p) => at.has(p)) : m.pods;
  const sections = m.ports.flatMap((port) =>
    m.protocols.map(
      (protocol) =>
        `${port}/${protocol}:\n${formatMatrix(names, names, (r, c) => (reaches(m, at.get(r) as number, at.get(c) as number, port, protocol) ? "." : "X"))}`,
    ),
  );
  if (lastLine) sections.push(lastLine);
  return sections.join("\n\n");
}
