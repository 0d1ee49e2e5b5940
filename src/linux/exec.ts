// Runs one command with arguments (never through a shell), optional stdin and a timeout. A failure
// rejects with an ExecError that names the command, its exit code (or signal) and its stderr.
//
// Short-lived processes (a CNI plugin) may call preferSynchronousExec(): commands then run with
// spawnSync, which blocks the event loop but starts the first child ~4 ms sooner than spawn (no stream
// machinery to initialise). Long-running processes keep the default, asynchronous spawn.
import { spawn, spawnSync } from "node:child_process";
import { inContextNetns } from "./netns-context.js";

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
}

let syncByDefault = false;

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
  const r = inContextNetns(() =>
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

/** Runs `command args…`; resolves with its output when it exits 0. */
export function run(
  command: string,
  args: readonly string[],
  options: ExecOptions = {},
): Promise<ExecResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (options.sync ?? syncByDefault) return runSync(command, args, options, timeoutMs);
  return new Promise((resolve, reject) => {
    let child: ReturnType<typeof spawn>;
    try {
      child = inContextNetns(() =>
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
