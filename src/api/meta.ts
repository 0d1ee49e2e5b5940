/** metadata: name, namespace, labels, annotations — validated as the API server does. */

import type { Field, ObjCtx } from "./context.js";
import { CLUSTER_ANNOTATION, DEFAULT_NAMESPACE } from "./defaults.js";
import type { SourceLocation } from "./diagnostics.js";
import { type Meta, objectRef } from "./types.js";
import {
  checkName,
  dns1123Label,
  labelValue,
  type NameRule,
  qualifiedName,
  suggestName,
} from "./validate.js";

export interface ReadMeta {
  name?: string;
  namespace?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** The `podnet.dev/cluster` annotation. */
  cluster?: string;
}

/** The `meta` of a cluster-scoped object; the loader fills in `cluster` later. */
export function clusterScopedMeta(meta: ReadMeta, source: SourceLocation): Meta {
  return { name: meta.name ?? "", cluster: "", labels: meta.labels, annotations: meta.annotations, source };
}

/** The `meta` of a namespaced object (namespace defaulted to `default`). */
export function namespacedMeta(meta: ReadMeta, source: SourceLocation): Meta & { namespace: string } {
  return { ...clusterScopedMeta(meta, source), namespace: meta.namespace ?? DEFAULT_NAMESPACE };
}

const MAX_ANNOTATIONS_BYTES = 256 * 1024;

/** Validates a name against a Kubernetes naming rule, reporting at `f`. */
export function checkNameField(f: Field, rule: NameRule, value: string, what = "name"): boolean {
  const errs = checkName(rule, value);
  if (errs.length === 0) return true;
  const fix = suggestName(rule, value);
  f.error(`invalid ${what} ${JSON.stringify(value)}: ${errs.join("; ")}`, fix ? `use "${fix}"` : undefined);
  return false;
}

/** Label maps (metadata.labels, selectors): keys are qualified names, values label values. */
export function readLabels(f: Field): Record<string, string> {
  const m = f.strMap();
  if (!m) return {};
  for (const [k, v] of Object.entries(m)) {
    const e = f.entry(k);
    const keyErrs = qualifiedName(k);
    if (keyErrs.length > 0) e.error(`invalid label key ${JSON.stringify(k)}: ${keyErrs.join("; ")}`);
    const valErrs = labelValue(v);
    if (valErrs.length > 0) {
      const fix = v
        .replace(/[^-A-Za-z0-9_.]+/g, "-")
        .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, "")
        .slice(0, 63)
        .replace(/[^A-Za-z0-9]+$/, "");
      e.error(
        `invalid label value ${JSON.stringify(v)}: ${valErrs.join("; ")}`,
        fix !== v && labelValue(fix).length === 0 ? `use "${fix}"` : undefined,
      );
    }
  }
  return m;
}

export function readAnnotations(f: Field): Record<string, string> {
  const m = f.strMap();
  if (!m) return {};
  let size = 0;
  for (const [k, v] of Object.entries(m)) {
    size += k.length + v.length;
    const keyErrs = qualifiedName(k);
    if (keyErrs.length > 0)
      f.entry(k).error(`invalid annotation key ${JSON.stringify(k)}: ${keyErrs.join("; ")}`);
  }
  if (size > MAX_ANNOTATIONS_BYTES)
    f.error(`annotations may not exceed ${MAX_ANNOTATIONS_BYTES} bytes (found ${size})`);
  return m;
}

/** Reads `metadata`, defaulting the namespace of namespaced kinds, and sets the object's `ref`. */
export function readMetadata(o: ObjCtx, rule: NameRule, namespaced: boolean): ReadMeta {
  // Name the object in diagnostics before validating (even an invalid name identifies it).
  const rawMd = o.raw.value.metadata as Record<string, unknown> | null | undefined;
  const rawName = typeof rawMd?.name === "string" ? rawMd.name : "";
  const rawNs = namespaced && typeof rawMd?.namespace === "string" ? rawMd.namespace : "";
  o.ref = objectRef(o.kind, {
    name: rawName || "<unnamed>",
    namespace: namespaced ? rawNs || DEFAULT_NAMESPACE : undefined,
  });
  const md = o.root.get("metadata").map();
  const out: ReadMeta = { labels: {}, annotations: {} };
  const nameF = md.get("name");
  const name = nameF.str();
  if (nameF.v === undefined || nameF.v === null || name === "") {
    const gen = md.get("generateName").str();
    nameF.required(
      "Required value: name or generateName is required",
      gen !== undefined
        ? `podnet needs fixed names: replace generateName: ${gen} with name: ${gen.replace(/-$/, "")}`
        : "add metadata.name",
    );
  } else if (name !== undefined) {
    checkNameField(nameF, rule, name);
    out.name = name;
  }
  if (namespaced) {
    const nsF = md.get("namespace");
    const ns = nsF.str();
    if (ns === undefined || ns === "") out.namespace = DEFAULT_NAMESPACE;
    else {
      const errs = dns1123Label(ns);
      if (errs.length > 0) {
        const fix = suggestName("dns1123Label", ns);
        nsF.error(
          `invalid namespace ${JSON.stringify(ns)}: ${errs.join("; ")}`,
          fix ? `use "${fix}"` : undefined,
        );
      }
      out.namespace = ns;
    }
  } else if (md.get("namespace").set) {
    md.get("namespace").warning(
      `${o.kind} is cluster-scoped: metadata.namespace is ignored`,
      "remove metadata.namespace",
    );
  }
  out.labels = readLabels(md.get("labels"));
  out.annotations = readAnnotations(md.get("annotations"));
  const cluster = out.annotations[CLUSTER_ANNOTATION];
  if (cluster !== undefined) {
    out.cluster = cluster;
    const errs = dns1123Label(cluster);
    if (errs.length > 0)
      md.get("annotations")
        .entry(CLUSTER_ANNOTATION)
        .error(`invalid cluster name ${JSON.stringify(cluster)}: ${errs.join("; ")}`);
  }
  o.ref = objectRef(o.kind, { name: name || "<unnamed>", namespace: out.namespace });
  return out;
}
