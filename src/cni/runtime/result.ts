/**
 * Results a plugin printed: their shape is checked here; conversion between versions (0.3.x and 0.4.0
 * carry `ips[].version`, 1.1.0 adds interface and route fields) is the one the plugins use.
 */
export { convertResult } from "../version.js";

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
