/**
 * The lab's embedded store: the desired state as the manifest objects applied so far (kubectl apply
 * semantics: an object replaces the one with the same key), plus what the lab has built (the address
 * plan it used, the pods it attached). One JSON file in the lab's directory, written atomically
 * (temp file + rename), so a killed process leaves the last complete version behind.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import type { Diagnostic } from "../api/diagnostics.js";
import { parseSource, type Source } from "../api/source.js";
import type { Protocol } from "../api/types.js";
import type { AddressPlan } from "../plan/types.js";
import { clusterDnsObjects } from "./cluster-dns.js";
import { labDir } from "./names.js";

export const CLUSTER_ANNOTATION = "podnet.dev/cluster";

/** One manifest object as written by the user, with where it came from. */
export interface StoredObject {
  key: string;
  value: Record<string, unknown>;
  /** `file:line` of the apply that wrote it. */
  from: string;
}

/** A pod the lab attached (its namespace exists and CNI ADD succeeded). */
export interface AppliedPod {
  cluster: string;
  namespace: string;
  name: string;
  node: string;
  netns: string;
  containerID: string;
  ips: string[];
  hostNetwork: boolean;
  ports: { port: number; protocol: Protocol }[];
}

export interface LabState {
  version: 1;
  lab: string;
  objects: StoredObject[];
  /** The address plan of the last converge: the `previous` of the next one. */
  plan?: AddressPlan;
  pods: AppliedPod[];
  /** External hosts with ports: the agent runs responders in them too (namespace "external"). */
  externals?: AppliedPod[];
  /** Plan errors the lab was built despite (`lab up --allow CODE`), kept for later changes. */
  allow?: string[];
}

export function storePath(lab: string): string {
  return `${labDir(lab)}/store.json`;
}

export function readLabState(lab: string): LabState | undefined {
  const path = storePath(lab);
  if (!existsSync(path)) return undefined;
  const state = JSON.parse(readFileSync(path, "utf8")) as LabState;
  if (state.version !== 1) throw new Error(`${path}: unknown store version ${String(state.version)}`);
  return state;
}

export function writeLabState(state: LabState): void {
  const path = storePath(state.lab);
  mkdirSync(labDir(state.lab), { recursive: true });
  writeFileSync(`${path}.tmp`, JSON.stringify(state));
  renameSync(`${path}.tmp`, path);
}

export function emptyLabState(lab: string): LabState {
  return { version: 1, lab, objects: [], pods: [] };
}

/** The key of a manifest object: cluster annotation, kind, namespace and name. */
export function objectKey(value: Record<string, unknown>): string | undefined {
  const kind = value.kind;
  const meta = value.metadata as Record<string, unknown> | undefined;
  if (typeof kind !== "string" || !meta || typeof meta.name !== "string") return undefined;
  const annotations = (meta.annotations ?? {}) as Record<string, unknown>;
  const cluster = typeof annotations[CLUSTER_ANNOTATION] === "string" ? annotations[CLUSTER_ANNOTATION] : "";
  const ns = typeof meta.namespace === "string" ? meta.namespace : "";
  return `${cluster}/${kind}/${ns}/${meta.name}`;
}

/** Splits sources into keyed objects (a `List` into its items); parse errors go to `diags`. */
export function objectsOf(sources: readonly Source[], diags: Diagnostic[]): StoredObject[] {
  const out: StoredObject[] = [];
  sources.forEach((src, i) => {
    for (const doc of parseSource(src, i, diags)) {
      const v = doc.value as Record<string, unknown> | null;
      if (!v || typeof v !== "object") continue;
      const items =
        typeof v.kind === "string" && v.kind.endsWith("List") && Array.isArray(v.items)
          ? (v.items as Record<string, unknown>[])
          : [v];
      for (const item of items) {
        const key = objectKey(item);
        // Objects without kind or name: the loader reports them with their line.
        if (key) out.push({ key, value: item, from: `${src.file}:${doc.line}` });
      }
    }
  });
  return out;
}

/**
 * The store as a manifest source, for the loader (diagnostics then name `<lab store>`), with the objects
 * the lab adds to every cluster: its DNS pod and the kube-dns Service (cluster-dns.ts).
 */
export function storeSource(lab: string, objects: readonly StoredObject[], withClusterDns = true): Source {
  const items = objects.map((o) => o.value);
  if (withClusterDns) items.push(...clusterDnsObjects(objects));
  return { file: `<lab ${lab} store>`, text: JSON.stringify({ apiVersion: "v1", kind: "List", items }) };
}

/** The lab's own objects (the DNS pod and Service of each cluster) for `objects`, as a manifest source. */
export function clusterDnsSource(lab: string, objects: readonly StoredObject[]): Source {
  const items = clusterDnsObjects(objects);
  return {
    file: `<lab ${lab} cluster DNS>`,
    text: JSON.stringify({ apiVersion: "v1", kind: "List", items }),
  };
}

/** `existing` with `applied` put in (replacing same keys), or with `deleted` keys taken out. */
export function mergeObjects(
  existing: readonly StoredObject[],
  change: { applied?: readonly StoredObject[]; deleted?: readonly string[] },
): StoredObject[] {
  const byKey = new Map(existing.map((o) => [o.key, o]));
  for (const o of change.applied ?? []) byKey.set(o.key, o);
  for (const k of change.deleted ?? []) byKey.delete(k);
  return [...byKey.values()];
}
