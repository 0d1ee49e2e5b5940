/**
 * Results between versions: a plugin answers in the version it was asked for, a cached result may be
 * older than the configuration. 0.3.x and 0.4.0 carry `ips[].version` ("4"/"6"); 1.x does not.
 */
import type { Result } from "../spec.js";
import { atLeast } from "./negotiate.js";

/** The result as version `to` (a copy; the input is not changed). */
export function convertResult(result: Result, to: string): Result {
  const out: Result = { ...result, cniVersion: to };
  if (result.ips) {
    out.ips = result.ips.map((ip) => {
      const { version: _drop, ...rest } = ip;
      if (atLeast(to, "1.0.0")) return rest;
      return { ...rest, version: ip.address.includes(":") ? "6" : "4" };
    });
  }
  return out;
}

/** Checks the shape of a result printed by a plugin; returns a message when it is not one. */
export function resultShapeError(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "not a JSON object";
  const r = value as Record<string, unknown>;
  if (typeof r.cniVersion !== "string") return 'no "cniVersion"';
  for (const key of ["interfaces", "ips", "routes"] as const)
    if (r[key] !== undefined && !Array.isArray(r[key])) return `"${key}" is not a list`;
  if (Array.isArray(r.ips))
    for (const ip of r.ips)
      if (typeof ip !== "object" || ip === null || typeof (ip as { address?: unknown }).address !== "string")
        return 'an entry of "ips" has no "address"';
  return undefined;
}
