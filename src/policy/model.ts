/**
 * The inputs of NetworkPolicy semantics as plain data: the pods of one cluster (labels, IPs, node, named
 * ports), the labels of its namespaces and its policies, compiled once into an index (which pods each
 * policy selects, which pods and address ranges each rule's peers match, which ports each rule allows).
 * The evaluator, the static matrix and the nftables planner all read the same index, so what `explain`
 * says is what the dataplane enforces.
 */
import { matchesSelector } from "../api/selector.js";
import type {
  DesiredState,
  LabelSelector,
  NetworkPolicy,
  NetworkPolicyPeer,
  NetworkPolicyPort,
  Protocol,
} from "../api/types.js";
import { type Family, type IpRange, parseCidr, tryParseIp } from "../ipam/cidr.js";
import type { ClusterPlan } from "../plan/types.js";

export interface PolicyPodPort {
  name?: string;
  port: number;
  protocol: Protocol;
}

export interface PolicyPod {
  /** `namespace/name`. */
  key: string;
  namespace: string;
  name: string;
  node: string;
  labels: Record<string, string>;
  /** Planned IPs, IPv4 first. For hostNetwork pods, the node's address. */
  ips: string[];
  hostNetwork: boolean;
  ports: PolicyPodPort[];
}

export interface PolicyWorld {
  cluster: string;
  pods: PolicyPod[];
  /** Namespace name → labels (with kubernetes.io/metadata.name). */
  namespaceLabels: Map<string, Record<string, string>>;
  policies: NetworkPolicy[];
  /** Node name → its own addresses (traffic from a pod's own node is always allowed). */
  nodeAddresses: Map<string, string[]>;
}

export type Direction = "ingress" | "egress";

/** A numeric port match: protocol and inclusive port range (0-65535 when the rule gives no port). */
export interface PortRange {
  protocol: Protocol;
  from: number;
  to: number;
}

/**
 * The pods one selector peer matches (podSelector and/or namespaceSelector, in a policy's namespace).
 * Shared by every peer with the same selectors in the same namespace: computed once.
 */
export interface PeerSet {
  id: number;
  key: string;
  pods: Set<number>;
  /** What it was computed from (to re-check one pod after a label change). */
  policyNamespace: string;
  peer: NetworkPolicyPeer;
}

export interface CompiledRule {
  direction: Direction;
  /** Index in spec.ingress / spec.egress. */
  index: number;
  /** No peers: every source (ingress) or destination (egress). */
  anyPeer: boolean;
  /** The selector peers, in order (peer: index in from/to). */
  selectorPeers: { peer: number; set: PeerSet }[];
  /** The ipBlock peers as address ranges (cidr minus except), per peer. */
  blocks: { peer: number; family: Family; ranges: IpRange[] }[];
  /** Canonical text of the selector peers (with the namespace): rules alike share their nft set. */
  selectorKey: string;
  /** No ports: every port and protocol. */
  anyPort: boolean;
  numericPorts: PortRange[];
  namedPorts: { protocol: Protocol; name: string; index: number }[];
  /** Index in the rule's ports of each numeric port range. */
  numericPortIndex: number[];
}

export interface CompiledPolicy {
  /** `namespace/name`. */
  key: string;
  policy: NetworkPolicy;
  /** Pods the policy selects (never hostNetwork pods). */
  selected: Set<number>;
  ingress?: CompiledRule[];
  egress?: CompiledRule[];
}

export interface PolicyIndex {
  world: PolicyWorld;
  policies: CompiledPolicy[];
  peerSets: PeerSet[];
  /** Namespace → policies (indices) in it. */
  policiesByNamespace: Map<string, number[]>;
  /** Pod index → policies (indices) selecting it for ingress / egress. */
  ingressPolicies: number[][];
  egressPolicies: number[][];
  /** Pod key → pod index. */
  podIndex: Map<string, number>;
}

/** The world of one cluster from the desired state and its address plan. */
export function policyWorld(state: DesiredState, plan: ClusterPlan): PolicyWorld {
  const cluster = plan.name;
  const planned = new Map(plan.pods.map((p) => [`${p.namespace}/${p.name}`, p]));
  const pods: PolicyPod[] = [];
  for (const pod of state.pods) {
    if (pod.meta.cluster !== cluster) continue;
    const key = `${pod.meta.namespace}/${pod.meta.name}`;
    const p = planned.get(key);
    if (!p) continue;
    pods.push({
      key,
      namespace: pod.meta.namespace,
      name: pod.meta.name,
      node: p.node,
      labels: pod.meta.labels,
      ips: p.ips,
      hostNetwork: pod.hostNetwork,
      ports: pod.containers.flatMap((c) =>
        c.ports.map((x) => ({ name: x.name, port: x.containerPort, protocol: x.protocol })),
      ),
    });
  }
  const namespaceLabels = new Map<string, Record<string, string>>();
  for (const ns of state.namespaces)
    if (ns.meta.cluster === cluster) namespaceLabels.set(ns.meta.name, ns.meta.labels);
  return {
    cluster,
    pods,
    namespaceLabels,
    policies: state.networkPolicies.filter((p) => p.meta.cluster === cluster),
    nodeAddresses: new Map(plan.nodes.map((n) => [n.name, [n.address]])),
  };
}

export function policyKey(p: NetworkPolicy): string {
  return `${p.meta.namespace}/${p.meta.name}`;
}

function namespaceLabelsOf(world: PolicyWorld, ns: string): Record<string, string> {
  // A namespace only referenced by objects still carries its name label (as the API server adds it).
  return world.namespaceLabels.get(ns) ?? { "kubernetes.io/metadata.name": ns };
}

/** cidr minus except, as sorted disjoint ranges. */
export function blockRanges(cidr: string, except: readonly string[]): IpRange[] {
  const c = parseCidr(cidr);
  const size = BigInt(c.family === 4 ? 32 : 128) - BigInt(c.prefix);
  let ranges: IpRange[] = [{ family: c.family, start: c.network, end: c.network + (1n << size) - 1n }];
  for (const e of except) {
    const x = parseCidr(e);
    if (x.family !== c.family) continue;
    const xs = x.network;
    const xe = x.network + (1n << (BigInt(x.family === 4 ? 32 : 128) - BigInt(x.prefix))) - 1n;
    const next: IpRange[] = [];
    for (const r of ranges) {
      if (xe < r.start || xs > r.end) next.push(r);
      else {
        if (r.start < xs) next.push({ family: r.family, start: r.start, end: xs - 1n });
        if (xe < r.end) next.push({ family: r.family, start: xe + 1n, end: r.end });
      }
    }
    ranges = next;
  }
  return ranges;
}

export function rangesContain(ranges: readonly IpRange[], ip: string): boolean {
  const a = tryParseIp(ip);
  if (!a) return false;
  for (const r of ranges) if (r.family === a.family && a.value >= r.start && a.value <= r.end) return true;
  return false;
}

interface Compiler {
  world: PolicyWorld;
  podsByNamespace: Map<string, number[]>;
  peerSets: PeerSet[];
  peerSetByKey: Map<string, PeerSet>;
  selectedByKey: Map<string, Set<number>>;
}

function peerSetFor(c: Compiler, policyNamespace: string, peer: NetworkPolicyPeer): PeerSet {
  const key = `${peer.namespaceSelector ? "*" : policyNamespace}|${JSON.stringify(peer.namespaceSelector ?? null)}|${JSON.stringify(peer.podSelector ?? null)}`;
  let set = c.peerSetByKey.get(key);
  if (set) return set;
  const pods = new Set<number>();
  const namespaces = peer.namespaceSelector
    ? [...c.podsByNamespace.keys()].filter((ns) =>
        matchesSelector(peer.namespaceSelector as LabelSelector, namespaceLabelsOf(c.world, ns)),
      )
    : [policyNamespace];
  for (const ns of namespaces)
    for (const i of c.podsByNamespace.get(ns) ?? [])
      if (!peer.podSelector || matchesSelector(peer.podSelector, (c.world.pods[i] as PolicyPod).labels))
        pods.add(i);
  set = { id: c.peerSets.length, key, pods, policyNamespace, peer };
  c.peerSets.push(set);
  c.peerSetByKey.set(key, set);
  return set;
}

function compileRule(
  c: Compiler,
  policy: NetworkPolicy,
  direction: Direction,
  index: number,
  rule: { peers: NetworkPolicyPeer[]; ports: NetworkPolicyPort[] },
): CompiledRule {
  const selectorPeers: CompiledRule["selectorPeers"] = [];
  const blocks: CompiledRule["blocks"] = [];
  rule.peers.forEach((peer, pi) => {
    if (peer.ipBlock) {
      const ranges = blockRanges(peer.ipBlock.cidr, peer.ipBlock.except);
      blocks.push({ peer: pi, family: ranges[0]?.family ?? 4, ranges });
    } else selectorPeers.push({ peer: pi, set: peerSetFor(c, policy.meta.namespace, peer) });
  });
  const numericPorts: PortRange[] = [];
  const numericPortIndex: number[] = [];
  const namedPorts: CompiledRule["namedPorts"] = [];
  rule.ports.forEach((p, i) => {
    if (typeof p.port === "string") namedPorts.push({ protocol: p.protocol, name: p.port, index: i });
    else {
      numericPorts.push({
        protocol: p.protocol,
        from: p.port ?? 0,
        to: p.port === undefined ? 65535 : (p.endPort ?? p.port),
      });
      numericPortIndex.push(i);
    }
  });
  return {
    direction,
    index,
    anyPeer: rule.peers.length === 0,
    selectorPeers,
    blocks,
    selectorKey: selectorPeers
      .map((x) => x.set.key)
      .sort()
      .join("\n"),
    anyPort: rule.ports.length === 0,
    numericPorts,
    namedPorts,
    numericPortIndex,
  };
}

/** Is the pod one of the rule's selector peers? The first matching peer's index, else undefined. */
export function selectorPeerOf(rule: CompiledRule, pod: number): number | undefined {
  for (const p of rule.selectorPeers) if (p.set.pods.has(pod)) return p.peer;
  return undefined;
}

/** Compiles every policy of the world once: selected pods, rule peers and ports. */
export function buildPolicyIndex(world: PolicyWorld): PolicyIndex {
  const podsByNamespace = new Map<string, number[]>();
  world.pods.forEach((p, i) => {
    if (p.hostNetwork) return;
    const list = podsByNamespace.get(p.namespace);
    if (list) list.push(i);
    else podsByNamespace.set(p.namespace, [i]);
  });
  const c: Compiler = {
    world,
    podsByNamespace,
    peerSets: [],
    peerSetByKey: new Map(),
    selectedByKey: new Map(),
  };
  const ingressPolicies: number[][] = world.pods.map(() => []);
  const egressPolicies: number[][] = world.pods.map(() => []);
  const policies = world.policies.map((policy, pi): CompiledPolicy => {
    const selKey = `${policy.meta.namespace}|${JSON.stringify(policy.podSelector)}`;
    let selected = c.selectedByKey.get(selKey);
    if (!selected) {
      selected = new Set<number>();
      for (const i of podsByNamespace.get(policy.meta.namespace) ?? [])
        if (matchesSelector(policy.podSelector, (world.pods[i] as PolicyPod).labels)) selected.add(i);
      c.selectedByKey.set(selKey, selected);
    }
    const compiled: CompiledPolicy = { key: policyKey(policy), policy, selected };
    if (policy.policyTypes.includes("Ingress")) {
      compiled.ingress = policy.ingress.map((r, i) => compileRule(c, policy, "ingress", i, r));
      for (const i of selected) (ingressPolicies[i] as number[]).push(pi);
    }
    if (policy.policyTypes.includes("Egress")) {
      compiled.egress = policy.egress.map((r, i) => compileRule(c, policy, "egress", i, r));
      for (const i of selected) (egressPolicies[i] as number[]).push(pi);
    }
    return compiled;
  });
  return {
    world,
    policies,
    peerSets: c.peerSets,
    policiesByNamespace: groupBy(world.policies.map((p, i) => [p.meta.namespace, i])),
    ingressPolicies,
    egressPolicies,
    podIndex: new Map(world.pods.map((p, i) => [p.key, i])),
  };
}

function groupBy(entries: [string, number][]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const [k, v] of entries) {
    const list = out.get(k);
    if (list) list.push(v);
    else out.set(k, [v]);
  }
  return out;
}

export interface LabelChangeEffect {
  /** Peer sets (ids) whose members changed. */
  peerSets: Set<number>;
  /** Pods (indices) whose selecting policies changed. */
  reselected: Set<number>;
}

/**
 * Applies new labels of some pods to the index in place, re-checking only those pods against each peer
 * set and each policy of their namespace: O(pods changed × (peer sets + policies of the namespace)).
 */
export function updatePodLabels(
  index: PolicyIndex,
  changes: Map<number, Record<string, string>>,
): LabelChangeEffect {
  const effect: LabelChangeEffect = { peerSets: new Set(), reselected: new Set() };
  const { world } = index;
  for (const [i, labels] of changes) {
    const pod = world.pods[i] as PolicyPod;
    world.pods[i] = { ...pod, labels };
    if (pod.hostNetwork) continue;
    for (const set of index.peerSets) {
      const { peer } = set;
      const nsOk = peer.namespaceSelector
        ? matchesSelector(peer.namespaceSelector, namespaceLabelsOf(world, pod.namespace))
        : pod.namespace === set.policyNamespace;
      const member = nsOk && (!peer.podSelector || matchesSelector(peer.podSelector, labels));
      if (member !== set.pods.has(i)) {
        if (member) set.pods.add(i);
        else set.pods.delete(i);
        effect.peerSets.add(set.id);
      }
    }
    const ingress: number[] = [];
    const egress: number[] = [];
    for (const pi of index.policiesByNamespace.get(pod.namespace) ?? []) {
      const policy = index.policies[pi] as CompiledPolicy;
      const selected = matchesSelector(policy.policy.podSelector, labels);
      if (selected) policy.selected.add(i);
      else policy.selected.delete(i);
      if (selected && policy.ingress) ingress.push(pi);
      if (selected && policy.egress) egress.push(pi);
    }
    const same = (a: number[], b: number[]) => a.length === b.length && a.every((x, k) => x === b[k]);
    if (!same(ingress, index.ingressPolicies[i] ?? []) || !same(egress, index.egressPolicies[i] ?? []))
      effect.reselected.add(i);
    index.ingressPolicies[i] = ingress;
    index.egressPolicies[i] = egress;
  }
  return effect;
}

/** The container port a named port resolves to on a pod (name and protocol), as Kubernetes' FindPort. */
export function resolveNamedPort(pod: PolicyPod, name: string, protocol: Protocol): number | undefined {
  return pod.ports.find((p) => p.name === name && p.protocol === protocol)?.port;
}

/** The first of a pod's IPs in the family of `ip`, else its first IP. */
export function podIpFor(pod: PolicyPod, family: Family): string | undefined {
  return pod.ips.find((ip) => (family === 4 ? !ip.includes(":") : ip.includes(":")));
}
