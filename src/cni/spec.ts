/**
 * The CNI specification (1.1.0) as types: network configuration, results, errors, versions.
 * Shared by the plugins (`podnet`, `podnet-ipam`) and the runtime client. Pure: no I/O.
 * Spec: containernetworking/cni SPEC.md. Where the spec and anything else disagree, the spec wins.
 */

/** Versions podnet's plugins and runtime speak, oldest first. */
export const SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const CURRENT_VERSION: CniVersion = "1.1.0";

/** The abstract unix socket of a node's podnet CNI server (scoped to its network namespace). */
export const CNI_SERVER_SOCKET = "podnet-cni";

export type CniCommand = "ADD" | "DEL" | "CHECK" | "STATUS" | "VERSION" | "GC";
export const CNI_COMMANDS: readonly CniCommand[] = ["ADD", "DEL", "CHECK", "STATUS", "VERSION", "GC"];

/** A GC attachment: one (container ID, interface name) pair still in use. */
export interface Attachment {
  containerID: string;
  ifname: string;
}

/** The VERSION command's output. */
export interface VersionResult {
  cniVersion: string;
  supportedVersions: string[];
}

/** Well-known error codes (SPEC.md "Error"); 100 and up are plugin-specific. */
export const ErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  PluginNotAvailable: 50,
  PluginNotAvailableExistingAffected: 51,
  /** podnet-specific: an address range is exhausted. */
  RangeExhausted: 100,
  /** podnet-specific: a kernel operation failed (the message says which command and why). */
  KernelOperationFailed: 101,
  /** podnet-specific: CHECK found the live state differs from prevResult. */
  CheckFailed: 102,
  /** podnet-specific: a requested address (CNI_ARGS IP=, runtimeConfig.ips) is taken or outside the ranges. */
  AddressUnavailable: 103,
  /** podnet-specific: an unexpected internal error (a bug); stderr has the stack. */
  InternalError: 199,
} as const;

/** Short names of the well-known codes, for messages and documentation. */
export const ERROR_CODE_NAMES: Record<number, string> = {
  1: "incompatible CNI version",
  2: "unsupported field in network configuration",
  3: "container unknown or does not exist",
  4: "invalid necessary environment variables",
  5: "I/O failure",
  6: "failed to decode content",
  7: "invalid network config",
  11: "try again later",
  50: "plugin not available",
  51: "plugin not available, existing containers may be affected",
  100: "address range exhausted",
  101: "kernel operation failed",
  102: "CHECK found a difference",
  103: "requested address unavailable",
  199: "internal error",
};

/** The JSON a plugin prints on stdout with a non-zero exit code. */
export interface CniErrorJson {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

/** Thrown inside plugins and the runtime; serialised as CniErrorJson. */
export class CniError extends Error {
  constructor(
    readonly code: number,
    /** What went wrong and how to fix it. */
    readonly msg: string,
    readonly details?: string,
  ) {
    super(msg);
    this.name = "CniError";
  }
  toJSON(cniVersion: string): CniErrorJson {
    return { cniVersion, code: this.code, msg: this.msg, ...(this.details ? { details: this.details } : {}) };
  }
}

export interface Dns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface Route {
  dst: string;
  gw?: string;
  /** 1.1.0 */
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface Interface {
  name: string;
  mac?: string;
  /** 1.1.0 */
  mtu?: number;
  /** Present for interfaces inside the container (its netns path). */
  sandbox?: string;
  /** 1.1.0 */
  socketPath?: string;
  pciID?: string;
}

export interface IpConfig {
  /** 0.3.x and 0.4.0 only: "4" or "6". */
  version?: "4" | "6";
  /** IP with prefix, e.g. 10.244.1.5/24. */
  address: string;
  gateway?: string;
  /** Index into `interfaces`. */
  interface?: number;
}

/** ADD result (and IPAM result, which has no interfaces). */
export interface Result {
  cniVersion: string;
  interfaces?: Interface[];
  ips?: IpConfig[];
  routes?: Route[];
  dns?: Dns;
}

/** One plugin's configuration as the runtime passes it on stdin. */
export interface PluginConfig {
  cniVersion: string;
  name: string;
  type: string;
  args?: Record<string, unknown>;
  ipMasq?: boolean;
  ipam?: { type: string; [key: string]: unknown };
  dns?: Dns;
  runtimeConfig?: Record<string, unknown>;
  prevResult?: Result;
  /** GC only: the attachments still in use. */
  "cni.dev/valid-attachments"?: Attachment[];
  /** Older name of the same (accepted). */
  "cni.dev/attachments"?: Attachment[];
  [key: string]: unknown;
}

/** A network configuration list (.conflist). */
export interface NetworkConfigList {
  cniVersion: string;
  /** 1.1.0: versions the list supports; the runtime picks the highest it supports. */
  cniVersions?: string[];
  name: string;
  disableCheck?: boolean;
  disableGC?: boolean;
  plugins: { type: string; [key: string]: unknown }[];
}

/** The CNI_* environment a runtime sets for a plugin. */
export interface CniEnv {
  CNI_COMMAND: CniCommand;
  CNI_CONTAINERID?: string;
  CNI_NETNS?: string;
  CNI_IFNAME?: string;
  CNI_ARGS?: string;
  CNI_PATH?: string;
}

/** Compares two semantic versions ("0.3.1" < "1.0.0"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function isSupportedVersion(v: string): v is CniVersion {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}
