/**
 * podnet's API layer: Kubernetes-style manifests in, validated and defaulted `DesiredState` out,
 * with diagnostics that name file, line, object and field.
 */
export * from "./defaults.js";
export * from "./diagnostics.js";
export {
  type LoadOptions,
  type LoadResult,
  loadManifestFiles,
  loadManifestSources,
  loadManifestText,
} from "./loader.js";
export { isEmptySelector, matchesSelector } from "./selector.js";
export type { Source } from "./source.js";
export * from "./types.js";
