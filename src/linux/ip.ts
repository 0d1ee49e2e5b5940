// iproute2 in batches: many `ip` commands in one process (`ip -batch -`), optionally inside a network
// namespace given by path (`nsenter --net=PATH`). Without `-force` the first failing line stops the batch;
// IpBatchError names that line and the kernel's answer. `ip -j` output is parsed as JSON.
import { ExecError, type ExecOptions, run } from "./exec.js";
import { hasNetnsSwitcher } from "./netns-context.js";

export interface IpOptions {
  /** Run inside this network namespace (a path such as /run/netns/x or /proc/PID/ns/net). */
  netns?: string;
  /** Pass `-j`: show commands print JSON (see parseJsonValues). */
  json?: boolean;
  timeoutMs?: number;
}

/** A batch line failed: `lineNumber` is 1-based, `reason` is what ip/the kernel said. */
export class IpBatchError extends Error {
  constructor(
    readonly lineNumber: number | undefined,
    readonly line: string | undefined,
    readonly reason: string,
    readonly stdout: string,
  ) {
    super(line === undefined ? `ip -batch failed: ${reason}` : `"ip ${line}" failed: ${reason}`);
    this.name = "IpBatchError";
  }
}

const SAFE_TOKEN = /^[A-Za-z0-9_.:/@%+,=-]+$/;

/**
 * Quotes one argument for an `ip -batch` line: ip splits lines on blanks, honours "…" and '…' and treats
 * `#` as a comment. Interface names may contain such characters (only /, : and blanks are forbidden).
 */
export function quoteIpArg(arg: string): string {
  if (arg.length > 0 && SAFE_TOKEN.test(arg)) return arg;
  if (/[\n\r\0]/.test(arg))
    throw new Error(`${JSON.stringify(arg)} cannot be passed to ip (line break or NUL)`);
  if (!arg.includes('"')) return `"${arg}"`;
  if (!arg.includes("'")) return `'${arg}'`;
  throw new Error(`${JSON.stringify(arg)} cannot be passed to ip (contains both ' and ")`);
}

/** Builds one batch line from tokens, quoting each as needed. */
export function ipLine(...tokens: (string | number)[]): string {
  return tokens.map((t) => quoteIpArg(String(t))).join(" ");
}

/** The name of a namespace `ip netns` manages (/run/netns/NAME), or undefined for any other path. */
export function netnsName(path: string): string | undefined {
  return /^\/(?:var\/)?run\/netns\/([^/]+)$/.exec(path)?.[1];
}

function commandFor(args: string[], netns: string | undefined): [string, string[], ExecOptions] {
  if (netns === undefined) return ["ip", args, {}];
  // Without a namespace switcher, `ip -n NAME` saves starting nsenter (~1.5 ms a call) while few
  // namespaces are mounted; run() starts ip right inside the namespace, or through nsenter.
  const name = netnsName(netns);
  return name && !hasNetnsSwitcher() ? ["ip", ["-n", name, ...args], {}] : ["ip", args, { netns }];
}

const FAILED_LINE = /^Command failed -:(\d+)\s*$/m;

/**
 * Runs the lines in one `ip -batch -` process and returns its stdout. Rejects with IpBatchError naming
 * the first failing line (earlier lines stay applied: the caller rolls back).
 */
export async function ipBatch(lines: readonly string[], options: IpOptions = {}): Promise<string> {
  if (lines.length === 0) return "";
  for (const l of lines) {
    if (/[\n\r]/.test(l)) throw new Error(`ip batch line contains a line break: ${JSON.stringify(l)}`);
  }
  const args = [...(options.json ? ["-j"] : []), "-batch", "-"];
  const [cmd, argv, where] = commandFor(args, options.netns);
  try {
    const r = await run(cmd, argv, {
      ...where,
      input: `${lines.join("\n")}\n`,
      timeoutMs: options.timeoutMs,
    });
    return r.stdout;
  } catch (e) {
    if (!(e instanceof ExecError)) throw e;
    const stderr = e.result.stderr;
    const m = FAILED_LINE.exec(stderr);
    const reason =
      stderr
        .replace(FAILED_LINE, "")
        .split("\n")
        .map((s) => s.trim())
        .filter(Boolean)
        .join("; ") || e.message;
    if (m?.[1] !== undefined) {
      const n = Number(m[1]);
      throw new IpBatchError(n, lines[n - 1], reason, e.result.stdout);
    }
    throw new IpBatchError(undefined, undefined, reason, e.result.stdout);
  }
}

/** Runs one `ip -j ARGS…` command and returns its parsed JSON output. */
export async function ipJson<T = unknown>(args: readonly string[], options: IpOptions = {}): Promise<T> {
  const [cmd, argv, where] = commandFor(["-j", ...args], options.netns);
  const r = await run(cmd, argv, { ...where, timeoutMs: options.timeoutMs });
  const values = parseJsonValues(r.stdout);
  return (values[0] ?? []) as T;
}

/**
 * Parses concatenated JSON values (what `ip -j -batch` prints: one array per show command).
 * Throws SyntaxError on malformed text.
 */
export function parseJsonValues(text: string): unknown[] {
  const values: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === "[" || c === "{") {
      if (depth === 0) start = i;
      depth++;
    } else if (c === "]" || c === "}") {
      depth--;
      if (depth === 0) values.push(JSON.parse(text.slice(start, i + 1)));
      if (depth < 0) throw new SyntaxError(`unbalanced JSON at offset ${i}`);
    }
  }
  if (depth !== 0 || inString) throw new SyntaxError("truncated JSON");
  return values;
}

/** One entry of `ip -j link show`. */
export interface IpLink {
  ifindex: number;
  ifname: string;
  address?: string;
  mtu?: number;
  master?: string;
  flags?: string[];
  operstate?: string;
  link_type?: string;
}

/** One entry of `ip -j addr show`. */
export interface IpAddrLink extends IpLink {
  addr_info?: { family: "inet" | "inet6"; local: string; prefixlen: number; scope?: string }[];
}

/** One entry of `ip -j route show`. */
export interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
  metric?: number;
}

/** One line of a forced batch that failed. */
export interface IpBatchFailure {
  lineNumber: number;
  line: string;
  reason: string;
}

/**
 * Runs all lines in one `ip -force -batch -` (or `bridge`) process, going on past failures, and returns
 * the lines that failed with the kernel's answer. For idempotent appliers: `link add` of a link that is
 * there fails with "File exists", which the caller may accept as done.
 */
export async function ipBatchForce(
  lines: readonly string[],
  options: IpOptions & { tool?: "ip" | "bridge" } = {},
): Promise<IpBatchFailure[]> {
  if (lines.length === 0) return [];
  const [cmd0, argv0, where] = commandFor(["-force", "-batch", "-"], options.netns);
  const tool = options.tool ?? "ip";
  // commandFor builds `ip …`; the bridge tool takes the same -n/-force/-batch options.
  const [cmd, argv] = cmd0 === "ip" ? [tool, argv0] : [cmd0, argv0.map((a) => (a === "ip" ? tool : a))];
  const r = await run(cmd, argv, {
    ...where,
    input: `${lines.join("\n")}\n`,
    timeoutMs: options.timeoutMs,
    allowFailure: true,
  });
  if (r.code === 0) return [];
  const failures: IpBatchFailure[] = [];
  let reasons: string[] = [];
  for (const raw of r.stderr.split("\n")) {
    const m = /^Command failed -:(\d+)\s*$/.exec(raw);
    if (m) {
      const n = Number(m[1]);
      failures.push({ lineNumber: n, line: lines[n - 1] ?? "", reason: reasons.join("; ") || "failed" });
      reasons = [];
    } else if (raw.trim()) reasons.push(raw.trim());
  }
  if (failures.length === 0)
    failures.push({ lineNumber: 0, line: "", reason: r.stderr.trim() || `exit code ${r.code}` });
  return failures;
}
