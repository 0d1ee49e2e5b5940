/**
 * From the ruleset applied to the one wanted: the commands of ONE nft transaction that change only what
 * differs. Set and map elements are added and deleted one by one; a chain whose rules changed is flushed
 * and refilled (policy chains: one policy's rules; group chains are named by their content, so they are
 * only ever added or deleted). Pure.
 */
import { elementLines, type PolicyChainDef, type PolicyRuleset, setDeclaration } from "./plan.js";

export interface PolicyUpdate {
  /** nft commands, one transaction; empty when nothing changed. */
  text: string;
  summary: {
    setsAdded: number;
    setsRemoved: number;
    elementsAdded: number;
    elementsRemoved: number;
    chainsAdded: number;
    chainsRemoved: number;
    chainsRefilled: number;
  };
}

function sameRules(a: PolicyChainDef, b: PolicyChainDef): boolean {
  return a.base === b.base && a.rules.length === b.rules.length && a.rules.every((r, i) => r === b.rules[i]);
}

/** Elements of `a` not in `b` (both sorted by the planner, but a Set keeps this order-independent). */
function minus(a: readonly string[], b: readonly string[]): string[] {
  const bs = new Set(b);
  return a.filter((x) => !bs.has(x));
}

export function planPolicyUpdate(previous: PolicyRuleset, next: PolicyRuleset): PolicyUpdate {
  const t = `inet ${next.table}`;
  const oldSets = new Map(previous.sets.map((s) => [s.name, s]));
  const newSets = new Map(next.sets.map((s) => [s.name, s]));
  const oldChains = new Map(previous.chains.map((c) => [c.name, c]));
  const newChains = new Map(next.chains.map((c) => [c.name, c]));
  const summary: PolicyUpdate["summary"] = {
    setsAdded: 0,
    setsRemoved: 0,
    elementsAdded: 0,
    elementsRemoved: 0,
    chainsAdded: 0,
    chainsRemoved: 0,
    chainsRefilled: 0,
  };
  const declare: string[] = [];
  const addElements: string[] = [];
  const refill: string[] = [];
  const mapChanges: string[] = [];
  const deleteElements: string[] = [];
  const flushRemoved: string[] = [];
  const deleteRemoved: string[] = [];

  // A set's name fixes its declaration (the planner derives names from kind and content), so a set
  // present on both sides only changes in its elements.
  for (const s of next.sets) {
    const old = oldSets.get(s.name);
    const target = s.kind === "map" ? mapChanges : addElements;
    if (!old) {
      declare.push(setDeclaration(t, s));
      summary.setsAdded++;
      summary.elementsAdded += s.elements.length;
      target.push(...elementLines("add", t, s.name, s.elements));
      continue;
    }
    const removed = minus(old.elements, s.elements);
    const added = minus(s.elements, old.elements);
    summary.elementsAdded += added.length;
    summary.elementsRemoved += removed.length;
    if (s.kind === "map") {
      // A key whose verdict changed: delete then add, in that order, in the same transaction.
      mapChanges.push(
        ...elementLines("delete", t, s.name, removed),
        ...elementLines("add", t, s.name, added),
      );
    } else {
      addElements.push(...elementLines("add", t, s.name, added));
      deleteElements.push(...elementLines("delete", t, s.name, removed));
    }
  }
  for (const c of next.chains) {
    const old = oldChains.get(c.name);
    if (old && sameRules(old, c)) continue;
    if (!old) {
      declare.push(c.base ? `add chain ${t} ${c.name} { ${c.base} }` : `add chain ${t} ${c.name}`);
      summary.chainsAdded++;
    } else {
      refill.push(`flush chain ${t} ${c.name}`);
      summary.chainsRefilled++;
    }
    for (const r of c.rules) refill.push(`add rule ${t} ${c.name} ${r}`);
  }
  for (const c of previous.chains) {
    if (newChains.has(c.name)) continue;
    flushRemoved.push(`flush chain ${t} ${c.name}`);
    deleteRemoved.push(`delete chain ${t} ${c.name}`);
    summary.chainsRemoved++;
  }
  for (const s of previous.sets) {
    if (newSets.has(s.name)) continue;
    deleteRemoved.push(`delete ${s.kind} ${t} ${s.name}`);
    summary.setsRemoved++;
  }
  const commands = [
    ...declare,
    ...addElements,
    ...refill,
    ...mapChanges,
    ...deleteElements,
    ...flushRemoved,
    ...deleteRemoved,
  ];
  return { text: commands.length ? `${commands.join("\n")}\n` : "", summary };
}
