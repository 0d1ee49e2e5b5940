// The nftables plan and its incremental updates, as data (the lab conformance test applies them for real).
import assert from "node:assert/strict";
import { test } from "node:test";
import { loadManifestSources } from "../api/index.js";
import type { DesiredState } from "../api/types.js";
import { planAddresses } from "../plan/index.js";
import type { ClusterPlan } from "../plan/types.js";
import { conformanceManifests, type PolicyManifest } from "./conformance.js";
import { planPolicyUpdate } from "./diff.js";
import { buildPolicyIndex, policyWorld } from "./model.js";
import { PolicyPlanner, type PolicyRuleset, policySyncScript, renderRuleset } from "./plan.js";

function load(policies: PolicyManifest[]): DesiredState {
  const text = [conformanceManifests(), ...policies.map((p) => JSON.stringify(p))].join("\n---\n");
  return loadManifestSources([{ file: "m.yaml", text }]).state;
}

const base = load([]);
const plan = planAddresses(base).clusters[0] as ClusterPlan;

function rulesets(state: DesiredState): Map<string, PolicyRuleset> {
  const planner = new PolicyPlanner(buildPolicyIndex(policyWorld(state, plan)));
  return new Map(plan.nodes.map((n) => [n.name, planner.planNode(n.name)]));
}

function np(name: string, namespace: string, spec: PolicyManifest["spec"]): PolicyManifest {
  return { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name, namespace }, spec };
}

const fromB = np("a-from-b", "x", {
  podSelector: { matchLabels: { pod: "a" } },
  ingress: [
    {
      from: [{ podSelector: { matchLabels: { pod: "b" } } }],
      ports: [{ port: "serve-80-tcp" }, { port: 81 }],
    },
  ],
});

function withPodLabels(state: DesiredState, key: string, labels: Record<string, string>): DesiredState {
  return {
    ...state,
    pods: state.pods.map((p) =>
      `${p.meta.namespace}/${p.meta.name}` === key ? { ...p, meta: { ...p.meta, labels } } : p,
    ),
  };
}

test("without policies: base chains only, nothing isolated", () => {
  const r = rulesets(base).get("n1") as PolicyRuleset;
  assert.deepEqual(
    r.chains.map((c) => c.name),
    ["egress-filter", "ingress-filter", "egress-input"],
  );
  assert.deepEqual(r.sets.find((s) => s.name === "ingress-groups4")?.elements, []);
  const text = renderRuleset(r);
  assert.match(
    text,
    /add chain inet podnet-policy egress-filter \{ type filter hook forward priority 0; policy accept; \}/,
  );
  assert.match(text, /add rule inet podnet-policy ingress-filter ct state established,related accept/);
});

test("an isolated pod: its node maps it to a group chain; the policy chain matches peers and ports by named sets", () => {
  const state = load([fromB]);
  const xa = plan.pods.find((p) => p.namespace === "x" && p.name === "a");
  const xb = plan.pods.find((p) => p.namespace === "x" && p.name === "b");
  assert.ok(xa && xb);
  const r = rulesets(state).get(xa.node) as PolicyRuleset;
  const groups = r.sets.find((s) => s.name === "ingress-groups4");
  assert.equal(groups?.elements.length, 1);
  assert.match(groups?.elements[0] ?? "", new RegExp(`^${xa.ips[0]} : jump in-[0-9a-f]{12}$`));
  const pol = r.chains.find((c) => c.name.startsWith("pol-") && c.name.endsWith("-in"));
  assert.ok(pol);
  assert.equal(pol.rules.length, 2, "one rule for the numeric port, one for the named port");
  for (const rule of pol.rules) {
    assert.match(rule, /^ip saddr @peers-[0-9a-f]{12}4 /);
    assert.match(rule, /accept comment "x\/a-from-b ingress\[0\]"$/);
    assert.doesNotMatch(rule, /\{/, "no anonymous set: each would be bound in the transaction");
  }
  const peers = r.sets.find((s) => s.name.startsWith("peers-"));
  assert.deepEqual(peers?.elements, [xb.ips[0]]);
  const named = r.sets.find((s) => s.name.startsWith("named-"));
  assert.deepEqual(named?.elements, [`${xa.ips[0]} . tcp . 80`]);
  const ports = r.sets.find((s) => s.name.startsWith("ports-"));
  assert.deepEqual(ports?.elements, ["tcp . 81"]);
  assert.equal(ports?.interval, true);
  // The other node has x/a's policy nowhere: no pod of it is selected there.
  const other = plan.nodes.find((n) => n.name !== xa.node)?.name as string;
  assert.equal(
    rulesets(state)
      .get(other)
      ?.chains.some((c) => c.name.startsWith("pol-")),
    false,
  );
});

test("a peer's label change is set elements only: no chain or rule is touched", () => {
  const before = load([fromB]);
  const after = withPodLabels(before, "x/c", { pod: "b" });
  const xa = plan.pods.find((p) => p.namespace === "x" && p.name === "a");
  const xc = plan.pods.find((p) => p.namespace === "x" && p.name === "c");
  assert.ok(xa && xc);
  const u = planPolicyUpdate(
    rulesets(before).get(xa.node) as PolicyRuleset,
    rulesets(after).get(xa.node) as PolicyRuleset,
  );
  assert.match(
    u.text,
    new RegExp(`^add element inet podnet-policy peers-[0-9a-f]{12}4 \\{ ${xc.ips[0]} \\}\\n$`),
  );
  assert.equal(u.summary.chainsRefilled + u.summary.chainsAdded + u.summary.chainsRemoved, 0);
});

test("a target's label change: a map element, and the group chain when it is new", () => {
  const before = load([fromB]);
  const after = withPodLabels(before, "x/c", { pod: "a" });
  const xc = plan.pods.find((p) => p.namespace === "x" && p.name === "c");
  assert.ok(xc);
  const prev = rulesets(before).get(xc.node) as PolicyRuleset;
  const next = rulesets(after).get(xc.node) as PolicyRuleset;
  const u = planPolicyUpdate(prev, next);
  assert.match(
    u.text,
    new RegExp(`add element inet podnet-policy ingress-groups4 \\{ ${xc.ips[0]} : jump in-`),
  );
  assert.equal(u.summary.chainsRefilled, 0);
  // Undo: back to the first ruleset, chains no longer used go.
  const back = planPolicyUpdate(next, prev);
  assert.match(
    back.text,
    new RegExp(`delete element inet podnet-policy ingress-groups4 \\{ ${xc.ips[0]} \\}`),
  );
  assert.deepEqual(planPolicyUpdate(prev, prev).text, "");
});

test("a policy update refills that policy's chain only; deleting it removes its chains and sets", () => {
  const v1 = load([fromB, np("other", "y", { podSelector: {}, ingress: [] })]);
  const changed = { ...fromB, spec: { ...fromB.spec, ingress: [{ ports: [{ port: 82 }] }] } };
  const v2 = load([changed, np("other", "y", { podSelector: {}, ingress: [] })]);
  const xa = plan.pods.find((p) => p.namespace === "x" && p.name === "a");
  assert.ok(xa);
  const r1 = rulesets(v1).get(xa.node) as PolicyRuleset;
  const r2 = rulesets(v2).get(xa.node) as PolicyRuleset;
  const u = planPolicyUpdate(r1, r2);
  const flushed = u.text.split("\n").filter((l) => l.startsWith("flush chain"));
  assert.equal(flushed.length, 1);
  assert.match(flushed[0] as string, /pol-[0-9a-f]{12}-in$/);
  const gone = planPolicyUpdate(
    r2,
    rulesets(load([np("other", "y", { podSelector: {}, ingress: [] })])).get(xa.node) as PolicyRuleset,
  );
  assert.match(gone.text, /delete chain inet podnet-policy pol-/);
  assert.match(gone.text, /delete set inet podnet-policy ports-/);
  // Deletes come after the flushes that drop the rules using them.
  const lines = gone.text.split("\n");
  assert.ok(
    lines.findIndex((l) => l.startsWith("delete chain")) >
      lines.length - 1 - [...lines].reverse().findIndex((l) => l.startsWith("flush chain")),
  );
});

test("the number of rules follows the policies, not the pods", () => {
  const many = np("a-from-b", "x", {
    podSelector: {},
    ingress: [{ from: [{ namespaceSelector: {} }], ports: [{ port: 80 }] }],
  });
  const r = rulesets(load([many]));
  for (const ruleset of r.values()) {
    const pol = ruleset.chains.filter((c) => c.name.startsWith("pol-"));
    assert.equal(pol.length, 1);
    assert.equal(pol[0]?.rules.length, 1);
  }
  assert.match(
    policySyncScript(r.get("n1") as PolicyRuleset),
    /^add table inet podnet-policy\ndelete table inet podnet-policy\n/,
  );
});
