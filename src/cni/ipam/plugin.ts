// podnet-ipam: ADD, DEL, CHECK, STATUS and GC over the on-disk store (store.ts). Used in-process by the
// podnet main plugin and, through `handlers`, as the `podnet-ipam` executable for any main plugin.
import { accessSync, constants } from "node:fs";
import { dirname } from "node:path";
import {
  containsIp,
  type Family,
  familyName,
  formatIp,
  type IpAddress,
  tryParseIp,
} from "../../ipam/cidr.js";
import { type CniRequest, type PluginHandlers, validAttachments } from "../skel.js";
import {
  type Attachment,
  CniError,
  ErrorCode,
  type IpConfig,
  type PluginConfig,
  type Result,
} from "../spec.js";
import { parseResult } from "../version.js";
import {
  describeRangeSet,
  type IpamConfig,
  type IpamRange,
  parseIpamConfig,
  type RangeSet,
  rangeSetCapacity,
} from "./config.js";
import { readResolvConf } from "./resolv.js";
import { type Allocation, AllocationStore, type Owner, sameOwner } from "./store.js";

/** Who is asking: the network (the store's directory) and the attachment. */
export interface IpamRequest {
  network: string;
  containerId: string;
  ifname: string;
  /** Addresses asked for explicitly (CNI_ARGS IP=, runtimeConfig.ips, args.cni.ips). */
  requestedIps?: IpAddress[];
}

function rangeOf(set: RangeSet, ip: IpAddress): IpamRange | undefined {
  if (ip.family !== set.family) return undefined;
  return set.ranges.find((r) => ip.value >= r.start && ip.value <= r.end);
}

function inSet(set: RangeSet, ip: IpAddress): boolean {
  const r = rangeOf(set, ip);
  return r !== undefined && r.gateway.value !== ip.value;
}

/**
 * Candidate addresses of a range set in round-robin order: after `last` (when it is in the set), through
 * every range, wrapping around, skipping gateways and `used`. Lazy: an IPv6 /64 costs nothing.
 */
export function* candidates(
  set: RangeSet,
  last: IpAddress | undefined,
  used: ReadonlySet<bigint>,
): Generator<IpAddress> {
  const ranges = set.ranges;
  let ri = 0;
  let next = ranges[0]?.start ?? 0n;
  if (last && last.family === set.family) {
    const i = ranges.findIndex((r) => last.value >= r.start && last.value <= r.end);
    if (i >= 0) {
      ri = i;
      next = last.value + 1n;
    }
  }
  let total = 0n;
  for (const r of ranges) total += r.end - r.start + 1n;
  for (let n = 0n; n < total; n++) {
    let r = ranges[ri];
    if (!r) return;
    if (next > r.end) {
      ri = (ri + 1) % ranges.length;
      r = ranges[ri];
      if (!r) return;
      next = r.start;
    }
    const value = next;
    next++;
    if (value === r.gateway.value || used.has(value)) continue;
    yield { family: set.family, value };
  }
}

function prefixOf(set: RangeSet, ip: IpAddress): IpamRange {
  const r = rangeOf(set, ip) ?? set.ranges.find((x) => containsIp(x.subnet, ip));
  if (!r) throw new Error(`${formatIp(ip)} is not in range set ${describeRangeSet(set)}`);
  return r;
}

function ipConfig(set: RangeSet, ip: IpAddress): IpConfig {
  const r = prefixOf(set, ip);
  return { address: `${formatIp(ip)}/${r.subnet.prefix}`, gateway: formatIp(r.gateway) };
}

function owns(a: Allocation, owner: Owner): boolean {
  return (
    a.owner !== undefined && a.owner.containerID === owner.containerID && a.owner.ifname === owner.ifname
  );
}

/** The set each allocation belongs to (index), or -1. */
function setIndexOf(config: IpamConfig, ip: IpAddress): number {
  return config.rangeSets.findIndex((s) => inSet(s, ip));
}

/** Allocates one address per range set (or returns the existing allocation of the same attachment). */
export function ipamAdd(config: IpamConfig, req: IpamRequest): Result {
  return ipamAllocate(config, req).result;
}

/**
 * ipamAdd, also saying which addresses this call allocated (`fresh`) as opposed to ones the attachment
 * held already: a failed ADD releases only those, so a repeated ADD of a live attachment cannot free the
 * addresses it is using.
 */
export function ipamAllocate(config: IpamConfig, req: IpamRequest): { result: Result; fresh: IpAddress[] } {
  const store = new AllocationStore(config.dataDir, req.network);
  const owner: Owner = { containerID: req.containerId, ifname: req.ifname };
  const existing = store.list(true);
  const chosen: (IpAddress | undefined)[] = config.rangeSets.map(() => undefined);
  for (const a of existing) {
    if (!owns(a, owner)) continue;
    const i = setIndexOf(config, a.ip);
    if (i >= 0 && chosen[i] === undefined) chosen[i] = a.ip;
  }
  // Requested addresses go to the set that contains them.
  const requested: (IpAddress | undefined)[] = config.rangeSets.map(() => undefined);
  for (const ip of req.requestedIps ?? []) {
    const i = setIndexOf(config, ip);
    if (i < 0) {
      throw new CniError(
        ErrorCode.AddressUnavailable,
        `requested address ${formatIp(ip)} is not in any range of network "${req.network}" (${config.rangeSets.map(describeRangeSet).join("; ")}), or is a gateway`,
      );
    }
    if (requested[i] !== undefined) {
      throw new CniError(
        ErrorCode.AddressUnavailable,
        `two requested addresses fall in the same range set (${describeRangeSet(config.rangeSets[i] as RangeSet)}); request one per set`,
      );
    }
    requested[i] = ip;
  }
  const fresh: IpAddress[] = [];
  try {
    config.rangeSets.forEach((set, i) => {
      if (chosen[i] !== undefined) return;
      const want = requested[i];
      if (want) {
        const got = store.reserveFirst([want], owner);
        if (!got) {
          const holder = store.readOwner(formatIp(want));
          const who = holder ? ` by container ${holder.containerID} interface ${holder.ifname}` : "";
          throw new CniError(
            ErrorCode.AddressUnavailable,
            `requested address ${formatIp(want)} is already allocated${who} in network "${req.network}"`,
          );
        }
        chosen[i] = got;
        fresh.push(got);
        return;
      }
      const got = reserveInSet(store, set, i, existing, owner, req.network);
      chosen[i] = got;
      fresh.push(got);
      store.setLastReserved(i, got);
    });
  } catch (e) {
    for (const ip of fresh) store.release(formatIp(ip), owner);
    throw e;
  }
  const result: Result = {
    cniVersion: "1.1.0",
    ips: config.rangeSets.map((set, i) => ipConfig(set, chosen[i] as IpAddress)),
  };
  if (config.routes.length > 0) result.routes = config.routes.map((r) => ({ ...r }));
  if (config.resolvConf) {
    try {
      const dns = readResolvConf(config.resolvConf);
      if (Object.keys(dns).length > 0) result.dns = dns;
    } catch (e) {
      for (const ip of fresh) store.release(formatIp(ip), owner);
      throw new CniError(
        ErrorCode.InvalidConfig,
        `ipam.resolvConf: cannot read ${config.resolvConf}: ${(e as Error).message}`,
      );
    }
  }
  return { result, fresh };
}

/** How many times allocation starts over from a fresh directory listing after losing every race. */
const MAX_PASSES = 50;

/**
 * Reserves one address of a range set. Candidates come from a directory listing; under contention other
 * processes may take every candidate of a listing (and free others meanwhile), so the search starts over
 * from a fresh listing. Exhaustion is reported only when a listing shows no free address at all.
 */
function reserveInSet(
  store: AllocationStore,
  set: RangeSet,
  index: number,
  listing: Allocation[],
  owner: Owner,
  network: string,
): IpAddress {
  let current = listing;
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    const used = new Set<bigint>();
    for (const a of current) if (a.ip.family === set.family) used.add(a.ip.value);
    let tried = 0;
    const counted = (function* () {
      for (const ip of candidates(set, store.lastReserved(index), used)) {
        tried++;
        yield ip;
      }
    })();
    const got = store.reserveFirst(counted, owner);
    if (got) return got;
    if (tried === 0) {
      const capacity = rangeSetCapacity(set);
      throw new CniError(
        ErrorCode.RangeExhausted,
        `no free ${familyName(set.family)} address in network "${network}": all ${capacity} addresses of ${describeRangeSet(set)} are allocated; widen the range or release addresses (DEL, or GC with the attachments in use)`,
      );
    }
    current = store.list(false);
  }
  throw new CniError(
    ErrorCode.TryAgainLater,
    `network "${network}": other processes took every free address first, ${MAX_PASSES} times in a row; try again`,
  );
}

/** Releases the given addresses if the attachment still holds them (the rollback of a failed ADD). */
export function ipamRelease(config: IpamConfig, req: IpamRequest, ips: readonly IpAddress[]): void {
  const store = new AllocationStore(config.dataDir, req.network);
  const owner: Owner = { containerID: req.containerId, ifname: req.ifname };
  for (const ip of ips) store.release(formatIp(ip), owner);
}

/** Releases every address of the attachment; returns the released addresses (none is not an error). */
export function ipamDel(config: IpamConfig, req: IpamRequest): IpAddress[] {
  const store = new AllocationStore(config.dataDir, req.network);
  const owner: Owner = { containerID: req.containerId, ifname: req.ifname };
  const released: IpAddress[] = [];
  for (const a of store.list(true)) {
    if (a.owner && sameOwner(a.owner, owner) && store.release(a.file, owner)) released.push(a.ip);
  }
  return released;
}

/** The addresses currently allocated to the attachment. */
export function ipamLookup(config: IpamConfig, req: IpamRequest): IpAddress[] {
  const store = new AllocationStore(config.dataDir, req.network);
  const owner: Owner = { containerID: req.containerId, ifname: req.ifname };
  return store
    .list(true)
    .filter((a) => owns(a, owner))
    .map((a) => a.ip);
}

/** CHECK: the attachment holds an address in every range set (and the ones prevResult lists). */
export function ipamCheck(config: IpamConfig, req: IpamRequest, prevResult?: Result): void {
  const held = ipamLookup(config, req);
  const who = `container ${req.containerId} interface ${req.ifname}`;
  config.rangeSets.forEach((set, i) => {
    if (!held.some((ip) => setIndexOf(config, ip) === i)) {
      throw new CniError(
        ErrorCode.CheckFailed,
        `no ${familyName(set.family)} address of network "${req.network}" is allocated to ${who} (range ${describeRangeSet(set)}); the allocation was released or lost: delete and re-add the pod`,
      );
    }
  });
  for (const ip of prevResult?.ips ?? []) {
    const addr = tryParseIp(ip.address.split("/")[0] ?? "");
    if (!addr || setIndexOf(config, addr) < 0) continue;
    if (!held.some((h) => h.family === addr.family && h.value === addr.value)) {
      throw new CniError(
        ErrorCode.CheckFailed,
        `${formatIp(addr)} (from prevResult) is no longer allocated to ${who} in network "${req.network}"; delete and re-add the pod`,
      );
    }
  }
}

function writableProblem(dir: string): string | undefined {
  let d = dir;
  for (;;) {
    try {
      accessSync(d, constants.W_OK);
      return undefined;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") return `${d} is not writable (${code})`;
      const parent = dirname(d);
      if (parent === d) return `${dir} cannot be created`;
      d = parent;
    }
  }
}

/** STATUS: error 50 when the data directory is not writable or a range set has no free address. */
export function ipamStatus(config: IpamConfig, network: string): void {
  const store = new AllocationStore(config.dataDir, network);
  const problem = writableProblem(store.dir);
  if (problem) {
    throw new CniError(
      ErrorCode.PluginNotAvailable,
      `podnet-ipam cannot store allocations: ${problem}; fix ipam.dataDir or its permissions`,
    );
  }
  const all = store.list(false);
  config.rangeSets.forEach((set) => {
    const used = new Set<bigint>();
    for (const a of all) if (inSet(set, a.ip)) used.add(a.ip.value);
    const capacity = rangeSetCapacity(set);
    if (BigInt(used.size) >= capacity) {
      throw new CniError(
        ErrorCode.PluginNotAvailable,
        `network "${network}" has no free ${familyName(set.family)} address: all ${capacity} addresses of ${describeRangeSet(set)} are allocated; widen the range or release addresses (DEL, or GC)`,
      );
    }
  });
}

/** GC: releases every allocation whose attachment is not in `valid`. Returns the released addresses. */
export function ipamGc(config: IpamConfig, network: string, valid: readonly Attachment[]): IpAddress[] {
  const store = new AllocationStore(config.dataDir, network);
  const keep = new Set(valid.map((a) => `${a.containerID}\n${a.ifname}`));
  const keepIds = new Set(valid.map((a) => a.containerID));
  const graceMs = config.gcGraceSeconds * 1000;
  const now = Date.now();
  const released: IpAddress[] = [];
  for (const a of store.list(true)) {
    const o = a.owner;
    if (o && (keep.has(`${o.containerID}\n${o.ifname}`) || (o.ifname === "" && keepIds.has(o.containerID))))
      continue;
    if (graceMs > 0) {
      const mtime = store.mtimeMs(a.file);
      if (mtime !== undefined && now - mtime < graceMs) continue;
    }
    if (store.release(a.file, o)) released.push(a.ip);
  }
  store.cleanTempFiles();
  return released;
}

// ---------------------------------------------------------------------------------------------
// The executable.

function parseRequestedIp(text: string, where: string): IpAddress {
  const ip = tryParseIp(text.split("/")[0] ?? "");
  if (!ip) throw new CniError(ErrorCode.InvalidConfig, `${where}: "${text}" is not an IP address`);
  return ip;
}

/** Addresses the runtime asked for: CNI_ARGS IP=a,b; runtimeConfig.ips; args.cni.ips. */
export function requestedIps(config: PluginConfig, cniArgs: Record<string, string>): IpAddress[] {
  const out: IpAddress[] = [];
  if (cniArgs.IP) {
    for (const t of cniArgs.IP.split(",")) if (t) out.push(parseRequestedIp(t, "CNI_ARGS IP"));
  }
  const lists: [unknown, string][] = [
    [config.runtimeConfig?.ips, "runtimeConfig.ips"],
    [(config.args?.cni as { ips?: unknown } | undefined)?.ips, "args.cni.ips"],
  ];
  for (const [list, where] of lists) {
    if (list === undefined) continue;
    if (!Array.isArray(list))
      throw new CniError(ErrorCode.InvalidConfig, `${where} must be a list of addresses`);
    for (const t of list) {
      if (typeof t !== "string")
        throw new CniError(ErrorCode.InvalidConfig, `${where} must be a list of address strings`);
      out.push(parseRequestedIp(t, where));
    }
  }
  return out;
}

export function ipamRequest(req: CniRequest): IpamRequest {
  return { network: req.config.name, containerId: req.containerId, ifname: req.ifname };
}

/** Families of a configuration's range sets (for callers that need to know before ADD). */
export function families(config: IpamConfig): Family[] {
  return config.rangeSets.map((s) => s.family);
}

export const ipamHandlers: PluginHandlers = {
  name: "podnet-ipam",
  async add(req) {
    const config = parseIpamConfig(req.config.ipam);
    return ipamAdd(config, { ...ipamRequest(req), requestedIps: requestedIps(req.config, req.args) });
  },
  async del(req) {
    ipamDel(parseIpamConfig(req.config.ipam), ipamRequest(req));
  },
  async check(req) {
    const prev =
      req.config.prevResult === undefined ? undefined : parseResult(req.config.prevResult, "prevResult");
    ipamCheck(parseIpamConfig(req.config.ipam), ipamRequest(req), prev);
  },
  async status(req) {
    ipamStatus(parseIpamConfig(req.config.ipam), req.config.name);
  },
  async gc(req) {
    ipamGc(parseIpamConfig(req.config.ipam), req.config.name, validAttachments(req.config));
  },
};
