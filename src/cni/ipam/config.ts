// podnet-ipam configuration: host-local's shape (`ranges` as a list of range sets, or the `subnet`
// shorthand; `routes`, `dataDir`, `resolvConf`), validated with messages that name the field and the fix.
// Pure apart from reading `resolvConf` (see resolv.ts).
import {
  type Cidr,
  CidrError,
  containsIp,
  type Family,
  familyName,
  formatCidr,
  formatIp,
  hostBits,
  type IpAddress,
  lastAddress,
  parseCidr,
  parseIp,
} from "../../ipam/cidr.js";
import { CniError, ErrorCode, type Route } from "../spec.js";
import { parseRoute } from "../version.js";

export const DEFAULT_DATA_DIR = "/var/lib/cni/networks";

/** One range of a range set, with defaults filled in. */
export interface IpamRange {
  subnet: Cidr;
  /** First address handed out (default: network + 1). */
  start: bigint;
  /** Last address handed out (default: broadcast - 1 for IPv4, the last address for IPv6). */
  end: bigint;
  /** Gateway (default: network + 1); never handed out. */
  gateway: IpAddress;
}

/** Ranges of one family; an ADD gets one address from each range set. */
export interface RangeSet {
  family: Family;
  ranges: IpamRange[];
}

export interface IpamConfig {
  type: string;
  rangeSets: RangeSet[];
  routes: Route[];
  dataDir: string;
  /** A resolv.conf whose nameserver/search/domain/options become the result's dns. */
  resolvConf?: string;
  /** GC keeps unlisted allocations younger than this (seconds; default 0). */
  gcGraceSeconds: number;
}

const EXAMPLE = `"ipam": {"type": "podnet-ipam", "ranges": [[{"subnet": "10.1.0.0/24"}]]}`;

function invalid(msg: string): CniError {
  return new CniError(ErrorCode.InvalidConfig, msg);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describeValue(v: unknown): string {
  if (Array.isArray(v)) return "a list";
  if (v === null) return "null";
  return typeof v === "string" ? `the string ${JSON.stringify(v)}` : `${typeof v} ${JSON.stringify(v)}`;
}

function cidrAt(where: string, v: unknown): Cidr {
  if (typeof v !== "string")
    throw invalid(`${where}: expected a CIDR string like "10.1.0.0/24", got ${describeValue(v)}`);
  try {
    return parseCidr(v);
  } catch (e) {
    if (e instanceof CidrError) throw invalid(`${where}: ${e.message}`);
    throw e;
  }
}

function ipAt(where: string, v: unknown): IpAddress {
  if (typeof v !== "string")
    throw invalid(`${where}: expected an IP address string like "10.1.0.1", got ${describeValue(v)}`);
  try {
    return parseIp(v);
  } catch (e) {
    if (e instanceof CidrError) throw invalid(`${where}: ${e.message}`);
    throw e;
  }
}

function parseRange(where: string, raw: unknown): IpamRange {
  if (!isObject(raw)) {
    throw invalid(
      `${where}: expected a range object like {"subnet": "10.1.0.0/24"}, got ${describeValue(raw)}`,
    );
  }
  if (raw.subnet === undefined) throw invalid(`${where}.subnet is required, e.g. "subnet": "10.1.0.0/24"`);
  const subnet = cidrAt(`${where}.subnet`, raw.subnet);
  const bits = hostBits(subnet.family);
  const net = formatCidr(subnet);
  if (subnet.prefix > bits - 2) {
    throw invalid(
      `${where}.subnet: ${net} is too small to allocate from (it has no address besides network${subnet.family === 4 ? ", broadcast" : ""} and gateway); use a /${bits - 2} or larger`,
    );
  }
  const last = lastAddress(subnet);
  const inside = (name: string, ip: IpAddress): bigint => {
    if (ip.family !== subnet.family) {
      throw invalid(
        `${where}.${name}: ${formatIp(ip)} is ${familyName(ip.family)} but subnet ${net} is ${familyName(subnet.family)}`,
      );
    }
    if (!containsIp(subnet, ip))
      throw invalid(`${where}.${name}: ${formatIp(ip)} is not inside subnet ${net}`);
    return ip.value;
  };
  const gateway =
    raw.gateway === undefined
      ? { family: subnet.family, value: subnet.network + 1n }
      : ipAt(`${where}.gateway`, raw.gateway);
  inside("gateway", gateway);
  const start =
    raw.rangeStart === undefined
      ? subnet.network + 1n
      : inside("rangeStart", ipAt(`${where}.rangeStart`, raw.rangeStart));
  const defaultEnd = subnet.family === 4 ? last - 1n : last;
  const end =
    raw.rangeEnd === undefined ? defaultEnd : inside("rangeEnd", ipAt(`${where}.rangeEnd`, raw.rangeEnd));
  if (start === subnet.network) {
    throw invalid(
      `${where}.rangeStart: ${formatIp({ family: subnet.family, value: start })} is the network address of ${net}; start at the next address or later`,
    );
  }
  if (subnet.family === 4 && end === last) {
    throw invalid(
      `${where}.rangeEnd: ${formatIp({ family: 4, value: end })} is the broadcast address of ${net}; end one address earlier`,
    );
  }
  if (start > end) {
    throw invalid(
      `${where}: rangeStart ${formatIp({ family: subnet.family, value: start })} is after rangeEnd ${formatIp({ family: subnet.family, value: end })}; swap them`,
    );
  }
  return { subnet, start, end, gateway };
}

function describeRange(r: IpamRange): string {
  const f = r.subnet.family;
  return `${formatCidr(r.subnet)} (${formatIp({ family: f, value: r.start })}-${formatIp({ family: f, value: r.end })})`;
}

/** Validates the `ipam` object of a network configuration. Throws CniError(7) naming the field and the fix. */
export function parseIpamConfig(raw: unknown, where = "ipam"): IpamConfig {
  if (!isObject(raw)) throw invalid(`${where} is required and must be an object, e.g. ${EXAMPLE}`);
  if (typeof raw.type !== "string" || raw.type === "")
    throw invalid(`${where}.type is required, e.g. ${EXAMPLE}`);

  // Range sets: `ranges`, plus the `subnet` shorthand (first, as host-local does).
  const setsRaw: { where: string; ranges: unknown[] }[] = [];
  if (raw.subnet !== undefined) {
    setsRaw.push({
      where,
      ranges: [
        { subnet: raw.subnet, rangeStart: raw.rangeStart, rangeEnd: raw.rangeEnd, gateway: raw.gateway },
      ],
    });
  }
  if (raw.ranges !== undefined) {
    if (!Array.isArray(raw.ranges)) {
      throw invalid(
        `${where}.ranges must be a list of range sets (each a list of ranges), e.g. "ranges": [[{"subnet": "10.1.0.0/24"}]]`,
      );
    }
    raw.ranges.forEach((set, i) => {
      if (!Array.isArray(set)) {
        const hint = isObject(set) ? ` (wrap it in a list: [${JSON.stringify(set)}])` : "";
        throw invalid(`${where}.ranges[${i}] must be a list of ranges${hint}`);
      }
      if (set.length === 0) throw invalid(`${where}.ranges[${i}] is empty; add at least one {"subnet": …}`);
      setsRaw.push({ where: `${where}.ranges[${i}]`, ranges: set });
    });
  }
  if (setsRaw.length === 0) {
    throw invalid(`${where}.ranges is required: the address ranges to allocate from, e.g. ${EXAMPLE}`);
  }
  const rangeSets: RangeSet[] = [];
  const located: { range: IpamRange; where: string }[] = [];
  for (const s of setsRaw) {
    const ranges: IpamRange[] = [];
    s.ranges.forEach((r, j) => {
      // The shorthand's fields live on the ipam object itself.
      const w = s.where === where ? where : `${s.where}[${j}]`;
      const clean = isObject(r)
        ? Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined))
        : r;
      const range = parseRange(w, clean);
      const family = ranges[0]?.subnet.family ?? range.subnet.family;
      if (range.subnet.family !== family) {
        const fam = familyName(family);
        throw invalid(
          `${w}: ${familyName(range.subnet.family)} subnet ${formatCidr(range.subnet)} is in a set of ${fam} ranges; a range set holds one family, so put it in its own set: "ranges": [[…${fam}…], [{"subnet": "${formatCidr(range.subnet)}"}]]`,
        );
      }
      ranges.push(range);
      located.push({ range, where: w });
    });
    rangeSets.push({ family: ranges[0]?.subnet.family ?? 4, ranges });
  }
  // No two ranges may overlap (in one set or across sets).
  for (let a = 0; a < located.length; a++) {
    for (let b = a + 1; b < located.length; b++) {
      const x = located[a];
      const y = located[b];
      if (!x || !y || x.range.subnet.family !== y.range.subnet.family) continue;
      if (x.range.start <= y.range.end && y.range.start <= x.range.end) {
        throw invalid(
          `${y.where}: range ${describeRange(y.range)} overlaps ${x.where} ${describeRange(x.range)}; make the ranges disjoint`,
        );
      }
    }
  }

  const routes: Route[] = [];
  if (raw.routes !== undefined) {
    if (!Array.isArray(raw.routes))
      throw invalid(`${where}.routes must be a list like [{"dst": "0.0.0.0/0"}]`);
    raw.routes.forEach((r, i) => {
      const w = `${where}.routes[${i}]`;
      let route: Route;
      try {
        route = parseRoute(r, w);
      } catch (e) {
        throw e instanceof CniError ? invalid(e.msg) : e;
      }
      cidrAt(`${w}.dst`, route.dst);
      if (route.gw !== undefined) ipAt(`${w}.gw`, route.gw);
      routes.push(route);
    });
  }

  let dataDir = DEFAULT_DATA_DIR;
  if (raw.dataDir !== undefined) {
    if (typeof raw.dataDir !== "string" || !raw.dataDir.startsWith("/")) {
      throw invalid(
        `${where}.dataDir must be an absolute path such as "${DEFAULT_DATA_DIR}", got ${describeValue(raw.dataDir)}`,
      );
    }
    dataDir = raw.dataDir;
  }
  const config: IpamConfig = { type: raw.type, rangeSets, routes, dataDir, gcGraceSeconds: 0 };
  if (raw.resolvConf !== undefined) {
    if (typeof raw.resolvConf !== "string" || raw.resolvConf === "") {
      throw invalid(
        `${where}.resolvConf must be the path of a resolv.conf file, got ${describeValue(raw.resolvConf)}`,
      );
    }
    config.resolvConf = raw.resolvConf;
  }
  if (raw.gcGraceSeconds !== undefined) {
    const g = raw.gcGraceSeconds;
    if (typeof g !== "number" || !Number.isFinite(g) || g < 0) {
      throw invalid(
        `${where}.gcGraceSeconds must be a number of seconds (0 or more), got ${describeValue(g)}`,
      );
    }
    config.gcGraceSeconds = g;
  }
  return config;
}

/** Human-readable description of a range set, for messages. */
export function describeRangeSet(set: RangeSet): string {
  return set.ranges.map(describeRange).join(", ");
}

/** Number of addresses a range set can hand out (excluding gateways inside the ranges). */
export function rangeSetCapacity(set: RangeSet): bigint {
  let n = 0n;
  for (const r of set.ranges) {
    n += r.end - r.start + 1n;
    if (r.gateway.value >= r.start && r.gateway.value <= r.end) n -= 1n;
  }
  return n;
}
