// podnet main plugin configuration: the fields, their defaults and validation (CniError code 7 naming the
// field and the fix). Pure.
import { ifnameProblem } from "../../linux/names.js";
import { CniError, type Dns, ErrorCode, type PluginConfig } from "../spec.js";
import { parseDns } from "../version.js";

export interface BridgeConfig {
  /** The network name (`name`). */
  network: string;
  /** Node bridge; created when missing. Default "cbr0". */
  bridge: string;
  /** MTU of both veth ends. Default 1500. */
  mtu: number;
  /** Hairpin mode on the bridge port, so a pod reaches itself through a Service. Default true. */
  hairpinMode: boolean;
  /** Masquerade traffic from pods to outside their subnet. Default false. */
  ipMasq: boolean;
  /** Put the gateway address on the bridge. Default true (forced by isDefaultGateway). */
  isGateway: boolean;
  /** Default route in the pod via the gateway, per family. Default true. */
  isDefaultGateway: boolean;
  /** The IPAM section (`type` plus the IPAM plugin's fields). */
  ipam: { type: string; [key: string]: unknown };
  /** DNS for the result (overrides what IPAM returns). */
  dns?: Dns;
}

export const BRIDGE_DEFAULTS = {
  bridge: "cbr0",
  mtu: 1500,
  hairpinMode: true,
  ipMasq: false,
  isGateway: true,
  isDefaultGateway: true,
} as const;

function invalid(msg: string): CniError {
  return new CniError(ErrorCode.InvalidConfig, msg);
}

function bool(config: PluginConfig, key: string, fallback: boolean): boolean {
  const v = config[key];
  if (v === undefined) return fallback;
  if (typeof v !== "boolean") {
    throw invalid(
      `${key} must be true or false, got ${JSON.stringify(v)}${typeof v === "string" ? ` (write ${v} without quotes)` : ""}`,
    );
  }
  return v;
}

/** Validates a podnet plugin configuration (stdin) and fills in the defaults. */
export function parseBridgeConfig(config: PluginConfig): BridgeConfig {
  let bridge: string = BRIDGE_DEFAULTS.bridge;
  if (config.bridge !== undefined) {
    if (typeof config.bridge !== "string")
      throw invalid(`bridge must be an interface name such as "cbr0", got ${JSON.stringify(config.bridge)}`);
    const problem = ifnameProblem(config.bridge);
    if (problem) throw invalid(`bridge "${config.bridge}" is not a valid interface name: ${problem}`);
    bridge = config.bridge;
  }
  let mtu: number = BRIDGE_DEFAULTS.mtu;
  if (config.mtu !== undefined) {
    const m = config.mtu;
    if (typeof m !== "number" || !Number.isInteger(m) || m < 68 || m > 65535) {
      const hint = typeof m === "string" ? ` (write ${m} without quotes)` : "";
      throw invalid(`mtu must be a whole number from 68 to 65535, got ${JSON.stringify(m)}${hint}`);
    }
    mtu = m;
  }
  const isGateway = bool(config, "isGateway", BRIDGE_DEFAULTS.isGateway);
  // Without a gateway on the bridge there is no default route, unless asked for explicitly (an error).
  const isDefaultGateway = bool(config, "isDefaultGateway", isGateway && BRIDGE_DEFAULTS.isDefaultGateway);
  if (isDefaultGateway && !isGateway) {
    throw invalid(
      "isDefaultGateway is true but isGateway is false; the default route needs the gateway on the bridge: set isGateway to true or isDefaultGateway to false",
    );
  }
  const ipam = config.ipam;
  if (typeof ipam !== "object" || ipam === null || Array.isArray(ipam)) {
    throw invalid(
      `ipam is required, e.g. "ipam": {"type": "podnet-ipam", "ranges": [[{"subnet": "10.1.0.0/24"}]]}`,
    );
  }
  if (typeof ipam.type !== "string" || ipam.type === "" || /[/\\]/.test(ipam.type)) {
    throw invalid(
      `ipam.type must name an IPAM plugin executable such as "podnet-ipam" or "host-local", got ${JSON.stringify(ipam.type)}`,
    );
  }
  let dns: Dns | undefined;
  try {
    dns = parseDns(config.dns, "dns");
  } catch (e) {
    throw e instanceof CniError ? invalid(e.msg) : e;
  }
  const out: BridgeConfig = {
    network: config.name,
    bridge,
    mtu,
    hairpinMode: bool(config, "hairpinMode", BRIDGE_DEFAULTS.hairpinMode),
    ipMasq: bool(config, "ipMasq", BRIDGE_DEFAULTS.ipMasq),
    isGateway,
    isDefaultGateway,
    ipam: ipam as BridgeConfig["ipam"],
  };
  if (dns && Object.keys(dns).length > 0) out.dns = dns;
  return out;
}
