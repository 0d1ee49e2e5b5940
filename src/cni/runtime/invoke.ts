/**
 * Running one plugin: find its executable in the bin directories (CNI_PATH), build the configuration it
 * reads on stdin (name, cniVersion, prevResult and runtimeConfig injected as libcni does), execute it
 * with a clean environment (PATH and CNI_* only), optionally inside a network namespace, and turn its
 * output into a result or a typed `PluginError`.
 */
import { spawn } from "node:child_process";
import { accessSync, constants, existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { netnsName } from "../../linux/ip.js";
import {
  type CniCommand,
  ErrorCode,
  type NetworkConfigList,
  type PluginConfig,
  type Result,
} from "../spec.js";
import { PluginError } from "./errors.js";
import { convertResult, resultShapeError } from "./result.js";

/** What the runtime asks an executor to run. */
export interface ExecRequest {
  /** Absolute path of the plugin executable. */
  path: string;
  /** The complete environment of the plugin (PATH and CNI_*; nothing else is inherited). */
  env: Record<string, string>;
  /** The plugin configuration (JSON). */
  stdin: string;
  /** When set, run the plugin inside this network namespace (a path such as /run/netns/node-1). */
  netns?: string;
  /** Kill the plugin after this many milliseconds. */
  timeoutMs?: number;
}

export interface ExecOutput {
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Runs a plugin process. Replace it to run plugins elsewhere (another namespace, a container, a VM). */
export type ExecPlugin = (request: ExecRequest) => Promise<ExecOutput>;

/** One plugin invocation, reported to `onInvoke` when it ends. */
export interface InvokeEvent {
  command: CniCommand;
  plugin: string;
  path?: string;
  containerID?: string;
  ifname?: string;
  durationMs: number;
  exitCode?: number | null;
  error?: Error;
}

export interface InvokeOptions {
  /** Directories searched, in order, for plugin executables; also passed to plugins as CNI_PATH. */
  binDirs: readonly string[];
  /** The network namespace plugins run in (path). The lab runs them in a node's namespace. */
  pluginNetns?: string;
  execPlugin?: ExecPlugin;
  /** Finds a plugin's executable (default: `findPlugin`, the first executable file in binDirs). Replace it
   * with `execPlugin` when plugins live elsewhere. */
  findPlugin?: (type: string, binDirs: readonly string[]) => string | undefined;
  /** Default 120 s. */
  timeoutMs?: number;
  /** Extra environment variables for plugins (e.g. a log level); CNI_* cannot be overridden. */
  env?: Record<string, string>;
  onInvoke?: (event: InvokeEvent) => void;
}

/** The parameters of one call, besides the configuration. */
export interface Invocation {
  command: CniCommand;
  /** The plugin type (executable name). */
  plugin: string;
  config: Record<string, unknown>;
  containerID?: string;
  netns?: string;
  ifname?: string;
  /** CNI_ARGS, already formatted ("K=V;K2=V2"). */
  args?: string;
}

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The command line that runs `argv` inside the network namespace at `netns`. A named namespace
 * (/run/netns/NAME) goes through `ip netns exec`, which also mounts that namespace's /sys as a node
 * would see it; any other path through `nsenter --net`. */
export function inNetns(netns: string, argv: string[]): string[] {
  const name = netnsName(netns);
  if (name) return ["ip", "netns", "exec", name, ...argv];
  return ["nsenter", `--net=${netns}`, "--", ...argv];
}

/** The default executor: a child process (inside `netns` when set), stdin written, stdout/stderr read. */
export const defaultExecPlugin: ExecPlugin = (req) =>
  new Promise((resolve, reject) => {
    const argv = req.netns ? inNetns(req.netns, [req.path]) : [req.path];
    const child = spawn(argv[0] ?? req.path, argv.slice(1), {
      env: req.env,
      stdio: ["pipe", "pipe", "pipe"],
      ...(req.timeoutMs ? { timeout: req.timeoutMs, killSignal: "SIGKILL" as const } : {}),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.stdin.on("error", () => {}); // a plugin may exit without reading stdin (EPIPE)
    child.on("error", reject);
    child.on("close", (exitCode, signal) =>
      resolve({
        exitCode,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      }),
    );
    child.stdin.end(req.stdin);
  });

/** The executable for a plugin type: the first regular, executable file of that name in `binDirs`. */
export function findPlugin(type: string, binDirs: readonly string[]): string | undefined {
  for (const dir of binDirs) {
    const path = join(dir, type);
    try {
      if (!statSync(path).isFile()) continue;
      accessSync(path, constants.X_OK);
      return path;
    } catch {}
  }
  return undefined;
}

/** CNI_ARGS from key/value pairs: "K=V;K2=V2". */
export function formatCniArgs(args: Record<string, string> | undefined): string | undefined {
  if (!args) return undefined;
  const pairs = Object.entries(args);
  return pairs.length === 0 ? undefined : pairs.map(([k, v]) => `${k}=${v}`).join(";");
}

export interface BuildOptions {
  prevResult?: Result;
  /** The runtime's capability arguments; only those the plugin enables in `capabilities` are passed. */
  capabilityArgs?: Record<string, unknown>;
  /** GC: the attachments still in use. */
  validAttachments?: { containerID: string; ifname: string }[];
}

/** The configuration plugin `index` of the list reads on stdin (SPEC "Deriving execution configuration"). */
export function buildPluginConfig(
  list: NetworkConfigList,
  index: number,
  cniVersion: string,
  opts: BuildOptions = {},
): PluginConfig {
  const plugin = list.plugins[index];
  if (!plugin) throw new RangeError(`network "${list.name}" has no plugin ${index}`);
  const config: PluginConfig = { ...plugin, name: list.name, cniVersion, type: plugin.type };
  if (opts.prevResult) config.prevResult = convertResult(opts.prevResult, cniVersion);
  const runtimeConfig: Record<string, unknown> = {};
  const caps = plugin.capabilities;
  if (caps && typeof caps === "object" && opts.capabilityArgs) {
    for (const [cap, enabled] of Object.entries(caps as Record<string, unknown>))
      if (enabled === true && opts.capabilityArgs[cap] !== undefined)
        runtimeConfig[cap] = opts.capabilityArgs[cap];
  }
  if (Object.keys(runtimeConfig).length > 0) config.runtimeConfig = runtimeConfig;
  if (opts.validAttachments) {
    config["cni.dev/valid-attachments"] = opts.validAttachments;
    // The older name, which some plugins read (libcni sends both).
    config["cni.dev/attachments"] = opts.validAttachments;
  }
  return config;
}

/** Runs one plugin command. Resolves with its stdout on success; throws `PluginError` otherwise. */
export async function invokePlugin(inv: Invocation, opts: InvokeOptions): Promise<string> {
  const started = performance.now();
  const path = (opts.findPlugin ?? findPlugin)(inv.plugin, opts.binDirs);
  const report = (extra: Partial<InvokeEvent>) =>
    opts.onInvoke?.({
      command: inv.command,
      plugin: inv.plugin,
      ...(path ? { path } : {}),
      ...(inv.containerID ? { containerID: inv.containerID } : {}),
      ...(inv.ifname ? { ifname: inv.ifname } : {}),
      durationMs: performance.now() - started,
      ...extra,
    });
  if (!path) {
    const error = new PluginError(
      ErrorCode.InvalidEnvironment,
      `no executable "${inv.plugin}" in the CNI bin directories (${opts.binDirs.join(":") || "none given"})`,
      `fix: install the plugin there or add its directory to the bin directories (CNI_PATH, --bin-dir)`,
      inv.plugin,
      inv.command,
      "runtime",
    );
    report({ error });
    throw error;
  }

  if (opts.pluginNetns && !opts.execPlugin && !existsSync(opts.pluginNetns)) {
    const error = new PluginError(
      ErrorCode.InvalidEnvironment,
      `the network namespace plugins should run in, ${opts.pluginNetns}, does not exist`,
      "fix: create it (ip netns add NAME) or pass another (--plugin-netns)",
      inv.plugin,
      inv.command,
      "runtime",
    );
    report({ error });
    throw error;
  }

  const env: Record<string, string> = {
    ...opts.env,
    PATH: opts.env?.PATH ?? process.env.PATH ?? DEFAULT_PATH,
    CNI_COMMAND: inv.command,
    CNI_PATH: opts.binDirs.join(":"),
  };
  if (inv.containerID !== undefined) env.CNI_CONTAINERID = inv.containerID;
  if (inv.netns !== undefined) env.CNI_NETNS = inv.netns;
  if (inv.ifname !== undefined) env.CNI_IFNAME = inv.ifname;
  if (inv.args !== undefined) env.CNI_ARGS = inv.args;

  const exec = opts.execPlugin ?? defaultExecPlugin;
  let output: ExecOutput;
  try {
    output = await exec({
      path,
      env,
      stdin: JSON.stringify(inv.config),
      ...(opts.pluginNetns ? { netns: opts.pluginNetns } : {}),
      timeoutMs: opts.timeoutMs ?? 120_000,
    });
  } catch (cause) {
    const error = new PluginError(
      ErrorCode.IoFailure,
      `cannot run ${path}: ${(cause as Error).message}`,
      undefined,
      inv.plugin,
      inv.command,
      "runtime",
    );
    report({ error });
    throw error;
  }
  if (output.exitCode === 0) {
    report({ exitCode: 0 });
    return output.stdout;
  }
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const timedOut = output.signal !== null && performance.now() - started >= timeoutMs;
  const error = timedOut
    ? new PluginError(
        ErrorCode.IoFailure,
        `no answer after ${timeoutMs} ms; killed`,
        undefined,
        inv.plugin,
        inv.command,
        "runtime",
        { exitCode: output.exitCode, signal: output.signal, stderr: output.stderr },
      )
    : errorFromOutput(inv, output);
  report({ exitCode: output.exitCode, error });
  throw error;
}

function errorFromOutput(inv: Invocation, output: ExecOutput): PluginError {
  const extra = { exitCode: output.exitCode, signal: output.signal, stderr: output.stderr };
  let parsed: unknown;
  try {
    parsed = JSON.parse(output.stdout);
  } catch {}
  if (typeof parsed === "object" && parsed !== null) {
    const e = parsed as { code?: unknown; msg?: unknown; details?: unknown };
    if (typeof e.code === "number" && typeof e.msg === "string")
      return new PluginError(
        e.code,
        e.msg,
        typeof e.details === "string" && e.details ? e.details : undefined,
        inv.plugin,
        inv.command,
        "plugin",
        extra,
      );
  }
  const said = lastLine(output.stderr) || lastLine(output.stdout) || "no output";
  return new PluginError(0, said, undefined, inv.plugin, inv.command, "runtime", extra);
}

function lastLine(text: string): string {
  const lines = text.trim().split("\n");
  return (lines[lines.length - 1] ?? "").trim();
}

/** Parses the stdout of a successful ADD into a result of `cniVersion`. */
export function parseAddOutput(stdout: string, plugin: string, cniVersion: string): Result {
  let value: unknown;
  try {
    value = JSON.parse(stdout);
  } catch {
    throw new PluginError(
      ErrorCode.DecodeFailure,
      `ADD succeeded but printed no JSON result (stdout: ${JSON.stringify(stdout.slice(0, 200))})`,
      undefined,
      plugin,
      "ADD",
      "runtime",
    );
  }
  const problem = resultShapeError(value);
  if (problem)
    throw new PluginError(
      ErrorCode.DecodeFailure,
      `ADD printed an invalid result: ${problem}`,
      undefined,
      plugin,
      "ADD",
      "runtime",
    );
  return convertResult(value as Result, cniVersion);
}
