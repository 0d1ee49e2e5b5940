// nftables: apply a ruleset text atomically (`nft -f -`, one transaction), list as JSON, delete a
// table if it exists. Optionally inside a network namespace given by path (`nsenter --net=PATH`).
import { ExecError, type ExecOptions, run } from "./exec.js";

export interface NftOptions {
  /** Run inside this network namespace (a path such as /run/netns/x). */
  netns?: string;
  timeoutMs?: number;
}

/** nft rejected a ruleset or command; `reason` is nft's own message. */
export class NftError extends Error {
  constructor(
    readonly reason: string,
    readonly input?: string,
  ) {
    super(`nft: ${reason}`);
    this.name = "NftError";
  }
  /** True when nft failed because the object (table, chain, rule, element) does not exist. */
  get notFound(): boolean {
    return /No such file or directory/.test(this.reason);
  }
  /** True when the kernel refused because an object is still in use (e.g. deleting a non-empty chain). */
  get busy(): boolean {
    return /Device or resource busy/.test(this.reason);
  }
}

function commandFor(args: string[], netns: string | undefined): [string, string[], ExecOptions] {
  return ["nft", args, netns === undefined ? {} : { netns }];
}

async function nft(args: string[], options: NftOptions, input?: string): Promise<string> {
  const [cmd, argv, where] = commandFor(args, options.netns);
  try {
    const r = await run(cmd, argv, { ...where, input, timeoutMs: options.timeoutMs });
    return r.stdout;
  } catch (e) {
    if (!(e instanceof ExecError)) throw e;
    const reason =
      e.result.stderr
        .split("\n")
        .map((s) => s.trimEnd())
        .filter((s) => s.trim() !== "")
        .join("\n") || e.message;
    throw new NftError(reason, input);
  }
}

/** Applies a ruleset (nft syntax) in one transaction: all of it or nothing. */
export async function nftApply(ruleset: string, options: NftOptions = {}): Promise<void> {
  await nft(["-f", "-"], options, ruleset.endsWith("\n") ? ruleset : `${ruleset}\n`);
}

/** Runs `nft -j ARGS…` (e.g. ["list", "table", "inet", "t"]) and returns the parsed `nftables` array. */
export async function nftJson(args: readonly string[], options: NftOptions = {}): Promise<NftJsonObject[]> {
  const out = await nft(["-j", ...args], options);
  if (out.trim() === "") return [];
  const parsed = JSON.parse(out) as { nftables?: NftJsonObject[] };
  return parsed.nftables ?? [];
}

/** Deletes a table; resolves false when it did not exist. */
export async function nftDeleteTable(
  family: string,
  name: string,
  options: NftOptions = {},
): Promise<boolean> {
  try {
    await nft(["delete", "table", family, name], options);
    return true;
  } catch (e) {
    if (e instanceof NftError && e.notFound) return false;
    throw e;
  }
}

/** One object of `nft -j` output: { table: {...} } | { chain: {...} } | { rule: {...} } | … */
export type NftJsonObject = Record<string, Record<string, unknown>>;

/** Quotes a string for nft syntax ("…"); nft strings cannot contain a double quote. */
export function nftString(s: string): string {
  if (/["\n\r\\]/.test(s)) throw new Error(`${JSON.stringify(s)} cannot be used as an nft string`);
  return `"${s}"`;
}
