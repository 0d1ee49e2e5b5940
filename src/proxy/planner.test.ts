/**
 * ProxyPlanner's incremental path against the reference: seeded random sequences of changes (Services
 * added and removed, endpoints, ports, protocols, affinity, traffic policies, NodePorts, load-balancer and
 * external IPs, source ranges, hostPorts, order, re-read inputs). After every step the planner's ruleset
 * must equal planProxyRules of the same input, its transaction must be planProxyUpdate's (the same
 * commands, element by element), and applying it to the previous tables (a small nft model that also
 * checks what the kernel would refuse: deleting a chain still used, a rule using a missing set…) must
 * give the next tables.
 */
import assert from "node:assert/strict";
import test from "node:test";
import { planProxyUpdate } from "./diff.js";
import { baseChainLine, elementText, type NftTable } from "./nft-model.js";
import { ProxyPlanner, planProxyRules } from "./plan.js";
import { random, type ServiceModel, World } from "./random-world.js";

// ---- a small model of nft: the tables as data, and the commands of a transaction applied to them ----------

interface ModelTable {
  sets: Map<string, { kind: string; spec: string; elements: Map<string, string> }>;
  chains: Map<string, { base: string; rules: string[] }>;
}

function modelOf(tables: readonly NftTable[]): Map<string, ModelTable> {
  const out = new Map<string, ModelTable>();
  for (const t of tables) {
    const m: ModelTable = { sets: new Map(), chains: new Map() };
    for (const s of t.sets)
      m.sets.set(s.name, {
        kind: s.kind,
        spec: s.spec.join("; "),
        elements: new Map(s.elements.map((e) => [e.key, elementText(e)])),
      });
    for (const c of t.chains)
      m.chains.set(c.name, { base: c.base ? baseChainLine(c.base) : "", rules: [...c.rules] });
    out.set(`${t.family} ${t.name}`, m);
  }
  return out;
}

function plain(model: Map<string, ModelTable>): unknown {
  return [...model]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, m]) => ({
      name,
      sets: [...m.sets]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([n, s]) => ({ n, kind: s.kind, spec: s.spec, elements: [...s.elements.values()].sort() })),
      chains: [...m.chains].sort(([a], [b]) => (a < b ? -1 : 1)),
    }));
}

/** The items of `{ a, b comment "x, y" : c }`, split at commas outside quotes. */
function items(body: string): string[] {
  const out: string[] = [];
  let quoted = false;
  let current = "";
  for (const ch of body) {
    if (ch === '"') quoted = !quoted;
    if (ch === "," && !quoted) {
      out.push(current.trim());
      current = "";
    } else current += ch;
  }
  if (current.trim()) out.push(current.trim());
  return out;
}

const keyOf = (item: string) => item.replace(/ comment ".*$/, "").replace(/ : .*$/, "");

/** Applies one transaction's commands; throws where nft or the kernel would refuse. */
function applyCommands(model: Map<string, ModelTable>, commands: readonly string[]): void {
  const usesChain = (t: ModelTable, name: string) =>
    [...t.chains.values()].some((c) => c.rules.some((r) => new RegExp(`(jump|goto) ${name}( |$)`).test(r))) ||
    [...t.sets.values()].some((s) => [...s.elements.values()].some((e) => e.endsWith(`: goto ${name}`)));
  const usesSet = (t: ModelTable, name: string) =>
    [...t.chains.values()].some((c) => c.rules.some((r) => new RegExp(`@${name}( |$)`).test(r)));
  for (const cmd of commands) {
    const m =
      /^(add|delete|flush) (element|set|map|chain|rule|table) (ip6?) (\S+)(?: (\S+))?(?: (.*))?$/.exec(cmd);
    assert.ok(m, `unparsed command: ${cmd}`);
    const [, verb, what, family, table, name = "", rest = ""] = m;
    const t = model.get(`${family} ${table}`);
    assert.ok(t, `no table ${family} ${table}: ${cmd}`);
    if (what === "element") {
      const set = t.sets.get(name);
      assert.ok(set, `no set ${name}: ${cmd}`);
      const body = /^\{ (.*) \}$/.exec(rest)?.[1] ?? "";
      for (const item of items(body)) {
        const key = keyOf(item);
        if (verb === "delete") {
          assert.ok(set.elements.has(key), `deleting a missing element ${key}: ${cmd}`);
          set.elements.delete(key);
        } else {
          assert.ok(!set.elements.has(key), `adding an element twice ${key}: ${cmd}`);
          const jump = / : goto (\S+)$/.exec(item)?.[1];
          if (jump) assert.ok(t.chains.has(jump), `element jumps to a missing chain ${jump}: ${cmd}`);
          set.elements.set(key, item);
        }
      }
    } else if (what === "set" || what === "map") {
      if (verb === "delete") {
        assert.ok(t.sets.has(name), `deleting a missing set: ${cmd}`);
        assert.ok(!usesSet(t, name), `deleting a set still used: ${cmd}`);
        t.sets.delete(name);
      } else {
        assert.ok(!t.sets.has(name), `adding a set twice: ${cmd}`);
        const spec = /^\{ (.*); \}$/.exec(rest)?.[1] ?? "";
        t.sets.set(name, { kind: what, spec, elements: new Map() });
      }
    } else if (what === "chain") {
      if (verb === "flush") {
        assert.ok(t.chains.has(name), `flushing a missing chain: ${cmd}`);
        (t.chains.get(name) as { rules: string[] }).rules = [];
      } else if (verb === "delete") {
        assert.deepEqual(t.chains.get(name)?.rules, [], `deleting a chain not flushed: ${cmd}`);
        assert.ok(!usesChain(t, name), `deleting a chain still used: ${cmd}`);
        t.chains.delete(name);
      } else {
        assert.ok(!t.chains.has(name), `adding a chain twice: ${cmd}`);
        t.chains.set(name, { base: /^\{ (.*) \}$/.exec(rest)?.[1] ?? "", rules: [] });
      }
    } else if (what === "rule") {
      const chain = t.chains.get(name);
      assert.ok(chain, `rule into a missing chain: ${cmd}`);
      for (const [, set] of rest.matchAll(/@([A-Za-z0-9_.-]+)/g))
        assert.ok(t.sets.has(set as string), `rule uses a missing set ${set}: ${cmd}`);
      for (const [, target] of rest.matchAll(/(?:jump|goto) (\S+)/g))
        assert.ok(t.chains.has(target as string), `rule jumps to a missing chain ${target}: ${cmd}`);
      chain.rules.push(rest);
    } else assert.fail(`a table command in an incremental update: ${cmd}`);
  }
}

/** Element commands one element each, everything sorted: the same transaction whatever the grouping. */
function normalized(commands: readonly string[]): string[] {
  const out: string[] = [];
  for (const c of commands) {
    const m = /^((?:add|delete) element \S+ \S+ \S+) \{ (.*) \}$/.exec(c);
    if (m)
      for (const item of items(m[2] as string))
        out.push(`${m[1]} ${c.startsWith("delete") ? keyOf(item) : item}`);
    else out.push(c);
  }
  return out.sort();
}

function run(seed: number, steps: number): { incremental: number; full: number } {
  const world = new World(random(seed));
  for (let i = 0; i < 6; i++) world.services.push(world.newService());
  const planner = new ProxyPlanner();
  let input = world.input();
  planner.change(input);
  let fresh = planProxyRules(input);
  const paths = { incremental: 0, full: 0 };
  for (let step = 0; step < steps; step++) {
    let what = world.mutate();
    if (world.chance(0.05)) what += `, then ${world.mutate()}`;
    input = world.input();
    if (world.chance(0.05)) {
      input = structuredClone(input); // re-read: equal contents in new objects
      what += ", re-read";
    }
    const where = `seed ${seed} step ${step} (${what})`;
    const change = planner.change(input);
    paths[planner.lastPath]++;
    const next = planProxyRules(input);
    assert.equal(change.ruleset.text, next.text, `ruleset, ${where}`);
    assert.deepEqual(change.ruleset.entries, next.entries, `entries, ${where}`);
    assert.deepEqual(change.ruleset.diagnostics, next.diagnostics, `diagnostics, ${where}`);
    const reference = planProxyUpdate(fresh, next);
    const update = change.update;
    assert.ok(update, where);
    assert.deepEqual(normalized(update.commands), normalized(reference.commands), `commands, ${where}`);
    assert.deepEqual(update.summary, reference.summary, `summary, ${where}`);
    assert.deepEqual(
      new Set(update.staleUdp.map((f) => JSON.stringify(f))),
      new Set(reference.staleUdp.map((f) => JSON.stringify(f))),
      `stale UDP flows, ${where}`,
    );
    if (planner.lastPath === "incremental") {
      const model = modelOf(fresh.tables);
      applyCommands(model, update.commands);
      assert.deepEqual(plain(model), plain(modelOf(next.tables)), `applied transaction, ${where}`);
    }
    fresh = next;
  }
  return paths;
}

test("ProxyPlanner: random changes applied one by one equal a fresh plan, and so does their transaction", () => {
  for (const seed of [1, 2, 3]) {
    const paths = run(seed, 150);
    // Most steps must take the incremental path, or this test would only check the full one.
    assert.ok(paths.incremental > paths.full * 2, `seed ${seed}: ${JSON.stringify(paths)}`);
  }
});

test("ProxyPlanner: a change among many plans one Service and touches only its elements", () => {
  const world = new World(random(7));
  for (let i = 0; i < 200; i++) world.services.push(world.newService());
  const planner = new ProxyPlanner();
  planner.change(world.input());
  const s = world.services[100] as ServiceModel;
  world.addEndpoint(s);
  world.services[100] = { ...s }; // a new model object: its input objects are built afresh
  const change = planner.change(world.input());
  assert.equal(planner.lastPath, "incremental");
  assert.deepEqual(planner.lastRun, { replayed: planner.lastRun.replayed, planned: 1 });
  assert.ok((change.update?.commands.length ?? 0) > 0);
  const its = new RegExp(
    `${s.name}|10\\.96\\.0\\.${s.id}(?![0-9])|fd00:96::${s.id}(?![0-9a-f])|endpoints-|hairpin`,
  );
  for (const c of change.update?.commands ?? []) assert.match(c, its);
});

test("ProxyPlanner: the first plan and a change of node take the full path", () => {
  const world = new World(random(9));
  for (let i = 0; i < 5; i++) world.services.push(world.newService());
  const planner = new ProxyPlanner();
  const first = planner.change(world.input());
  assert.equal(planner.lastPath, "full");
  assert.equal(first.update, undefined);
  const moved = { ...world.input(), node: { name: "node-2", addresses: ["172.18.0.3"] } };
  const change = planner.change(moved);
  assert.equal(planner.lastPath, "full");
  assert.equal(change.ruleset.text, planProxyRules(moved).text);
  assert.equal(change.previous, first.ruleset);
});

test("ProxyPlanner: a Service twice in the input is left to the full path, which orders them as planProxyRules", () => {
  const world = new World(random(5));
  for (let i = 0; i < 5; i++) world.services.push(world.newService());
  const planner = new ProxyPlanner();
  const input = world.input();
  planner.change(input);
  const twice = {
    ...input,
    services: [...input.services, input.services[2] as (typeof input.services)[number]],
  };
  const change = planner.change(twice);
  assert.equal(planner.lastPath, "full");
  assert.equal(change.ruleset.text, planProxyRules(twice).text);
  assert.deepEqual(change.ruleset.diagnostics, planProxyRules(twice).diagnostics);
  // And back: the duplicate goes, the planner returns to the incremental path afterwards.
  planner.change(input);
  const again = planner.change(world.input());
  assert.equal(again.ruleset.text, planProxyRules(input).text);
  assert.equal(planner.lastPath, "incremental");
});
