/**
 * Keeps one cluster's policy plan between syncs and re-plans as little as a change needs. Pure (no I/O).
 *
 * - Only pod labels changed (the common case: a rollout, `kubectl label`): the index is updated in place
 *   for those pods (updatePodLabels), the changed pods' nodes are planned again, and every other node's
 *   ruleset gets the new elements of the shared sets whose members changed. Cost: the changed pods times
 *   the peer sets, plus one node's plan — not the cluster.
 * - Anything else (policies, namespaces and their labels, pods added, moved or removed, nodes): the whole
 *   cluster is planned again (the index is compiled once and shared by all nodes).
 * Either way the caller diffs each changed node's ruleset against the one applied (diff.ts).
 */
import type { PolicyPod, PolicyWorld } from "./model.js";
import { buildPolicyIndex, type PolicyIndex, updatePodLabels } from "./model.js";
import { PolicyPlanner, type PolicyRuleset, patchRuleset } from "./plan.js";

export interface ReconcileResult {
  /** Node → its ruleset, for the nodes whose ruleset may have changed. */
  changed: Map<string, PolicyRuleset>;
  /** "labels": only pod labels changed, planned incrementally; "full": planned from scratch. */
  mode: "labels" | "full" | "unchanged";
  /** Pods whose labels changed (labels mode). */
  pods: number;
}

function samePod(a: PolicyPod, b: PolicyPod): boolean {
  return (
    a.key === b.key &&
    a.node === b.node &&
    a.hostNetwork === b.hostNetwork &&
    a.ips.length === b.ips.length &&
    a.ips.every((ip, i) => ip === b.ips[i]) &&
    a.ports.length === b.ports.length &&
    a.ports.every((p, i) => {
      const q = b.ports[i];
      return q !== undefined && p.name === q.name && p.port === q.port && p.protocol === q.protocol;
    })
  );
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k]) return false;
  return true;
}

/** What of a policy its semantics read (not where it was declared). */
function policyText(world: PolicyWorld): string {
  return JSON.stringify(
    world.policies.map((p) => [
      p.meta.namespace,
      p.meta.name,
      p.podSelector,
      p.policyTypes,
      p.ingress,
      p.egress,
    ]),
  );
}

function namespacesText(world: PolicyWorld): string {
  return JSON.stringify([...world.namespaceLabels].sort((a, b) => a[0].localeCompare(b[0])));
}

export class PolicyReconciler {
  private index?: PolicyIndex;
  private planner?: PolicyPlanner;
  private nodes: string[] = [];
  private policies = "";
  private namespaces = "";
  /** The last ruleset planned for each node. */
  readonly rulesets = new Map<string, PolicyRuleset>();

  get current(): PolicyIndex | undefined {
    return this.index;
  }

  plan(world: PolicyWorld, nodes: readonly string[]): ReconcileResult {
    const policies = policyText(world);
    const namespaces = namespacesText(world);
    const labelChanges = this.labelChangesTo(world, nodes, policies, namespaces);
    const { index, planner } = this;
    if (labelChanges && index && planner) {
      if (labelChanges.size === 0) return { changed: new Map(), mode: "unchanged", pods: 0 };
      const effect = updatePodLabels(index, labelChanges);
      const sets = planner.refreshAfterLabelChange(effect);
      const replan = new Set([...labelChanges.keys()].map((i) => (index.world.pods[i] as PolicyPod).node));
      const changed = new Map<string, PolicyRuleset>();
      for (const node of this.nodes) {
        const next = replan.has(node)
          ? planner.planNode(node)
          : patchRuleset(this.rulesets.get(node) as PolicyRuleset, sets);
        if (!next) continue;
        this.rulesets.set(node, next);
        changed.set(node, next);
      }
      return { changed, mode: "labels", pods: labelChanges.size };
    }
    this.index = buildPolicyIndex(world);
    this.planner = new PolicyPlanner(this.index);
    this.nodes = [...nodes];
    this.policies = policies;
    this.namespaces = namespaces;
    this.rulesets.clear();
    const changed = new Map<string, PolicyRuleset>();
    for (const node of nodes) {
      const r = this.planner.planNode(node);
      this.rulesets.set(node, r);
      changed.set(node, r);
    }
    return { changed, mode: "full", pods: 0 };
  }

  /** Pod index → new labels when the world differs from the last one only in pod labels; else undefined. */
  private labelChangesTo(
    world: PolicyWorld,
    nodes: readonly string[],
    policies: string,
    namespaces: string,
  ): Map<number, Record<string, string>> | undefined {
    const old = this.index?.world;
    if (!old || policies !== this.policies || namespaces !== this.namespaces) return undefined;
    if (nodes.length !== this.nodes.length || nodes.some((n, i) => n !== this.nodes[i])) return undefined;
    if (old.pods.length !== world.pods.length) return undefined;
    const changes = new Map<number, Record<string, string>>();
    for (let i = 0; i < world.pods.length; i++) {
      const a = old.pods[i] as PolicyPod;
      const b = world.pods[i] as PolicyPod;
      if (!samePod(a, b)) return undefined;
      if (!sameLabels(a.labels, b.labels)) changes.set(i, b.labels);
    }
    return changes;
  }
}
