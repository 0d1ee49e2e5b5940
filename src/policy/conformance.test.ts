// The static evaluator and the bitset matrix against the upstream e2e suite's expectations (no kernel).
import assert from "node:assert/strict";
import { test } from "node:test";
import { loadManifestSources } from "../api/index.js";
import type { DesiredState } from "../api/types.js";
import { planAddresses } from "../plan/index.js";
import {
  ALL_PODS,
  type ConformanceScenario,
  conformanceManifests,
  conformanceScenarios,
  type PolicyManifest,
  sctpScenarios,
} from "./conformance.js";
import { evaluateConnection, resolveEnd } from "./evaluate.js";
import { computeReachability, reaches } from "./matrix.js";
import { buildPolicyIndex, policyWorld } from "./model.js";

function load(policies: PolicyManifest[]): DesiredState {
  const text = [conformanceManifests(), ...policies.map((p) => JSON.stringify(p))].join("\n---\n");
  const loaded = loadManifestSources([{ file: "conformance.yaml", text }]);
  assert.deepEqual(
    loaded.diagnostics.filter((d) => d.severity === "error"),
    [],
  );
  return loaded.state;
}

function withLabels(
  state: DesiredState,
  podLabels: Map<string, Record<string, string>>,
  nsLabels: Map<string, Record<string, string>>,
): DesiredState {
  return {
    ...state,
    pods: state.pods.map((p) => {
      const l = podLabels.get(`${p.meta.namespace}/${p.meta.name}`);
      return l ? { ...p, meta: { ...p.meta, labels: { ...p.meta.labels, ...l } } } : p;
    }),
    namespaces: state.namespaces.map((n) => {
      const l = nsLabels.get(n.meta.name);
      return l ? { ...n, meta: { ...n.meta, labels: { ...n.meta.labels, ...l } } } : n;
    }),
  };
}

function runStatic(scenario: ConformanceScenario): void {
  const base = load([]);
  const plan = planAddresses(base).clusters[0];
  assert.ok(plan);
  const ip = (pod: string) => plan.pods.find((p) => `${p.namespace}/${p.name}` === pod)?.ips[0] as string;
  const policies = new Map<string, PolicyManifest>();
  const podLabels = new Map<string, Record<string, string>>();
  const nsLabels = new Map<string, Record<string, string>>();
  for (const step of scenario.steps) {
    if (step.kind === "apply")
      for (const p of step.policies({ ip })) policies.set(`${p.metadata.namespace}/${p.metadata.name}`, p);
    else if (step.kind === "delete-policies") policies.clear();
    else if (step.kind === "label-pod") podLabels.set(step.pod, step.labels);
    else if (step.kind === "label-namespace") nsLabels.set(step.namespace, step.labels);
    else {
      const state = withLabels(load([...policies.values()]), podLabels, nsLabels);
      const index = buildPolicyIndex(policyWorld(state, plan));
      const matrix = computeReachability(index, [step.port], [step.protocol]);
      const wrong: string[] = [];
      for (const from of ALL_PODS) {
        for (const to of ALL_PODS) {
          const src = resolveEnd(index, from);
          const dst = resolveEnd(index, to);
          assert.ok(src && dst);
          const pair: boolean = evaluateConnection(index, src, dst, step.port, step.protocol).allowed;
          const fast = reaches(matrix, src.pod as number, dst.pod as number, step.port, step.protocol);
          assert.equal(fast, pair, `bitset matrix and evaluator differ on ${from} → ${to}`);
          // upstream ignores loopback (undefined semantics); podnet always allows it.
          if (from !== to && pair !== step.expected.get(from, to))
            wrong.push(`${from} → ${to}: expected ${step.expected.get(from, to)}, got ${pair}`);
        }
      }
      assert.deepEqual(wrong, [], `${step.port}/${step.protocol}`);
    }
  }
}

for (const scenario of conformanceScenarios()) test(`static: ${scenario.name}`, () => runStatic(scenario));
// SCTP cannot be probed here, but the static semantics apply to it as to any protocol.
for (const scenario of sctpScenarios()) test(`static: ${scenario.name}`, () => runStatic(scenario));
