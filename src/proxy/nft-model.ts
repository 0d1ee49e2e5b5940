/**
 * nftables tables as plain data (what the proxy planner produces and the diff compares) and their text
 * in nft syntax. Elements are kept apart from set declarations so that a change is element-sized.
 */

export type NftFamily = "ip" | "ip6";

export interface NftElement {
  /** The key as nft writes it, e.g. `10.96.0.10 . udp . 53`. */
  key: string;
  /** Maps only: the value, e.g. `goto endpoints-2` or `10.244.1.3 . 53`. */
  value?: string;
  /** Shown by `nft list` beside the element: which Service it is for. */
  comment?: string;
}

export interface NftSet {
  name: string;
  kind: "set" | "map";
  /** The declaration lines, e.g. `type ipv4_addr . inet_proto . inet_service : verdict`, `flags interval`. */
  spec: string[];
  /** Static elements; dynamic sets (session affinity) have none and are never diffed by element. */
  elements: NftElement[];
}

export interface NftBaseChain {
  type: "filter" | "nat";
  hook: "prerouting" | "input" | "forward" | "output" | "postrouting";
  /** A number: nft 1.0.6 rejects some named priorities (e.g. `dstnat` on output). */
  priority: number;
}

export interface NftChain {
  name: string;
  base?: NftBaseChain;
  rules: string[];
}

export interface NftTable {
  family: NftFamily;
  name: string;
  sets: NftSet[];
  chains: NftChain[];
}

/** nft quotes strings with double quotes and has no escape for them. */
export function nftComment(text: string): string {
  return `"${text.replace(/["\\\n\r]/g, "_")}"`;
}

export function elementText(e: NftElement): string {
  const comment = e.comment !== undefined ? ` comment ${nftComment(e.comment)}` : "";
  return e.value !== undefined ? `${e.key}${comment} : ${e.value}` : `${e.key}${comment}`;
}

export function elementKeyText(e: NftElement): string {
  return e.key;
}

export function baseChainLine(b: NftBaseChain): string {
  return `type ${b.type} hook ${b.hook} priority ${b.priority}; policy accept;`;
}

/** Largest number of elements in one `elements = {…}` or `add element` command. */
export const ELEMENTS_PER_COMMAND = 5000;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * The table in nft syntax: declarations, chains and rules in one `table` block, then the elements as
 * `add element` commands of at most ELEMENTS_PER_COMMAND each (a command of thousands of range elements
 * with data failed with ENOBUFS here). Applied with `nft -f`, all of it is ONE transaction.
 */
export function renderTable(t: NftTable): string {
  const lines = tableBlock(t, () => []);
  for (const s of t.sets) lines.push(...elementCommands("add", t, s.name, s.elements));
  return `${lines.join("\n")}\n`;
}

/** The `table` block: sets (with `inside(set)` after their spec) and chains. */
function tableBlock(t: NftTable, inside: (s: NftSet) => string[]): string[] {
  const lines = [`table ${t.family} ${t.name} {`];
  for (const s of t.sets) {
    lines.push(`  ${s.kind} ${s.name} {`);
    for (const l of s.spec) lines.push(`    ${l}`);
    lines.push(...inside(s));
    lines.push("  }");
  }
  for (const c of t.chains) {
    lines.push(`  chain ${c.name} {`);
    if (c.base) lines.push(`    ${baseChainLine(c.base)}`);
    for (const r of c.rules) lines.push(`    ${r}`);
    lines.push("  }");
  }
  lines.push("}");
  return lines;
}

/** `add|delete element FAMILY TABLE SET { … }` commands for `elements` (keys only for delete). */
export function elementCommands(
  verb: "add" | "delete",
  t: { family: NftFamily; name: string },
  set: string,
  elements: readonly NftElement[],
): string[] {
  const text = verb === "add" ? elementText : elementKeyText;
  return chunks(elements, ELEMENTS_PER_COMMAND).map(
    (c) => `${verb} element ${t.family} ${t.name} ${set} { ${c.map(text).join(", ")} }`,
  );
}

/** The table as it reads best for a person: elements inside their sets, one per line. */
export function describeTable(t: NftTable): string {
  const lines = tableBlock(t, (s) =>
    s.elements.length === 0
      ? []
      : [
          "    elements = {",
          ...s.elements.map((e, i) => `      ${elementText(e)}${i < s.elements.length - 1 ? "," : ""}`),
          "    }",
        ],
  );
  return `${lines.join("\n")}\n`;
}
