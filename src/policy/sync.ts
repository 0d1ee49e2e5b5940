/**
 * The node agent's policy reconciler for the lab: on every sync, plan the nodes' rulesets from the
 * stored objects (incrementally when only pod labels changed: reconcile.ts) and apply to each node whose
 * ruleset changed the difference to the last one applied there, as one nft transaction (the whole table
 * after a restart). I/O lives here; planning is in plan.ts, reconcile.ts and diff.ts.
 */
import { existsSync } from "node:fs";
import { loadManifestSources } from "../api/index.js";
import type { DesiredState } from "../api/types.js";
import { netnsNames, netnsPath } from "../lab/names.js";
import { type LabState, storeSource } from "../lab/store.js";
import { nftApply } from "../linux/nft.js";
import { planPolicyUpdate } from "./diff.js";
import { policyWorld } from "./model.js";
import { type PolicyRuleset, policySyncScript } from "./plan.js";
import { PolicyReconciler } from "./reconcile.js";

export interface PolicySyncReport {
  /** Per cluster: how it was planned. */
  modes: string[];
  nodes: number;
  /** Nodes whose table changed in this sync. */
  changed: number;
  ms: number;
}

export class LabPolicySync {
  private readonly applied = new Map<string, PolicyRuleset>();
  private readonly reconcilers = new Map<string, PolicyReconciler>();

  constructor(
    private readonly lab: string,
    private readonly log: (line: string) => void,
  ) {}

  /** Node namespaces whose policy table is applied. */
  nodes(): string[] {
    return [...this.applied.keys()];
  }

  async sync(state: LabState, desired?: DesiredState): Promise<PolicySyncReport> {
    const started = performance.now();
    const loaded =
      desired ??
      loadManifestSources(state.objects.length ? [storeSource(this.lab, state.objects)] : []).state;
    const jobs: { ns: string; next: PolicyRuleset }[] = [];
    const modes: string[] = [];
    for (const cluster of state.plan?.clusters ?? []) {
      let reconciler = this.reconcilers.get(cluster.name);
      if (!reconciler) {
        reconciler = new PolicyReconciler();
        this.reconcilers.set(cluster.name, reconciler);
      }
      const nodes = cluster.nodes.map((n) => n.name);
      const result = reconciler.plan(policyWorld(loaded, cluster), nodes);
      modes.push(`${cluster.name}: ${result.mode}`);
      for (const node of nodes) {
        const ns = netnsPath(netnsNames.node(this.lab, cluster.name, node));
        if (!existsSync(ns)) continue;
        // A node not applied yet (new, or its last apply failed) gets its whole table.
        const next =
          result.changed.get(node) ?? (this.applied.has(ns) ? undefined : reconciler.rulesets.get(node));
        if (next) jobs.push({ ns, next });
      }
    }
    let changed = 0;
    await Promise.all(
      jobs.map(async ({ ns, next }) => {
        const previous = this.applied.get(ns);
        const text = previous ? planPolicyUpdate(previous, next).text : policySyncScript(next);
        if (!text) return;
        try {
          await nftApply(text, { netns: ns });
          this.applied.set(ns, next);
          changed++;
        } catch (e) {
          // Unknown state: the next sync replaces the whole table.
          this.applied.delete(ns);
          this.log(`network policy in ${ns}: ${(e as Error).message}`);
          throw e;
        }
      }),
    );
    const ms = performance.now() - started;
    if (changed)
      this.log(`network policy: ${modes.join(", ")}; ${changed} nodes changed in ${ms.toFixed(0)} ms`);
    return { modes, nodes: jobs.length, changed, ms };
  }
}
