// The shared entry of podnet's plugin executables (like libcni's skel): reads the CNI_* environment and
// the configuration on stdin, validates both per command, dispatches, and prints the result in the
// requested cniVersion, or an error as JSON on stdout with exit code 1. Details of failures go to stderr;
// stdout never carries a stack trace.
import { fstatSync, readFileSync } from "node:fs";
import { ExecError, preferSynchronousExec } from "../linux/exec.js";
import { IpBatchError } from "../linux/ip.js";
import { ifnameProblem } from "../linux/names.js";
import {
  type Attachment,
  CNI_COMMANDS,
  type CniCommand,
  CniError,
  CURRENT_VERSION,
  compareVersions,
  ErrorCode,
  isSupportedVersion,
  type PluginConfig,
  type Result,
  SUPPORTED_VERSIONS,
  type VersionResult,
} from "./spec.js";
import { convertResult } from "./version.js";

/** One invocation, validated. */
export interface CniRequest {
  command: CniCommand;
  /** CNI_CONTAINERID ("" when not given: STATUS, GC). */
  containerId: string;
  /** CNI_NETNS ("" when not given: DEL after the namespace is gone, STATUS, GC). */
  netns: string;
  /** CNI_IFNAME ("" when not given). */
  ifname: string;
  /** CNI_ARGS as key/value pairs. */
  args: Record<string, string>;
  /** CNI_PATH split on ":". */
  path: string[];
  /** The configuration from stdin. */
  config: PluginConfig;
  /** stdin as received (passed unchanged to delegated plugins). */
  stdin: string;
  /** The environment as received (passed to delegated plugins). */
  env: NodeJS.ProcessEnv;
}

export interface PluginHandlers {
  /** Short name for messages, e.g. "podnet". */
  name: string;
  add(req: CniRequest): Promise<Result>;
  del(req: CniRequest): Promise<void>;
  check(req: CniRequest): Promise<void>;
  status(req: CniRequest): Promise<void>;
  gc(req: CniRequest): Promise<void>;
}

export interface PluginIo {
  env: NodeJS.ProcessEnv;
  /** stdin text, or a function reading it (called only when the command needs stdin). */
  stdin: string | (() => Promise<string>);
  /** Where logs go (stderr). */
  log?: (line: string) => void;
}

export interface PluginOutcome {
  exitCode: 0 | 1;
  /** What the plugin prints on stdout ("" when nothing). */
  stdout: string;
}

const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Environment variables each command requires (beyond CNI_COMMAND). */
export const REQUIRED_ENV: Record<CniCommand, readonly string[]> = {
  ADD: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
  DEL: ["CNI_CONTAINERID", "CNI_IFNAME"],
  CHECK: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
  STATUS: [],
  VERSION: [],
  GC: [],
};

/** Parses CNI_ARGS ("K=V;K2=V2"). Throws CniError(4) for a pair without "=". */
export function parseCniArgs(text: string | undefined): Record<string, string> {
  const args: Record<string, string> = {};
  if (!text) return args;
  for (const pair of text.split(";")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    if (eq <= 0) {
      throw new CniError(
        ErrorCode.InvalidEnvironment,
        `CNI_ARGS: "${pair}" is not a KEY=VALUE pair; write pairs separated by ";", e.g. "IP=10.1.0.5;FOO=bar"`,
      );
    }
    args[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return args;
}

function envError(msg: string): CniError {
  return new CniError(ErrorCode.InvalidEnvironment, msg);
}

/** Validates the CNI_* variables for `command`; throws CniError(4) naming every invalid variable. */
export function validateEnv(command: CniCommand, env: NodeJS.ProcessEnv): void {
  const missing = REQUIRED_ENV[command].filter((k) => !env[k]);
  if (missing.length > 0) {
    throw envError(
      `${missing.join(", ")} ${missing.length === 1 ? "is" : "are"} not set; CNI ${command} requires ${REQUIRED_ENV[command].join(", ")}`,
    );
  }
  const id = env.CNI_CONTAINERID;
  if (id && !CONTAINER_ID.test(id)) {
    throw envError(
      `CNI_CONTAINERID "${id}" is invalid: it must start with a letter or digit, followed by letters, digits, "_", "." or "-"`,
    );
  }
  const ifname = env.CNI_IFNAME;
  if (ifname) {
    const problem = ifnameProblem(ifname);
    if (problem) throw envError(`CNI_IFNAME "${ifname}" is not a valid interface name: ${problem}`);
  }
}

function decodeConfig(stdin: string): Record<string, unknown> {
  if (stdin.trim() === "") {
    throw new CniError(
      ErrorCode.DecodeFailure,
      "stdin is empty; the runtime must pass the network configuration as JSON on stdin",
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdin);
  } catch (e) {
    throw new CniError(
      ErrorCode.DecodeFailure,
      `the network configuration on stdin is not valid JSON (${(e as Error).message}); fix the configuration file`,
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new CniError(
      ErrorCode.DecodeFailure,
      `the network configuration on stdin must be a JSON object, not ${Array.isArray(parsed) ? "an array" : JSON.stringify(parsed)}`,
    );
  }
  return parsed as Record<string, unknown>;
}

/** Checks cniVersion, name and type; throws CniError(1) or (7). */
export function validateConfig(command: CniCommand, config: Record<string, unknown>): PluginConfig {
  const v = config.cniVersion;
  if (v === undefined) {
    throw new CniError(
      ErrorCode.InvalidConfig,
      `cniVersion is required; add "cniVersion": "${CURRENT_VERSION}"`,
    );
  }
  if (typeof v !== "string") {
    throw new CniError(
      ErrorCode.InvalidConfig,
      `cniVersion must be a string such as "${CURRENT_VERSION}", not ${JSON.stringify(v)}`,
    );
  }
  if (!isSupportedVersion(v)) {
    throw new CniError(
      ErrorCode.IncompatibleVersion,
      `cniVersion "${v}" is not supported; use one of ${SUPPORTED_VERSIONS.join(", ")}`,
    );
  }
  const minimum =
    command === "CHECK" ? "0.4.0" : command === "STATUS" || command === "GC" ? "1.1.0" : undefined;
  if (minimum && compareVersions(v, minimum) < 0) {
    throw new CniError(
      ErrorCode.IncompatibleVersion,
      `${command} needs cniVersion ${minimum} or later, but the configuration says "${v}"`,
    );
  }
  const name = config.name;
  if (typeof name !== "string" || name === "") {
    throw new CniError(ErrorCode.InvalidConfig, `name is required: the network name, e.g. "name": "podnet"`);
  }
  if (!NETWORK_NAME.test(name)) {
    throw new CniError(
      ErrorCode.InvalidConfig,
      `name "${name}" is invalid: it must start with a letter or digit, followed by letters, digits, "_", "." or "-"`,
    );
  }
  if (typeof config.type !== "string" || config.type === "") {
    throw new CniError(
      ErrorCode.InvalidConfig,
      `type is required: the plugin executable's name, e.g. "type": "podnet"`,
    );
  }
  return config as PluginConfig;
}

/** The valid attachments of a GC request (`cni.dev/valid-attachments`, or the older `cni.dev/attachments`). */
export function validAttachments(config: PluginConfig): Attachment[] {
  const key =
    config["cni.dev/valid-attachments"] !== undefined ? "cni.dev/valid-attachments" : "cni.dev/attachments";
  const list = config[key];
  if (list === undefined) return [];
  if (!Array.isArray(list)) {
    throw new CniError(ErrorCode.InvalidConfig, `${key} must be a list of {"containerID": …, "ifname": …}`);
  }
  return list.map((a, i) => {
    const o = a as Partial<Attachment> | null;
    if (
      typeof o !== "object" ||
      o === null ||
      typeof o.containerID !== "string" ||
      typeof o.ifname !== "string"
    ) {
      throw new CniError(
        ErrorCode.InvalidConfig,
        `${key}[${i}] must be {"containerID": "…", "ifname": "…"}, got ${JSON.stringify(a)}`,
      );
    }
    return { containerID: o.containerID, ifname: o.ifname };
  });
}

/** Converts anything thrown by a handler into a CniError with a message saying what to fix. */
export function toCniError(e: unknown): CniError {
  if (e instanceof CniError) return e;
  // By name, so that the skel does not load the nft and lock modules (start-up time).
  const name = e instanceof Error ? e.name : "";
  if (name === "LockTimeoutError") return new CniError(ErrorCode.TryAgainLater, (e as Error).message);
  if (e instanceof IpBatchError || e instanceof ExecError || name === "NftError") {
    return new CniError(ErrorCode.KernelOperationFailed, (e as Error).message);
  }
  const errno = (e as NodeJS.ErrnoException | null)?.code;
  if (typeof errno === "string" && /^E[A-Z]+$/.test(errno)) {
    const transient = ["EAGAIN", "EBUSY", "EMFILE", "ENFILE", "EINTR"].includes(errno);
    return new CniError(transient ? ErrorCode.TryAgainLater : ErrorCode.IoFailure, (e as Error).message);
  }
  const message = e instanceof Error ? e.message : String(e);
  return new CniError(ErrorCode.InternalError, `internal error: ${message}`);
}

/** Runs one invocation against `handlers`; never throws. */
export async function runPlugin(handlers: PluginHandlers, io: PluginIo): Promise<PluginOutcome> {
  const log = io.log ?? (() => {});
  let version: string = CURRENT_VERSION;
  const readStdin = async () => (typeof io.stdin === "string" ? io.stdin : io.stdin());
  try {
    const command = io.env.CNI_COMMAND;
    if (!command) {
      throw envError(`CNI_COMMAND is not set; set it to one of ${CNI_COMMANDS.join(", ")}`);
    }
    if (!(CNI_COMMANDS as readonly string[]).includes(command)) {
      throw envError(`CNI_COMMAND "${command}" is unknown; use one of ${CNI_COMMANDS.join(", ")}`);
    }
    const cmd = command as CniCommand;
    if (cmd === "VERSION") {
      const text = await readStdin();
      let requested: unknown;
      if (text.trim() !== "") requested = decodeConfig(text).cniVersion;
      const out: VersionResult = {
        cniVersion: typeof requested === "string" ? requested : CURRENT_VERSION,
        supportedVersions: [...SUPPORTED_VERSIONS],
      };
      return { exitCode: 0, stdout: `${JSON.stringify(out)}\n` };
    }
    // stdin first, so that an error about the environment carries the configuration's cniVersion (the
    // spec: an error's cniVersion is the protocol version in use); the environment is still checked first.
    const stdin = await readStdin();
    let raw: Record<string, unknown> | undefined;
    let decodeError: unknown;
    try {
      raw = decodeConfig(stdin);
      if (typeof raw.cniVersion === "string") version = raw.cniVersion;
    } catch (e) {
      decodeError = e;
    }
    validateEnv(cmd, io.env);
    if (raw === undefined) throw decodeError;
    const config = validateConfig(cmd, raw);
    const req: CniRequest = {
      command: cmd,
      containerId: io.env.CNI_CONTAINERID ?? "",
      netns: io.env.CNI_NETNS ?? "",
      ifname: io.env.CNI_IFNAME ?? "",
      args: parseCniArgs(io.env.CNI_ARGS),
      path: (io.env.CNI_PATH ?? "").split(":").filter(Boolean),
      config,
      stdin,
      env: io.env,
    };
    switch (cmd) {
      case "ADD": {
        const result = await handlers.add(req);
        return { exitCode: 0, stdout: `${JSON.stringify(convertResult(result, config.cniVersion))}\n` };
      }
      case "DEL":
        await handlers.del(req);
        break;
      case "CHECK":
        await handlers.check(req);
        break;
      case "STATUS":
        await handlers.status(req);
        break;
      case "GC":
        await handlers.gc(req);
        break;
    }
    return { exitCode: 0, stdout: "" };
  } catch (e) {
    const err = toCniError(e);
    if (err.code === ErrorCode.InternalError && e instanceof Error && e.stack) log(e.stack);
    log(`${handlers.name}: error ${err.code}: ${err.msg}${err.details ? ` (${err.details})` : ""}`);
    return { exitCode: 1, stdout: `${JSON.stringify(err.toJSON(version))}\n` };
  }
}

async function readAllStdin(): Promise<string> {
  try {
    return readFileSync(0, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EAGAIN") {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString("utf8");
    }
    if (code === "EBADF" || code === "ENXIO" || code === "EINVAL") return "";
    throw e;
  }
}

/** True when stdin is a terminal (someone ran the plugin by hand without input). node:tty costs start-up time. */
function stdinIsTerminal(): boolean {
  try {
    // A terminal or /dev/null: nothing to read (and reading a terminal would wait for the user).
    return fstatSync(0).isCharacterDevice();
  } catch {
    return false;
  }
}

/** The executable's main: real environment, stdin, stdout, exit code. */
export async function pluginMain(handlers: PluginHandlers): Promise<void> {
  // One invocation, nothing concurrent: blocking exec starts commands sooner.
  preferSynchronousExec();
  const outcome = await runPlugin(handlers, {
    env: process.env,
    stdin: () => (stdinIsTerminal() ? Promise.resolve("") : readAllStdin()),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  if (outcome.stdout) process.stdout.write(outcome.stdout);
  process.exitCode = outcome.exitCode;
}
