/**
 * Appliers for the lab's topology: idempotent, so that `up` on a lab that is partly there (a crash, a
 * killed process) converges instead of failing. Lines that create what exists ("File exists") count as
 * done; any other failure is an error naming the namespace, the line and the kernel's answer.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { ipBatchForce } from "../linux/ip.js";
import { withNetns } from "../linux/netns-native.js";
import { nftApply } from "../linux/nft.js";
import { ensureSysctl } from "../linux/sysctl.js";
import { netnsPath } from "./names.js";
import type { NamespacePlan } from "./topology.js";

/** Names of the namespaces in /run/netns that start with `prefix`. */
export function listNamespaces(prefix: string): string[] {
  try {
    return readdirSync("/run/netns").filter((n) => n.startsWith(prefix));
  } catch {
    return [];
  }
}

export class LabApplyError extends Error {
  constructor(
    readonly where: string,
    readonly failures: { line: string; reason: string }[],
  ) {
    super(`${where}: ${failures.map((f) => `"${f.line}" failed: ${f.reason}`).join("; ")}`);
    this.name = "LabApplyError";
  }
}

const ALREADY_THERE = /File exists/;

async function forced(where: string, lines: readonly string[], options: Parameters<typeof ipBatchForce>[1]) {
  const failures = (await ipBatchForce(lines, options)).filter((f) => !ALREADY_THERE.test(f.reason));
  if (failures.length > 0) throw new LabApplyError(where, failures);
}

/** Runs lines in the root namespace (namespace and link creation). */
export function applyRootLines(lines: readonly string[]): Promise<void> {
  return forced("root namespace", lines, {});
}

/**
 * Deletes namespaces (all of them, going on past failures), and their /etc/netns/NAME files (a pod's
 * resolv.conf); returns those that could not be deleted.
 */
export async function deleteNamespaces(names: readonly string[]): Promise<string[]> {
  const failures = await ipBatchForce(names.map((n) => `netns del ${n}`));
  for (const n of names) rmSync(netnsEtcDir(n), { recursive: true, force: true });
  return failures.map((f) => f.line.slice("netns del ".length));
}

/** Files `ip netns exec` mounts over /etc inside namespace `name` (resolv.conf for a pod). */
export function netnsEtcDir(name: string): string {
  return `/etc/netns/${name}`;
}

/** Writes the pod's /etc/resolv.conf as seen by `ip netns exec` (dig, getent, `podnet lab exec`). */
export function writeNetnsResolvConf(name: string, text: string): void {
  mkdirSync(netnsEtcDir(name), { recursive: true });
  writeFileSync(`${netnsEtcDir(name)}/resolv.conf`, text);
}

/** Sysctls, links, addresses, routes, FDB entries and nftables rules of one namespace. */
export async function applyNamespace(ns: NamespacePlan): Promise<void> {
  const path = netnsPath(ns.name);
  for (const [key, value] of Object.entries(ns.sysctls)) withNetns(path, () => ensureSysctl(key, value));
  await forced(ns.name, ns.ip, { netns: path });
  await forced(ns.name, ns.bridge, { netns: path, tool: "bridge" });
  if (ns.nft) {
    // Replace the table in one transaction: add (no-op if there), delete, define.
    const table = /^table (\S+ \S+) \{/m.exec(ns.nft)?.[1];
    const reset = table ? `add table ${table}\ndelete table ${table}\n` : "";
    await nftApply(`${reset}${ns.nft}`, { netns: path });
  }
}
