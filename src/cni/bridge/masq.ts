// ipMasq: one nftables table per network in the node namespace, `table inet podnet-cni-<hash of network>`,
// with a nat postrouting chain holding one rule per pod address: traffic from the pod to anything outside
// the pod's subnet (and not multicast) is masqueraded. Rules carry a comment naming the attachment
// (`podnet:<hash of containerID/ifname>`) so DEL and GC find them without knowing the address. DEL removes
// the attachment's rules and the table when no rule is left. Changes to a table are serialised by a lock
// file so a DEL that empties the table never deletes a rule a concurrent ADD just added.
import { readlinkSync } from "node:fs";
import { type Cidr, formatCidr, formatIp, type IpAddress } from "../../ipam/cidr.js";
import { withLock } from "../../linux/lockfile.js";
import { NftError, type NftJsonObject, nftApply, nftJson, nftString } from "../../linux/nft.js";
import { sha256Hex } from "../../linux/sha256.js";

const FAMILY = "inet";
const CHAIN = "postrouting";
const LOCK_DIR = "/run/podnet-cni";

function hex(text: string, digits: number): string {
  return sha256Hex(text).slice(0, digits);
}

/** `podnet-cni-` + 8 hex digits of sha256(network name). */
export function masqTableName(network: string): string {
  return `podnet-cni-${hex(network, 8)}`;
}

/** The comment that marks an attachment's rules. */
export function attachmentTag(containerId: string, ifname: string): string {
  return `podnet:${hex(`${containerId}/${ifname}`, 16)}`;
}

export interface MasqAddress {
  ip: IpAddress;
  subnet: Cidr;
}

/** The nft script that adds an attachment's rules (creating the table and chain when missing). Pure. */
export function masqAddScript(table: string, tag: string, addresses: readonly MasqAddress[]): string {
  const lines = [
    `add table ${FAMILY} ${table}`,
    `add chain ${FAMILY} ${table} ${CHAIN} { type nat hook postrouting priority 100 ; policy accept ; }`,
  ];
  for (const a of addresses) {
    const proto = a.ip.family === 4 ? "ip" : "ip6";
    const multicast = a.ip.family === 4 ? "224.0.0.0/4" : "ff00::/8";
    lines.push(
      `add rule ${FAMILY} ${table} ${CHAIN} ${proto} saddr ${formatIp(a.ip)} ${proto} daddr != { ${formatCidr(a.subnet)}, ${multicast} } masquerade comment ${nftString(tag)}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

interface RuleRef {
  handle: number;
  comment?: string;
}

function rulesOf(objects: NftJsonObject[]): RuleRef[] {
  const rules: RuleRef[] = [];
  for (const o of objects) {
    const r = o.rule;
    if (!r || typeof r.handle !== "number") continue;
    rules.push({ handle: r.handle, ...(typeof r.comment === "string" ? { comment: r.comment } : {}) });
  }
  return rules;
}

/**
 * The nft script that deletes `remove` (rule handles) and, when nothing else would be left in the chain,
 * the chain and the table. Pure.
 */
export function masqRemoveScript(
  table: string,
  rules: readonly RuleRef[],
  remove: (r: RuleRef) => boolean,
): string {
  const gone = rules.filter(remove);
  if (gone.length === 0) return "";
  if (gone.length === rules.length) return `delete table ${FAMILY} ${table}\n`;
  return gone.map((r) => `delete rule ${FAMILY} ${table} ${CHAIN} handle ${r.handle}\n`).join("");
}

function lockPath(table: string): string {
  // Lab nodes share the file system but not the network namespace: the lock is per namespace.
  let ns = "net";
  try {
    ns = readlinkSync("/proc/self/ns/net").replace(/\D/g, "");
  } catch {
    // Without /proc the lock is per table only.
  }
  return `${LOCK_DIR}/${ns}-${table}.lock`;
}

async function listRules(table: string): Promise<RuleRef[] | undefined> {
  try {
    return rulesOf(await nftJson(["-a", "list", "chain", FAMILY, table, CHAIN]));
  } catch (e) {
    if (e instanceof NftError && e.notFound) return undefined;
    throw e;
  }
}

/** Adds the attachment's masquerade rules in this (the node's) network namespace. */
export async function masqAdd(
  network: string,
  tag: string,
  addresses: readonly MasqAddress[],
): Promise<void> {
  if (addresses.length === 0) return;
  const table = masqTableName(network);
  await withLock(lockPath(table), () => nftApply(masqAddScript(table, tag, addresses)));
}

/** Removes rules chosen by `remove` (and the table when it would be empty); returns how many. */
async function removeRules(network: string, remove: (r: RuleRef) => boolean): Promise<number> {
  const table = masqTableName(network);
  return withLock(lockPath(table), async () => {
    const rules = await listRules(table);
    if (rules === undefined) return 0;
    const script = masqRemoveScript(table, rules, remove);
    if (script) await nftApply(script);
    return rules.filter(remove).length;
  });
}

/** Removes the attachment's rules; no error when there are none or the table is gone. */
export function masqRemove(network: string, tag: string): Promise<number> {
  return removeRules(network, (r) => r.comment === tag);
}

/** Removes every podnet rule whose attachment is not in `validTags`. */
export function masqGc(network: string, validTags: ReadonlySet<string>): Promise<number> {
  return removeRules(network, (r) => r.comment?.startsWith("podnet:") === true && !validTags.has(r.comment));
}

/** How many rules the attachment has (0 when none or no table). */
export async function masqCount(network: string, tag: string): Promise<number> {
  const rules = await listRules(masqTableName(network));
  return (rules ?? []).filter((r) => r.comment === tag).length;
}
