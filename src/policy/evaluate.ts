/**
 * NetworkPolicy semantics (networking.k8s.io/v1) for one connection, with the reasons: which policies
 * select each side, which rule (policy, direction, rule index, peer index, port index) allowed it, or
 * why it was denied. Pure: reads a PolicyIndex (model.ts).
 *
 * - A pod is isolated in a direction when a policy with that type in policyTypes selects it; a
 *   non-isolated direction allows everything. Isolated: allowed when any rule of any selecting policy
 *   matches (policies are additive), else denied.
 * - A connection needs both: egress of the source and ingress of the destination.
 * - A pod reaching itself is always allowed (it never leaves the pod when addressed by its own IP;
 *   through a Service the node short-circuits it too), as is traffic from the destination's own node.
 * - hostNetwork pods are never selected, and are never matched by pod or namespace selectors (their
 *   address is the node's); ipBlock matches any address, pod IPs included.
 */
import type {
  LabelSelector,
  NetworkPolicy,
  NetworkPolicyPeer,
  NetworkPolicyPort,
  Protocol,
} from "../api/types.js";
import { tryParseIp } from "../ipam/cidr.js";
import {
  type CompiledPolicy,
  type CompiledRule,
  type Direction,
  type PolicyIndex,
  type PolicyPod,
  rangesContain,
  resolveNamedPort,
  selectorPeerOf,
} from "./model.js";

/** One side of a connection: a pod of the world (index), or any address. */
export interface ConnectionEnd {
  pod?: number;
  ip: string;
}

export interface RuleRef {
  policy: string;
  direction: Direction;
  /** Index in spec.ingress / spec.egress. */
  rule: number;
  /** Index in the rule's from / to; absent when the rule has no peers (all). */
  peer?: number;
  /** Index in the rule's ports; absent when the rule has no ports (all). */
  port?: number;
}

export type DirectionReason =
  | "not-isolated"
  | "allowed-by-rule"
  | "no-rule-matches"
  | "loopback"
  | "own-node"
  | "not-a-pod"
  | "host-network";

export interface DirectionVerdict {
  direction: Direction;
  allowed: boolean;
  reason: DirectionReason;
  /** Policies (namespace/name) selecting the pod on this side for this direction. */
  policies: string[];
  allowedBy?: RuleRef;
}

export interface Verdict {
  allowed: boolean;
  egress: DirectionVerdict;
  ingress: DirectionVerdict;
}

function peerMatch(rule: CompiledRule, other: ConnectionEnd): number | undefined | false {
  if (rule.anyPeer) return undefined;
  if (other.pod !== undefined) {
    const p = selectorPeerOf(rule, other.pod);
    if (p !== undefined) return p;
  }
  for (const b of rule.blocks) if (rangesContain(b.ranges, other.ip)) return b.peer;
  return false;
}

/** Index of the rule's port that allows port/protocol to `dst` (named ports resolve on dst), or false. */
function portMatch(
  rule: CompiledRule,
  dst: PolicyPod | undefined,
  port: number,
  protocol: Protocol,
): number | undefined | false {
  if (rule.anyPort) return undefined;
  for (const [i, r] of rule.numericPorts.entries())
    if (r.protocol === protocol && port >= r.from && port <= r.to) return rule.numericPortIndex[i] as number;
  if (dst) {
    for (const n of rule.namedPorts)
      if (n.protocol === protocol && resolveNamedPort(dst, n.name, protocol) === port) return n.index;
  }
  return false;
}

function matchRules(
  policy: CompiledPolicy,
  rules: CompiledRule[],
  other: ConnectionEnd,
  dst: PolicyPod | undefined,
  port: number,
  protocol: Protocol,
): RuleRef | undefined {
  for (const rule of rules) {
    const peer = peerMatch(rule, other);
    if (peer === false) continue;
    const p = portMatch(rule, dst, port, protocol);
    if (p === false) continue;
    const ref: RuleRef = { policy: policy.key, direction: rule.direction, rule: rule.index };
    if (peer !== undefined) ref.peer = peer;
    if (p !== undefined) ref.port = p;
    return ref;
  }
  return undefined;
}

function isOwnNode(index: PolicyIndex, src: ConnectionEnd, dstPod: PolicyPod): boolean {
  const addrs = index.world.nodeAddresses.get(dstPod.node) ?? [];
  if (addrs.includes(src.ip)) return true;
  if (src.pod === undefined) return false;
  const s = index.world.pods[src.pod] as PolicyPod;
  return s.hostNetwork && s.node === dstPod.node;
}

function directionVerdict(
  index: PolicyIndex,
  direction: Direction,
  self: ConnectionEnd,
  other: ConnectionEnd,
  dst: PolicyPod | undefined,
  port: number,
  protocol: Protocol,
): DirectionVerdict {
  if (self.pod === undefined) return { direction, allowed: true, reason: "not-a-pod", policies: [] };
  const pod = index.world.pods[self.pod] as PolicyPod;
  if (pod.hostNetwork) return { direction, allowed: true, reason: "host-network", policies: [] };
  const selecting = (direction === "ingress" ? index.ingressPolicies : index.egressPolicies)[self.pod] ?? [];
  const policies = selecting.map((i) => (index.policies[i] as CompiledPolicy).key);
  if (other.pod === self.pod) return { direction, allowed: true, reason: "loopback", policies };
  if (direction === "ingress" && isOwnNode(index, other, pod))
    return { direction, allowed: true, reason: "own-node", policies };
  if (selecting.length === 0) return { direction, allowed: true, reason: "not-isolated", policies };
  for (const pi of selecting) {
    const policy = index.policies[pi] as CompiledPolicy;
    const rules = (direction === "ingress" ? policy.ingress : policy.egress) ?? [];
    const ref = matchRules(policy, rules, other, dst, port, protocol);
    if (ref) return { direction, allowed: true, reason: "allowed-by-rule", policies, allowedBy: ref };
  }
  return { direction, allowed: false, reason: "no-rule-matches", policies };
}

/** Is a connection from `src` to `dst` on port/protocol allowed, and why. */
export function evaluateConnection(
  index: PolicyIndex,
  src: ConnectionEnd,
  dst: ConnectionEnd,
  port: number,
  protocol: Protocol,
): Verdict {
  const dstPod = dst.pod === undefined ? undefined : (index.world.pods[dst.pod] as PolicyPod);
  const egress = directionVerdict(index, "egress", src, dst, dstPod, port, protocol);
  const ingress = directionVerdict(index, "ingress", dst, src, dstPod, port, protocol);
  return { allowed: egress.allowed && ingress.allowed, egress, ingress };
}

/** A pod (`ns/name`, or `name` in `defaultNamespace`) or an IP address, as a connection end. */
export function resolveEnd(
  index: PolicyIndex,
  text: string,
  defaultNamespace = "default",
): ConnectionEnd | undefined {
  if (tryParseIp(text)) {
    const i = index.world.pods.findIndex((p) => !p.hostNetwork && p.ips.includes(text));
    return i >= 0 ? { pod: i, ip: text } : { ip: text };
  }
  const key = text.includes("/") ? text : `${defaultNamespace}/${text}`;
  const i = index.podIndex.get(key);
  if (i === undefined) return undefined;
  const pod = index.world.pods[i] as PolicyPod;
  const ip = pod.ips[0];
  return ip === undefined ? undefined : { pod: i, ip };
}

function selectorText(sel: LabelSelector): string {
  const parts = [
    ...Object.entries(sel.matchLabels).map(([k, v]) => `${k}=${v}`),
    ...sel.matchExpressions.map((e) => {
      if (e.operator === "Exists") return e.key;
      if (e.operator === "DoesNotExist") return `!${e.key}`;
      return `${e.key} ${e.operator === "In" ? "in" : "notin"} (${e.values.join(",")})`;
    }),
  ];
  return parts.length ? `{${parts.join(", ")}}` : "{} (all)";
}

function peerText(peer: NetworkPolicyPeer, policyNamespace: string): string {
  if (peer.ipBlock)
    return `ipBlock ${peer.ipBlock.cidr}${peer.ipBlock.except.length ? ` except ${peer.ipBlock.except.join(", ")}` : ""}`;
  const pods = peer.podSelector ? `pods ${selectorText(peer.podSelector)}` : "all pods";
  return peer.namespaceSelector
    ? `${pods} in namespaces ${selectorText(peer.namespaceSelector)}`
    : `${pods} in namespace ${policyNamespace}`;
}

function portText(port: NetworkPolicyPort, resolved: number, dst: string): string {
  if (port.port === undefined) return `all ${port.protocol} ports`;
  if (typeof port.port === "string")
    return `${port.port}/${port.protocol} (${resolved} on ${dst.split(" (")[0]})`;
  return port.endPort ? `${port.port}-${port.endPort}/${port.protocol}` : `${port.port}/${port.protocol}`;
}

function ruleText(ref: RuleRef, policy: NetworkPolicy | undefined, port: number, dst: string): string {
  const peers = ref.direction === "ingress" ? "from" : "to";
  const rule = policy ? (ref.direction === "ingress" ? policy.ingress : policy.egress)[ref.rule] : undefined;
  const peerSpec = ref.peer === undefined ? undefined : rule?.peers[ref.peer];
  const portSpec = ref.port === undefined ? undefined : rule?.ports[ref.port];
  const peer =
    ref.peer === undefined
      ? `${peers}: all`
      : `${peers}[${ref.peer}]${peerSpec && policy ? ` ${peerText(peerSpec, policy.meta.namespace)}` : ""}`;
  const ports =
    ref.port === undefined
      ? "ports: all"
      : `ports[${ref.port}]${portSpec ? ` ${portText(portSpec, port, dst)}` : ""}`;
  return `${ref.policy} ${ref.direction}[${ref.rule}] (${peer}; ${ports})`;
}

function directionText(
  v: DirectionVerdict,
  who: string,
  policies: ReadonlyMap<string, NetworkPolicy>,
  port: number,
  dst: string,
): string {
  const selected = v.policies.length ? `selected by ${v.policies.join(", ")}` : "selected by no policy";
  switch (v.reason) {
    case "not-isolated":
      return `${v.direction} of ${who}: allowed — ${selected}, so not isolated for ${v.direction}`;
    case "allowed-by-rule":
      return `${v.direction} of ${who}: allowed by ${ruleText(v.allowedBy as RuleRef, policies.get(v.allowedBy?.policy ?? ""), port, dst)} — ${selected}`;
    case "no-rule-matches":
      return `${v.direction} of ${who}: DENIED — isolated for ${v.direction} (${selected}) and no rule of them matches`;
    case "loopback":
      return `${v.direction} of ${who}: allowed — a pod always reaches itself`;
    case "own-node":
      return `${v.direction} of ${who}: allowed — traffic from the pod's own node is always allowed`;
    case "not-a-pod":
      return `${v.direction} of ${who}: allowed — not a pod, no policy applies`;
    case "host-network":
      return `${v.direction} of ${who}: allowed — a hostNetwork pod is never selected by policies`;
  }
}

/** The verdict for people: one line per direction, then the outcome (rules spelled out with `index`). */
export function formatVerdict(
  v: Verdict,
  from: string,
  to: string,
  port: number,
  protocol: Protocol,
  index?: PolicyIndex,
): string {
  const policies = new Map((index?.policies ?? []).map((p) => [p.key, p.policy]));
  return [
    `${from} → ${to} ${port}/${protocol}: ${v.allowed ? "ALLOWED" : "DENIED"}`,
    `  ${directionText(v.egress, from, policies, port, to)}`,
    `  ${directionText(v.ingress, to, policies, port, to)}`,
  ].join("\n");
}
