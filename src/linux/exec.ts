// Runs one command with arguments (never through a shell), optional stdin and a timeout. A failure
// rejects with an ExecError that names the command, its exit code (or signal) and its stderr.
//
// Short-lived processes (a CNI plugin) may call preferSynchronousExec(): commands then run with
// spawnSync, which blocks the event loop but starts the first child ~4 ms sooner than spawn (no stream
// machinery to initialise). Long-running processes keep the default, asynchronous spawn.
import { spawn, spawnSync } from "node:child_process";
import { contextNetns, hasNetnsSwitcher, inNetns } from "./netns-context.js";

export interface ExecOptions {
  /** Written to the command's stdin, which is then closed. */
  input?: string;
  /** Kill the command (SIGKILL) after this many milliseconds. Default 30 s. */
  timeoutMs?: number;
  /** Environment; default: this process's. */
  env?: NodeJS.ProcessEnv;
  /** Resolve instead of rejecting when the command exits non-zero (the caller inspects `code`). */
  allowFailure?: boolean;
  /** Run with spawnSync (blocking); default: see preferSynchronousExec. */
  sync?: boolean;
  /** Start the command inside this network namespace (path): directly with a namespace switcher
   * (netns-context.ts), else through nsenter. Without the option: the current context's namespace. */
  netns?: string;
}

let syncByDefault = false;

/** A replacement for spawnSync (netns-native.ts's spawnSyncLight: posix_spawn, cheap in a big process). */
export type SyncSpawner = (
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number },
) => {
  status: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
};

let syncSpawner: SyncSpawner | undefined;

/** One command for an AsyncSpawner: what to run, where (a namespace path) and with what. */
export interface SpawnRequest {
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs?: number;
  netns?: string;
}

/** A replacement for spawn: runs the command elsewhere (spawn-pool.ts) and resolves when it ends. */
export type AsyncSpawner = (request: SpawnRequest) => Promise<ReturnType<SyncSpawner>>;

let asyncSpawner: AsyncSpawner | undefined;

/** Makes non-blocking runs use `spawner` (the lab's node agent: a pool of spawning threads). */
export function useAsyncSpawner(spawner: AsyncSpawner | undefined): void {
  asyncSpawner = spawner;
}

/** Makes blocking runs use `spawner` (long-running processes that exec a lot: the lab's node agent). */
export function useSyncSpawner(spawner: SyncSpawner | undefined): void {
  syncSpawner = spawner;
}

/** Makes run() use spawnSync unless told otherwise: for one-shot processes that do nothing concurrently. */
export function preferSynchronousExec(on = true): void {
  syncByDefault = on;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** Exit code; null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A command that could not start, exited non-zero, was killed or timed out. */
export class ExecError extends Error {
  constructor(
    readonly command: string,
    readonly args: readonly string[],
    readonly result: ExecResult,
    reason: string,
  ) {
    super(`${command} ${args.join(" ")}: ${reason}`);
    this.name = "ExecError";
  }
  get stderr(): string {
    return this.result.stderr;
  }
  get code(): number | null {
    return this.result.code;
  }
}

const DEFAULT_TIMEOUT_MS = 30_000;

function describeFailure(r: ExecResult, timedOut: boolean, timeoutMs: number): string {
  const stderr = r.stderr.trim();
  const tail = stderr ? `: ${stderr}` : "";
  if (timedOut) return `timed out after ${timeoutMs} ms and was killed${tail}`;
  if (r.signal) return `killed by ${r.signal}${tail}`;
  return `exited with code ${r.code}${tail}`;
}

function runSync(
  command: string,
  args: readonly string[],
  options: ExecOptions,
  timeoutMs: number,
): Promise<ExecResult> {
  if (syncSpawner) return runLight(syncSpawner, command, args, options, timeoutMs);
  const r = inNetns(options.netns, () =>
    spawnSync(command, args, {
      env: options.env ?? process.env,
      input: options.input ?? "",
      timeout: timeoutMs,
      killSignal: "SIGKILL",
      maxBuffer: 64 * 1024 * 1024,
    }),
  );
  const result: ExecResult = {
    stdout: r.stdout?.toString("utf8") ?? "",
    stderr: r.stderr?.toString("utf8") ?? "",
    code: r.status,
    signal: r.signal,
  };
  const e = r.error as NodeJS.ErrnoException | undefined;
  if (e && e.code !== "EPIPE") {
    if (e.code === "ETIMEDOUT") {
      return Promise.reject(new ExecError(command, args, result, describeFailure(result, true, timeoutMs)));
    }
    const hint = e.code === "ENOENT" ? " (not found in PATH; is it installed?)" : "";
    return Promise.reject(new ExecError(command, args, result, `could not start: ${e.message}${hint}`));
  }
  if (result.code === 0 || (options.allowFailure && result.code !== null)) return Promise.resolve(result);
  return Promise.reject(new ExecError(command, args, result, describeFailure(result, false, timeoutMs)));
}

function runLight(
  spawner: SyncSpawner,
  command: string,
  args: readonly string[],
  options: ExecOptions,
  timeoutMs: number,
): Promise<ExecResult> {
  let r: ReturnType<SyncSpawner>;
  try {
    r = inNetns(options.netns, () =>
      spawner(command, args, { env: options.env ?? process.env, input: options.input, timeoutMs }),
    );
  } catch (e) {
    const result: ExecResult = { stdout: "", stderr: "", code: null, signal: null };
    const hint =
      (e as NodeJS.ErrnoException).code === "ENOENT" ? " (not found in PATH; is it installed?)" : "";
    return Promise.reject(
      new ExecError(command, args, result, `could not start: ${(e as Error).message}${hint}`),
    );
  }
  try {
    return Promise.resolve(settleLight(r, command, args, options, timeoutMs));
  } catch (e) {
    return Promise.reject(e);
  }
}

function settleLight(
  r: ReturnType<SyncSpawner>,
  command: string,
  args: readonly string[],
  options: ExecOptions,
  timeoutMs: number,
): ExecResult {
  const result: ExecResult = { stdout: r.stdout, stderr: r.stderr, code: r.status, signal: r.signal };
  if (result.code === 0 || (options.allowFailure && !r.timedOut && result.code !== null)) return result;
  throw new ExecError(command, args, result, describeFailure(result, r.timedOut, timeoutMs));
}

/** Runs `command args…`; resolves with its output when it exits 0. */
export function run(
  command: string,
  args: readonly string[],
  optionsIn: ExecOptions = {},
): Promise<ExecResult> {
  let options = optionsIn;
  // Without a namespace switcher (no addon in this process), nsenter enters the namespace instead.
  if (options.netns !== undefined && !hasNetnsSwitcher()) {
    args = [`--net=${options.netns}`, command, ...args];
    command = "nsenter";
    options = { ...options, netns: undefined };
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (options.sync ?? syncByDefault) return runSync(command, args, options, timeoutMs);
  if (asyncSpawner) {
    const spawner = asyncSpawner;
    const netns = options.netns ?? contextNetns();
    return spawner({
      command,
      args,
      env: options.env ?? process.env,
      input: options.input,
      timeoutMs,
      netns,
    }).then(
      (r) => settleLight(r, command, args, options, timeoutMs),
      (e: NodeJS.ErrnoException) => {
        const result: ExecResult = { stdout: "", stderr: "", code: null, signal: null };
        const hint = e.code === "ENOENT" ? " (not found in PATH; is it installed?)" : "";
        throw new ExecError(command, args, result, `could not start: ${e.message}${hint}`);
      },
    );
  }
  return new Promise((resolve, reject) => {
    let child: ReturnType<typeof spawn>;
    try {
      child = inNetns(options.netns, () =>
        spawn(command, args, { env: options.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] }),
      );
    } catch (e) {
      const r: ExecResult = { stdout: "", stderr: "", code: null, signal: null };
      reject(new ExecError(command, args, r, `could not start: ${(e as Error).message}`));
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let settled = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.stdout?.on("data", (b: Buffer) => out.push(b));
    child.stderr?.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const r: ExecResult = { stdout: "", stderr: "", code: null, signal: null };
      const hint = e.code === "ENOENT" ? " (not found in PATH; is it installed?)" : "";
      reject(new ExecError(command, args, r, `could not start: ${e.message}${hint}`));
    });
    child.on("close", (code, signal) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const r: ExecResult = {
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        code,
        signal,
      };
      if (code === 0 || (options.allowFailure && !timedOut && code !== null)) resolve(r);
      else reject(new ExecError(command, args, r, describeFailure(r, timedOut, timeoutMs)));
    });
    // A command that exits without reading stdin makes the write fail with EPIPE; its exit status says
    // what went wrong, so the write error itself is ignored.
    child.stdin?.on("error", () => {});
    child.stdin?.end(options.input ?? "");
  });
}
