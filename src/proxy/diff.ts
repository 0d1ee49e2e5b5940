/**
 * planProxyUpdate: the nft commands of ONE transaction that turn the proxy tables of `previous` into those
 * of `next` (both from planProxyRules for the same node). Pure. With the slot-map layout a change to one
 * Service is a few element commands; chains are rewritten only when their rules change (session affinity,
 * a new endpoint count) and a table is replaced only when it appears or goes.
 */
import type { Family } from "./endpoints.js";
import {
  baseChainLine,
  elementCommands,
  type NftChain,
  type NftElement,
  type NftSet,
  type NftTable,
  renderTable,
} from "./nft-model.js";
import type { ProxyEntry, ProxyRuleset } from "./plan.js";

/** A UDP flow conntrack may still send to an endpoint that is gone (kube-proxy deletes these entries). */
export interface StaleUdpFlow {
  family: Family;
  /** The Service address and port the client sent to. */
  address: string;
  port: number;
  /** The endpoint (`ip:port`, `[ip]:port` for IPv6) no longer behind it. */
  endpoint: string;
}

export interface ProxyUpdateSummary {
  tablesAdded: number;
  tablesDeleted: number;
  setsAdded: number;
  setsDeleted: number;
  chainsAdded: number;
  chainsDeleted: number;
  /** Chains whose rules were flushed and written again. */
  chainsRewritten: number;
  elementsAdded: number;
  elementsDeleted: number;
}

export interface ProxyUpdate {
  /** nft commands, in order; empty when nothing changed. */
  commands: string[];
  /** The commands as one `nft -f` input: ONE transaction. */
  text: string;
  summary: ProxyUpdateSummary;
  /** Run after the transaction: conntrack entries to delete (`conntrack -D -p udp --orig-dst … --reply-src …`). */
  staleUdp: StaleUdpFlow[];
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function sameBase(a: NftChain, b: NftChain): boolean {
  return (a.base ? baseChainLine(a.base) : "") === (b.base ? baseChainLine(b.base) : "");
}

function byName<T extends { name: string }>(items: readonly T[]): Map<string, T> {
  return new Map(items.map((i) => [i.name, i]));
}

/** Sets a chain's rules refer to (`@name`, including dynamic-set updates). */
function referencedSets(chain: NftChain): Set<string> {
  const out = new Set<string>();
  for (const r of chain.rules) for (const m of r.matchAll(/@([A-Za-z0-9_.-]+)/g)) out.add(m[1] as string);
  return out;
}

function sameElement(a: NftElement, b: NftElement): boolean {
  return a.key === b.key && a.value === b.value && a.comment === b.comment;
}

/**
 * Elements to delete and to add. Both lists come from the planner in the same order, so the common
 * prefix and suffix are skipped by comparing fields in place; only the window between them (a changed
 * Service's few elements) is compared by key. Keys are unique in a set, so a key inside the window
 * cannot also be in the other side's prefix or suffix.
 */
function elementDiff(prev: NftSet, next: NftSet): { added: NftElement[]; deleted: NftElement[] } {
  const p = prev.elements;
  const n = next.elements;
  let start = 0;
  const shorter = Math.min(p.length, n.length);
  while (start < shorter && sameElement(p[start] as NftElement, n[start] as NftElement)) start++;
  let endP = p.length;
  let endN = n.length;
  while (endP > start && endN > start && sameElement(p[endP - 1] as NftElement, n[endN - 1] as NftElement)) {
    endP--;
    endN--;
  }
  const before = new Map(p.slice(start, endP).map((e) => [e.key, e]));
  const after = new Map(n.slice(start, endN).map((e) => [e.key, e]));
  // A changed value or comment is a delete and an add of the same key, in the same transaction.
  const changed = (e: NftElement, other: Map<string, NftElement>) => {
    const o = other.get(e.key);
    return o === undefined || !sameElement(o, e);
  };
  return {
    deleted: [...before.values()].filter((e) => changed(e, after)),
    added: [...after.values()].filter((e) => changed(e, before)),
  };
}

function setDeclaration(verb: "add", t: NftTable, s: NftSet): string {
  return `${verb} ${s.kind} ${t.family} ${t.name} ${s.name} { ${s.spec.join("; ")}; }`;
}

function tableUpdate(prev: NftTable, next: NftTable, summary: ProxyUpdateSummary): string[] {
  const where = `${next.family} ${next.name}`;
  const prevSets = byName(prev.sets);
  const nextSets = byName(next.sets);
  const prevChains = byName(prev.chains);
  const nextChains = byName(next.chains);

  const setsGone = prev.sets.filter((s) => {
    const n = nextSets.get(s.name);
    return !n || n.kind !== s.kind || !sameList(n.spec, s.spec);
  });
  const goneSetNames = new Set(setsGone.map((s) => s.name));
  const setsNew = next.sets.filter((s) => !prevSets.has(s.name) || goneSetNames.has(s.name));
  const chainsGone = prev.chains.filter((c) => {
    const n = nextChains.get(c.name);
    return !n || !sameBase(c, n);
  });
  const goneChainNames = new Set(chainsGone.map((c) => c.name));
  const chainsNew = next.chains.filter((c) => !prevChains.has(c.name) || goneChainNames.has(c.name));
  // Kept chains rewritten: their rules changed, or they use a set that is replaced.
  const chainsRewritten = next.chains.filter((c) => {
    const p = prevChains.get(c.name);
    if (!p || goneChainNames.has(c.name)) return false;
    if (!sameList(p.rules, c.rules)) return true;
    for (const s of referencedSets(p)) if (goneSetNames.has(s)) return true;
    return false;
  });

  const commands: string[] = [];
  const adds: string[] = [];
  // 1. Elements leaving kept sets (this also drops their references to chains about to go).
  for (const s of next.sets) {
    const p = prevSets.get(s.name);
    if (!p || goneSetNames.has(s.name)) continue;
    const { added, deleted } = elementDiff(p, s);
    if (deleted.length > 0) commands.push(...elementCommands("delete", next, s.name, deleted));
    if (added.length > 0) adds.push(...elementCommands("add", next, s.name, added));
    summary.elementsDeleted += deleted.length;
    summary.elementsAdded += added.length;
  }
  // 2. Flush every chain that goes or is rewritten: its rules release the sets and chains they use.
  for (const c of [...chainsGone, ...chainsRewritten]) commands.push(`flush chain ${where} ${c.name}`);
  // 3. Then sets can go (their elements release chains), 4. then chains.
  for (const s of setsGone) commands.push(`delete ${s.kind} ${where} ${s.name}`);
  for (const c of chainsGone) commands.push(`delete chain ${where} ${c.name}`);
  // 5. New sets and chains, then rules, then elements (which may jump to the new chains).
  for (const s of setsNew) commands.push(setDeclaration("add", next, s));
  for (const c of chainsNew)
    commands.push(
      c.base ? `add chain ${where} ${c.name} { ${baseChainLine(c.base)} }` : `add chain ${where} ${c.name}`,
    );
  for (const c of [...chainsNew, ...chainsRewritten])
    for (const r of c.rules) commands.push(`add rule ${where} ${c.name} ${r}`);
  for (const s of setsNew) {
    if (s.elements.length > 0) commands.push(...elementCommands("add", next, s.name, s.elements));
    summary.elementsAdded += s.elements.length;
  }
  commands.push(...adds);

  summary.setsAdded += setsNew.length;
  summary.setsDeleted += setsGone.length;
  summary.chainsAdded += chainsNew.length;
  summary.chainsDeleted += chainsGone.length;
  summary.chainsRewritten += chainsRewritten.length;
  return commands;
}

function staleUdpFlows(previous: readonly ProxyEntry[], next: readonly ProxyEntry[]): StaleUdpFlow[] {
  const key = (e: ProxyEntry) => `${e.family}|${e.address}|${e.port}`;
  const now = new Map<string, Set<string>>();
  for (const e of next) {
    if (e.protocol !== "UDP") continue;
    now.set(key(e), new Set([...e.endpoints, ...(e.localEndpoints ?? [])]));
  }
  const out: StaleUdpFlow[] = [];
  for (const e of previous) {
    if (e.protocol !== "UDP") continue;
    const still = now.get(key(e));
    for (const endpoint of new Set([...e.endpoints, ...(e.localEndpoints ?? [])])) {
      if (!still?.has(endpoint)) out.push({ family: e.family, address: e.address, port: e.port, endpoint });
    }
  }
  return out;
}

/**
 * The `conntrack` arguments that delete one stale UDP flow: entries sent to the Service address and port
 * whose replies come from the endpoint that went away (kube-proxy's ClearEntriesForNAT). Without this a
 * UDP client that keeps its source port keeps talking to the dead endpoint until the entry times out.
 */
export function conntrackDeleteArgs(flow: StaleUdpFlow): string[] {
  const colon = flow.endpoint.lastIndexOf(":");
  const ip = flow.endpoint.slice(0, colon).replace(/^\[|\]$/g, "");
  const port = flow.endpoint.slice(colon + 1);
  return [
    "-D",
    "-f",
    flow.family === 6 ? "ipv6" : "ipv4",
    "-p",
    "udp",
    "--orig-dst",
    flow.address,
    "--orig-port-dst",
    String(flow.port),
    "--reply-src",
    ip,
    "--reply-port-src",
    port,
  ];
}

function emptySummary(): ProxyUpdateSummary {
  return {
    tablesAdded: 0,
    tablesDeleted: 0,
    setsAdded: 0,
    setsDeleted: 0,
    chainsAdded: 0,
    chainsDeleted: 0,
    chainsRewritten: 0,
    elementsAdded: 0,
    elementsDeleted: 0,
  };
}

/**
 * The transaction of an incremental re-plan (ProxyPlanner): the same commands planProxyUpdate would give
 * for the whole tables, from the part of each table the change touched. `previous` and `next` of a pair
 * hold, for one family's table, only what the changed Services touched as it was before and after: their
 * elements (with the declarations of their sets), and the shared or sticky chains and sets whose presence
 * or rules may have changed. Everything else is the same on both sides, so it adds no command. Entries are
 * the changed Services' (for the UDP conntrack cleanup).
 */
export function planFragmentUpdate(
  pairs: readonly { previous: NftTable; next: NftTable }[],
  previousEntries: readonly ProxyEntry[],
  nextEntries: readonly ProxyEntry[],
): ProxyUpdate {
  const summary = emptySummary();
  const commands: string[] = [];
  for (const { previous, next } of pairs) commands.push(...tableUpdate(previous, next, summary));
  return {
    commands,
    text: commands.length > 0 ? `${commands.join("\n")}\n` : "",
    summary,
    staleUdp: staleUdpFlows(previousEntries, nextEntries),
  };
}

/** The ONE transaction that turns `previous` into `next`; see the module comment. */
export function planProxyUpdate(previous: ProxyRuleset, next: ProxyRuleset): ProxyUpdate {
  const summary = emptySummary();
  const id = (t: NftTable) => `${t.family} ${t.name}`;
  const before = new Map(previous.tables.map((t) => [id(t), t]));
  const after = new Map(next.tables.map((t) => [id(t), t]));
  const commands: string[] = [];
  for (const t of previous.tables) {
    if (after.has(id(t))) continue;
    commands.push(`delete table ${id(t)}`);
    summary.tablesDeleted++;
  }
  for (const t of next.tables) {
    const p = before.get(id(t));
    if (p) {
      commands.push(...tableUpdate(p, t, summary));
      continue;
    }
    commands.push(
      ...renderTable(t)
        .trimEnd()
        .split(/\n(?=add element )/),
    );
    summary.tablesAdded++;
    summary.elementsAdded += t.sets.reduce((n, s) => n + s.elements.length, 0);
  }
  return {
    commands,
    text: commands.length > 0 ? `${commands.join("\n")}\n` : "",
    summary,
    staleUdp: staleUdpFlows(previous.entries, next.entries),
  };
}
