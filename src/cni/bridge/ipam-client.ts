// The podnet plugin's IPAM: `podnet-ipam` runs in-process (same code as the executable, no exec); any
// other `ipam.type` is executed from CNI_PATH as the spec's delegation protocol says (same environment
// with CNI_COMMAND set, the whole configuration on stdin, its stderr passed through).
import { accessSync, constants } from "node:fs";
import { join } from "node:path";
import type { IpAddress } from "../../ipam/cidr.js";
import { run } from "../../linux/exec.js";
import { parseIpamConfig } from "../ipam/config.js";
import {
  ipamAllocate,
  ipamCheck,
  ipamDel,
  ipamGc,
  ipamRelease,
  ipamRequest,
  ipamStatus,
  requestedIps,
} from "../ipam/plugin.js";
import { type CniRequest, validAttachments } from "../skel.js";
import { type CniCommand, CniError, ErrorCode, type Result } from "../spec.js";
import { parseResult } from "../version.js";

export interface IpamClient {
  type: string;
  add(): Promise<Result>;
  /** Released addresses when known (in-process), undefined otherwise. */
  del(): Promise<IpAddress[] | undefined>;
  /**
   * Undoes this invocation's add() after a later step failed: in-process, releases only the addresses
   * add() newly allocated (a repeated ADD of a live attachment keeps its addresses); delegated, a DEL as the
   * spec says.
   */
  rollback(): Promise<void>;
  check(prevResult: Result): Promise<void>;
  status(): Promise<void>;
  gc(): Promise<void>;
}

export const IN_PROCESS_IPAM = "podnet-ipam";

function inProcess(req: CniRequest): IpamClient {
  // Parsed lazily so a DEL with a broken ipam section still cleans the links up first.
  const config = () => parseIpamConfig(req.config.ipam);
  const r = ipamRequest(req);
  let fresh: IpAddress[] = [];
  return {
    type: IN_PROCESS_IPAM,
    add: async () => {
      const out = ipamAllocate(config(), { ...r, requestedIps: requestedIps(req.config, req.args) });
      fresh = out.fresh;
      return out.result;
    },
    del: async () => ipamDel(config(), r),
    rollback: async () => ipamRelease(config(), r, fresh),
    check: async (prev) => ipamCheck(config(), r, prev),
    status: async () => ipamStatus(config(), req.config.name),
    gc: async () => {
      ipamGc(config(), req.config.name, validAttachments(req.config));
    },
  };
}

/** Finds an executable named `type` in the CNI_PATH directories. */
export function findPlugin(type: string, path: readonly string[]): string {
  if (path.length === 0) {
    throw new CniError(
      ErrorCode.InvalidEnvironment,
      `CNI_PATH is not set, so the IPAM plugin "${type}" cannot be found; set CNI_PATH to the CNI bin directories (e.g. /opt/cni/bin)`,
    );
  }
  for (const dir of path) {
    const file = join(dir, type);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // Not in this directory.
    }
  }
  throw new CniError(
    ErrorCode.InvalidConfig,
    `ipam.type "${type}": no executable named ${type} in CNI_PATH (${path.join(":")}); install the plugin there or fix ipam.type`,
  );
}

async function exec(req: CniRequest, type: string, command: CniCommand): Promise<string> {
  const file = findPlugin(type, req.path);
  const r = await run(file, [], {
    input: req.stdin,
    env: { ...req.env, CNI_COMMAND: command },
    allowFailure: true,
  });
  if (r.stderr) process.stderr.write(r.stderr);
  if (r.code === 0) return r.stdout;
  let parsed: { code?: unknown; msg?: unknown; details?: unknown } | undefined;
  try {
    parsed = JSON.parse(r.stdout);
  } catch {
    parsed = undefined;
  }
  if (parsed && typeof parsed.code === "number") {
    const msg = typeof parsed.msg === "string" ? parsed.msg : "failed";
    const details = typeof parsed.details === "string" && parsed.details ? parsed.details : undefined;
    throw new CniError(parsed.code, `IPAM plugin ${type} (${command}): ${msg}`, details);
  }
  const stderr = r.stderr.trim();
  throw new CniError(
    ErrorCode.KernelOperationFailed,
    `IPAM plugin ${type} (${command}) exited with code ${r.code} without a CNI error${stderr ? `: ${stderr}` : ""}`,
  );
}

function delegated(req: CniRequest, type: string): IpamClient {
  return {
    type,
    async add() {
      const out = await exec(req, type, "ADD");
      let json: unknown;
      try {
        json = JSON.parse(out);
      } catch {
        throw new CniError(
          ErrorCode.DecodeFailure,
          `IPAM plugin ${type} printed something that is not JSON: ${out.slice(0, 200)}`,
        );
      }
      return parseResult(json, `the result of IPAM plugin ${type}`);
    },
    async del() {
      await exec(req, type, "DEL");
      return undefined;
    },
    async rollback() {
      await exec(req, type, "DEL");
    },
    async check() {
      await exec(req, type, "CHECK");
    },
    async status() {
      await exec(req, type, "STATUS");
    },
    async gc() {
      await exec(req, type, "GC");
    },
  };
}

export function ipamClient(req: CniRequest, type: string): IpamClient {
  return type === IN_PROCESS_IPAM ? inProcess(req) : delegated(req, type);
}
