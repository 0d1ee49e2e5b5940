/**
 * Version selection (SPEC 1.1.0, "Version considerations"): the runtime picks the highest version of
 * `cniVersions` that it supports; `cniVersion` counts too (libcni adds it to the candidates), and alone
 * it is the version. A list with no version the runtime speaks is rejected (code 1).
 */
import { CniError, compareVersions, ErrorCode, type NetworkConfigList, SUPPORTED_VERSIONS } from "../spec.js";

export function selectVersion(
  list: Pick<NetworkConfigList, "name" | "cniVersion" | "cniVersions">,
  supported: readonly string[] = SUPPORTED_VERSIONS,
): string {
  const offered = [...(list.cniVersions ?? []), ...(list.cniVersion ? [list.cniVersion] : [])];
  const usable = offered.filter((v) => supported.includes(v)).sort(compareVersions);
  const chosen = usable[usable.length - 1];
  if (chosen !== undefined) return chosen;
  const what = [
    list.cniVersions?.length ? `cniVersions ${list.cniVersions.join(", ")}` : "",
    list.cniVersion ? `cniVersion ${list.cniVersion}` : "",
  ]
    .filter(Boolean)
    .join(" and ");
  throw new CniError(
    ErrorCode.IncompatibleVersion,
    `network "${list.name}": no version this runtime supports (it offers ${what || "none"}; the runtime speaks ${supported.join(", ")})`,
    `fix: set "cniVersion" (or add to "cniVersions") one of ${supported.join(", ")}`,
  );
}

/** True when `version` is at least `min` ("0.4.0" for CHECK and prevResult on DEL, "1.1.0" for GC, STATUS). */
export function atLeast(version: string, min: string): boolean {
  return compareVersions(version, min) >= 0;
}
