/**
 * NetworkPolicy figures (issue 6), on a synthetic cluster (src/policy/synthetic.ts: pods with a few label
 * values over namespaces and nodes; policies mixing pod, namespace and ipBlock peers, numeric, ranged and
 * named ports, ingress and egress):
 *
 *   (a) apply 1,000 policies over 5,000 pods on 50 nodes: plan every node, then load each node's table
 *       with `nft -f` into 50 network namespaces of our own (as the lab's node agent does: two spawning
 *       threads, posix_spawn inside the namespace)                                   target ≤ 5 s
 *   (b) one pod's labels change at that scale: re-plan (incremental) + diff + one transaction on every
 *       node whose table changed, median of 5                                         target ≤ 200 ms
 *   (c) the static matrix for 10,000 pods and 1,000 policies (index + bitset matrix)  target ≤ 2 s
 *
 *   npm run bench:policy       (root; about a minute)
 *
 * Every namespace carries one random prefix (pnpol<hex>-*) and is deleted in `finally`, also on SIGINT and
 * SIGTERM. No traffic is sent: the figures are the planner's and the kernel's.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpus, release } from "node:os";
import { useAsyncSpawner } from "../src/linux/exec.js";
import { useNetnsSwitcher } from "../src/linux/netns-context.js";
import { withNetns } from "../src/linux/netns-native.js";
import { nftApply, nftJson } from "../src/linux/nft.js";
import { SpawnPool } from "../src/linux/spawn-pool.js";
import { planPolicyUpdate } from "../src/policy/diff.js";
import { computeReachability } from "../src/policy/matrix.js";
import { buildPolicyIndex, type PolicyWorld } from "../src/policy/model.js";
import { type PolicyRuleset, policySyncScript } from "../src/policy/plan.js";
import { PolicyReconciler } from "../src/policy/reconcile.js";
import { syntheticWorld, withPodLabels } from "../src/policy/synthetic.js";
import { ip, percentile, table } from "./support.js";

const PREFIX = `pnpol${randomBytes(3).toString("hex")}`;
const NODES = 50;
const nodeNames = Array.from({ length: NODES }, (_, i) => `node-${i}`);
const netnsOf = (node: string) => `${PREFIX}-${node}`;
const created: string[] = [];

const ms = (v: number) => `${v.toFixed(0)} ms`;
const s = (v: number) => `${(v / 1000).toFixed(2)} s`;

function cleanup(): void {
  if (created.length === 0) return;
  ip(["-batch", "-"], `${created.map((n) => `netns del ${n}`).join("\n")}\n`);
  created.length = 0;
}
for (const sig of ["SIGINT", "SIGTERM"] as const)
  process.on(sig, () => {
    cleanup();
    process.exit(130);
  });

function nftVersion(): string {
  try {
    return `, ${execFileSync("nft", ["--version"], { encoding: "utf8" }).trim()}`;
  } catch {
    return "";
  }
}

/** Applies each changed node's table (a diff of the applied one, or the whole table), 2 spawning threads. */
async function applyAll(
  applied: Map<string, PolicyRuleset>,
  changed: Map<string, PolicyRuleset>,
): Promise<number> {
  let commands = 0;
  await Promise.all(
    [...changed].map(async ([node, next]) => {
      const previous = applied.get(node);
      const text = previous ? planPolicyUpdate(previous, next).text : policySyncScript(next);
      if (!text) return;
      commands += text.split("\n").length - 1;
      await nftApply(text, { netns: `/run/netns/${netnsOf(node)}` });
      applied.set(node, next);
    }),
  );
  return commands;
}

async function staticMatrix(): Promise<string[][]> {
  const world = syntheticWorld({ pods: 10_000, nodes: 100, namespaces: 50, policies: 1000 });
  const rows: string[][] = [];
  const runs: { index: number; matrix: number }[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const index = buildPolicyIndex(structuredClone(world));
    const t1 = performance.now();
    computeReachability(index, [80], ["TCP"]);
    runs.push({ index: t1 - t0, matrix: performance.now() - t1 });
  }
  const total = runs.map((r) => r.index + r.matrix);
  rows.push([
    "static matrix 10,000 pods × 1,000 policies, 80/TCP (index + matrix)",
    `${s(total[0] as number)} first, ${s(percentile(total, 50))} median of 3`,
    "≤ 2 s",
  ]);
  rows.push([
    "  of which index / bitset matrix (median)",
    `${ms(
      percentile(
        runs.map((r) => r.index),
        50,
      ),
    )} / ${ms(
      percentile(
        runs.map((r) => r.matrix),
        50,
      ),
    )}`,
    "",
  ]);
  const t = performance.now();
  computeReachability(buildPolicyIndex(structuredClone(world)), [80, 81], ["TCP", "UDP"]);
  rows.push(["  4 port/protocol pairs (400 M verdicts)", s(performance.now() - t), ""]);
  return rows;
}

async function main(): Promise<void> {
  useNetnsSwitcher(withNetns);
  const pool = new SpawnPool(2);
  useAsyncSpawner((req) => pool.run(req));
  const rows: string[][] = [];
  try {
    rows.push(...(await staticMatrix()));

    // (a) apply
    let world: PolicyWorld = syntheticWorld({ pods: 5000, nodes: NODES, namespaces: 50, policies: 1000 });
    ip(["-batch", "-"], `${nodeNames.map((n) => `netns add ${netnsOf(n)}`).join("\n")}\n`);
    created.push(...nodeNames.map(netnsOf));
    const reconciler = new PolicyReconciler();
    const applied = new Map<string, PolicyRuleset>();
    const t0 = performance.now();
    const planned = reconciler.plan(structuredClone(world), nodeNames);
    const t1 = performance.now();
    const commands = await applyAll(applied, planned.changed);
    const t2 = performance.now();
    let rules = 0;
    let sets = 0;
    let elements = 0;
    for (const r of planned.changed.values()) {
      rules += r.chains.reduce((a, c) => a + c.rules.length, 0);
      sets += r.sets.length;
      elements += r.sets.reduce((a, x) => a + x.elements.length, 0);
    }
    rows.push(["apply 1,000 policies, 5,000 pods, 50 nodes (plan + 50 × nft -f)", s(t2 - t0), "≤ 5 s"]);
    rows.push(["  of which plan (index + 50 nodes) / load", `${ms(t1 - t0)} / ${ms(t2 - t1)}`, ""]);
    rows.push([
      "  per node (mean): rules / sets / elements / commands",
      `${(rules / NODES).toFixed(0)} / ${(sets / NODES).toFixed(0)} / ${(elements / NODES).toFixed(0)} / ${(commands / NODES).toFixed(0)}`,
      "",
    ]);
    const listed = await nftJson(["list", "table", "inet", "podnet-policy"], {
      netns: `/run/netns/${netnsOf("node-0")}`,
    });
    const kernelRules = listed.filter((o) => o.rule).length;
    rows.push(["  node-0 as the kernel lists it: rules", String(kernelRules), ""]);

    // (b) one pod's labels, back and forth
    const samples: { pure: number; kernel: number; nodes: number; commands: number }[] = [];
    const pod = "ns-1/p-1";
    const original = world.pods.find((p) => p.key === pod)?.labels ?? {};
    for (let i = 0; i < 6; i++) {
      world = withPodLabels(world, pod, i % 2 === 0 ? { app: "app-11", tier: "db" } : original);
      const next = structuredClone(world);
      const a = performance.now();
      const result = reconciler.plan(next, nodeNames);
      const b = performance.now();
      const cmds = await applyAll(applied, result.changed);
      const c = performance.now();
      if (result.mode !== "labels") throw new Error(`expected an incremental plan, got ${result.mode}`);
      if (i > 0) samples.push({ pure: b - a, kernel: c - b, nodes: result.changed.size, commands: cmds });
    }
    const totals = samples.map((x) => x.pure + x.kernel);
    rows.push([
      "one pod's labels at that scale: plan + transactions (median of 5)",
      ms(percentile(totals, 50)),
      "≤ 200 ms",
    ]);
    rows.push([
      "  of which plan (incremental) / nft transactions",
      `${ms(
        percentile(
          samples.map((x) => x.pure),
          50,
        ),
      )} / ${ms(
        percentile(
          samples.map((x) => x.kernel),
          50,
        ),
      )}`,
      "",
    ]);
    rows.push([
      "  nodes changed / nft commands (median)",
      `${percentile(
        samples.map((x) => x.nodes),
        50,
      )} / ${percentile(
        samples.map((x) => x.commands),
        50,
      )}`,
      "",
    ]);

    // For comparison: a policy change (full re-plan, then diffs)
    const extra = structuredClone(world);
    const first = extra.policies[0];
    if (first) extra.policies.push({ ...first, meta: { ...first.meta, name: "pol-extra" } });
    const a = performance.now();
    const full = reconciler.plan(extra, nodeNames);
    const b = performance.now();
    const cmds = await applyAll(applied, full.changed);
    const c = performance.now();
    rows.push([
      "for comparison: +1 policy (full re-plan + diffs)",
      `${ms(c - a)} (plan ${ms(b - a)}, nft ${ms(c - b)}, ${cmds} commands)`,
      "",
    ]);
  } finally {
    cleanup();
  }
  const header = `NetworkPolicy — Linux ${release()}, ${cpus().length} CPUs${nftVersion()}`;
  process.stdout.write(`${header}\n${table(["", "measured", "target"], rows)}\n`);
  process.exit(0);
}

await main();
