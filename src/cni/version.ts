// Results across spec versions. Internally a Result has the 1.1.0 shape; it is printed in the version the
// configuration asked for, and results from other plugins (prevResult, a delegated IPAM plugin) in any
// supported version are read back into the 1.1.0 shape.
//
//   0.3.0, 0.3.1, 0.4.0  ips carry "version": "4" | "6"; no 1.1.0 fields
//   1.0.0                no "version" on ips; no 1.1.0 fields
//   1.1.0                interfaces may carry mtu, socketPath, pciID; routes mtu, advmss, priority, table, scope
import {
  CniError,
  compareVersions,
  type Dns,
  ErrorCode,
  type Interface,
  type IpConfig,
  isSupportedVersion,
  type Result,
  type Route,
  SUPPORTED_VERSIONS,
} from "./spec.js";

const INTERFACE_1_1_FIELDS = ["mtu", "socketPath", "pciID"] as const;
const ROUTE_1_1_FIELDS = ["mtu", "advmss", "priority", "table", "scope"] as const;

function familyOf(address: string): "4" | "6" {
  return address.includes(":") ? "6" : "4";
}

function without<T extends object>(o: T, keys: readonly string[]): T {
  const copy = { ...o } as Record<string, unknown>;
  for (const k of keys) delete copy[k];
  return copy as T;
}

/** Encodes a (1.1.0-shaped) result in `version`. Throws CniError(1) for versions podnet does not speak. */
export function convertResult(result: Result, version: string): Result {
  if (!isSupportedVersion(version)) {
    throw new CniError(
      ErrorCode.IncompatibleVersion,
      `cannot encode a result as cniVersion "${version}"; podnet speaks ${SUPPORTED_VERSIONS.join(", ")}`,
    );
  }
  const modern = compareVersions(version, "1.0.0") >= 0;
  const v11 = compareVersions(version, "1.1.0") >= 0;
  const out: Result = { cniVersion: version };
  if (result.interfaces) {
    out.interfaces = result.interfaces.map((i) => (v11 ? { ...i } : without(i, INTERFACE_1_1_FIELDS)));
  }
  if (result.ips) {
    out.ips = result.ips.map((ip) => {
      const { version: _drop, ...rest } = ip;
      if (modern) return rest;
      // 0.x puts "version" first, as libcni does.
      return { version: familyOf(ip.address), ...rest };
    });
  }
  if (result.routes) out.routes = result.routes.map((r) => (v11 ? { ...r } : without(r, ROUTE_1_1_FIELDS)));
  if (result.dns) out.dns = { ...result.dns };
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading results written by others.

function fail(where: string, problem: string): never {
  throw new CniError(ErrorCode.DecodeFailure, `${where}: ${problem}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function optionalString(o: Record<string, unknown>, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") fail(`${where}.${key}`, `expected a string, got ${JSON.stringify(v)}`);
  return v;
}

function optionalNumber(o: Record<string, unknown>, key: string, where: string): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    fail(`${where}.${key}`, `expected a number, got ${JSON.stringify(v)}`);
  }
  return v;
}

function stringList(v: unknown, where: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) fail(where, "expected a list of strings");
  return v as string[];
}

/** Reads a DNS object (result or configuration). */
export function parseDns(v: unknown, where: string): Dns | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) fail(where, "expected an object with nameservers, domain, search, options");
  const dns: Dns = {};
  const nameservers = stringList(v.nameservers, `${where}.nameservers`);
  if (nameservers) dns.nameservers = nameservers;
  const domain = optionalString(v, "domain", where);
  if (domain !== undefined) dns.domain = domain;
  const search = stringList(v.search, `${where}.search`);
  if (search) dns.search = search;
  const options = stringList(v.options, `${where}.options`);
  if (options) dns.options = options;
  return dns;
}

/** Reads one route (result or configuration). */
export function parseRoute(v: unknown, where: string): Route {
  if (!isObject(v))
    fail(where, `expected a route object like {"dst": "0.0.0.0/0"}, got ${JSON.stringify(v)}`);
  const dst = optionalString(v, "dst", where);
  if (dst === undefined) fail(`${where}.dst`, 'is required (a CIDR such as "0.0.0.0/0")');
  const route: Route = { dst };
  const gw = optionalString(v, "gw", where);
  if (gw !== undefined) route.gw = gw;
  for (const k of ROUTE_1_1_FIELDS) {
    const n = optionalNumber(v, k, where);
    if (n !== undefined) route[k] = n;
  }
  return route;
}

/**
 * Reads a result of any supported version (a prevResult, a delegated plugin's output) into the 1.1.0
 * shape. Throws CniError(6) naming the field when the JSON is not a result, and CniError(1) for versions
 * podnet does not read.
 */
export function parseResult(v: unknown, where = "result"): Result {
  if (!isObject(v)) fail(where, `expected a result object, got ${JSON.stringify(v)}`);
  const version = v.cniVersion;
  if (typeof version !== "string") fail(`${where}.cniVersion`, 'is required (a version such as "1.1.0")');
  if (!isSupportedVersion(version)) {
    if (v.ip4 !== undefined || v.ip6 !== undefined || compareVersions(version, "0.3.0") < 0) {
      throw new CniError(
        ErrorCode.IncompatibleVersion,
        `${where} has cniVersion "${version}" (the 0.1/0.2 result format); podnet reads ${SUPPORTED_VERSIONS.join(", ")}`,
      );
    }
    throw new CniError(
      ErrorCode.IncompatibleVersion,
      `${where} has cniVersion "${version}"; podnet reads ${SUPPORTED_VERSIONS.join(", ")}`,
    );
  }
  const result: Result = { cniVersion: "1.1.0" };
  if (v.interfaces !== undefined && v.interfaces !== null) {
    if (!Array.isArray(v.interfaces)) fail(`${where}.interfaces`, "expected a list");
    result.interfaces = v.interfaces.map((raw, i) => {
      const w = `${where}.interfaces[${i}]`;
      if (!isObject(raw)) fail(w, "expected an object with a name");
      const name = optionalString(raw, "name", w);
      if (name === undefined) fail(`${w}.name`, "is required");
      const iface: Interface = { name };
      const mac = optionalString(raw, "mac", w);
      if (mac !== undefined) iface.mac = mac;
      const mtu = optionalNumber(raw, "mtu", w);
      if (mtu !== undefined) iface.mtu = mtu;
      const sandbox = optionalString(raw, "sandbox", w);
      if (sandbox !== undefined) iface.sandbox = sandbox;
      const socketPath = optionalString(raw, "socketPath", w);
      if (socketPath !== undefined) iface.socketPath = socketPath;
      const pciID = optionalString(raw, "pciID", w);
      if (pciID !== undefined) iface.pciID = pciID;
      return iface;
    });
  }
  if (v.ips !== undefined && v.ips !== null) {
    if (!Array.isArray(v.ips)) fail(`${where}.ips`, "expected a list");
    result.ips = v.ips.map((raw, i) => {
      const w = `${where}.ips[${i}]`;
      if (!isObject(raw)) fail(w, "expected an object with an address");
      const address = optionalString(raw, "address", w);
      if (address === undefined)
        fail(`${w}.address`, 'is required (an address with prefix, e.g. "10.1.0.5/24")');
      const ip: IpConfig = { address };
      const gateway = optionalString(raw, "gateway", w);
      if (gateway !== undefined) ip.gateway = gateway;
      const index = optionalNumber(raw, "interface", w);
      if (index !== undefined) ip.interface = index;
      return ip;
    });
  }
  if (v.routes !== undefined && v.routes !== null) {
    if (!Array.isArray(v.routes)) fail(`${where}.routes`, "expected a list");
    result.routes = v.routes.map((r, i) => parseRoute(r, `${where}.routes[${i}]`));
  }
  const dns = parseDns(v.dns, `${where}.dns`);
  if (dns && Object.keys(dns).length > 0) result.dns = dns;
  return result;
}
