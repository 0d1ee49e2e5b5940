/**
 * Where the policy tools read the world from: manifest files (planned here, as `podnet plan` would), or
 * a running lab's store (its objects and the address plan it built, so pod IPs are the live ones).
 */
import { type Diagnostic, hasErrors, loadManifestFiles, loadManifestSources } from "../api/index.js";
import type { DesiredState } from "../api/types.js";
import { readLabState, storeSource } from "../lab/store.js";
import { planAddresses } from "../plan/index.js";
import type { ClusterPlan } from "../plan/types.js";
import { buildPolicyIndex, type PolicyIndex, policyWorld } from "./model.js";

export interface PolicyInputs {
  state: DesiredState;
  clusters: ClusterPlan[];
  diagnostics: Diagnostic[];
}

export function inputsFromFiles(files: string[]): PolicyInputs {
  const loaded = loadManifestFiles(files, {});
  if (hasErrors(loaded.diagnostics))
    return { state: loaded.state, clusters: [], diagnostics: loaded.diagnostics };
  const plan = planAddresses(loaded.state);
  return {
    state: loaded.state,
    clusters: plan.clusters,
    diagnostics: [...loaded.diagnostics, ...plan.diagnostics],
  };
}

/** The lab's stored objects and address plan; undefined when the lab does not exist. */
export function inputsFromLab(lab: string): PolicyInputs | undefined {
  const stored = readLabState(lab);
  if (!stored) return undefined;
  const loaded = loadManifestSources(stored.objects.length ? [storeSource(lab, stored.objects)] : []);
  return { state: loaded.state, clusters: stored.plan?.clusters ?? [], diagnostics: loaded.diagnostics };
}

/** The index of one cluster (by name, or the first). */
export function indexFor(inputs: PolicyInputs, cluster?: string): PolicyIndex | undefined {
  const plan = cluster ? inputs.clusters.find((c) => c.name === cluster) : inputs.clusters[0];
  return plan ? buildPolicyIndex(policyWorld(inputs.state, plan)) : undefined;
}
