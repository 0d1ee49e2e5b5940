// Incremental planning of label changes must give exactly what planning from scratch gives.
import assert from "node:assert/strict";
import { test } from "node:test";
import { planPolicyUpdate } from "./diff.js";
import { buildPolicyIndex } from "./model.js";
import { PolicyPlanner } from "./plan.js";
import { PolicyReconciler } from "./reconcile.js";
import { syntheticWorld, withPodLabels } from "./synthetic.js";

const size = { pods: 120, nodes: 4, namespaces: 5, policies: 40 };
const nodes = Array.from({ length: size.nodes }, (_, i) => `node-${i}`);

test("label changes: incremental = from scratch, on every node, change after change", () => {
  const reconciler = new PolicyReconciler();
  let world = syntheticWorld(size);
  assert.equal(reconciler.plan(world, nodes).mode, "full");
  assert.equal(reconciler.plan(syntheticWorld(size), nodes).mode, "unchanged");
  const changes: [string, Record<string, string>][] = [
    ["ns-1/p-1", { app: "app-2", tier: "web" }], // becomes a peer of other rules and selected by others
    ["ns-2/p-7", { app: "app-3", tier: "cache" }],
    ["ns-0/p-0", {}], // selected by nothing but the podSelector {} policies
    ["ns-1/p-1", { app: "app-7", tier: "web" }],
  ];
  let touchedNodes = 0;
  for (const [pod, labels] of changes) {
    world = withPodLabels(world, pod, labels);
    const result = reconciler.plan(structuredClone(world), nodes);
    assert.equal(result.mode, "labels", pod);
    touchedNodes += result.changed.size;
    const fresh = new PolicyPlanner(buildPolicyIndex(structuredClone(world)));
    for (const node of nodes) {
      const expected = fresh.planNode(node);
      const got = reconciler.rulesets.get(node);
      assert.ok(got);
      assert.equal(planPolicyUpdate(got, expected).text, "", `${pod} on ${node}`);
      assert.deepEqual(got, expected);
    }
  }
  assert.ok(touchedNodes > 0);
});

test("a policy change plans from scratch", () => {
  const reconciler = new PolicyReconciler();
  const world = syntheticWorld(size);
  reconciler.plan(world, nodes);
  const fewer = { ...world, policies: world.policies.slice(1) };
  assert.equal(reconciler.plan(fewer, nodes).mode, "full");
});
