/**
 * Deployments and StatefulSets, validated once and expanded into Pods deterministically:
 * Deployment pods are `<name>-<pod-template-hash>-<5 chars>` (as the ReplicaSet controller names
 * them, with the random suffix replaced by one derived from the hash and the replica index);
 * StatefulSet pods are `<name>-<i>` with hostname = pod name and subdomain = serviceName.
 */
import type { ObjCtx } from "./context.js";
import type { SourceLocation } from "./diagnostics.js";
import { checkNameField, type ReadMeta, readAnnotations, readLabels } from "./meta.js";
import { type PodSpec, readPodSpec, readReady } from "./pod.js";
import { isEmptySelector, matchesSelector, readSelector } from "./selector.js";
import type { LabelSelector, Pod } from "./types.js";
import { dns1123Subdomain } from "./validate.js";

export interface Workload {
  kind: "Deployment" | "StatefulSet";
  name: string;
  namespace: string;
  cluster: string;
  labels: Record<string, string>;
  replicas: number;
  selector: LabelSelector;
  templateLabels: Record<string, string>;
  templateAnnotations: Record<string, string>;
  spec: PodSpec;
  ready: boolean;
  serviceName?: string;
  /** The 10-character pod-template-hash. */
  hash: string;
  source: SourceLocation;
}

/** The alphabet Kubernetes uses for generated names (no vowels, no confusable characters). */
export const SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789";

/** 32-bit FNV-1a over the UTF-8 bytes of `s`. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      h = Math.imul(h ^ c, 0x01000193);
      continue;
    }
    // Encode as UTF-8 on the fly (surrogate pairs included).
    const bytes: number[] = [];
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const lo = s.charCodeAt(i + 1);
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
        i++;
      }
    }
    if (c < 0x800) bytes.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) bytes.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else bytes.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    for (const b of bytes) h = Math.imul(h ^ b, 0x01000193);
  }
  return h >>> 0;
}

/** JSON with object keys sorted at every level. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const keys = Object.keys(v).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

/**
 * The pod-template-hash: FNV-1a of the template's canonical JSON, its decimal digits (padded to
 * 10) mapped through the safe alphabet as Kubernetes' `rand.SafeEncodeString` does.
 */
export function podTemplateHash(template: unknown): string {
  const digits = String(fnv1a32(canonicalJson(template ?? {}))).padStart(10, "0");
  let out = "";
  for (let i = 0; i < digits.length; i++) out += SAFE_ALPHABET[digits.charCodeAt(i) % SAFE_ALPHABET.length];
  return out;
}

/** A 32-bit integer mix (murmur3's finalizer). */
function mix32(x: number): number {
  let h = x | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const SUFFIX_SPACE = 27 ** 5;
const PAIRS: string[] = [];
for (const x of SAFE_ALPHABET) for (const y of SAFE_ALPHABET) PAIRS.push(y + x);

/** The number (< 27^5) behind replica `index`'s suffix; `seed` is fnv1a32 of the template hash. */
export function replicaCode(seed: number, index: number, attempt = 0): number {
  return mix32(seed + Math.imul(index, 0x9e3779b1) + Math.imul(attempt, 0x27d4eb2f)) % SUFFIX_SPACE;
}

function encodeSuffix(code: number): string {
  return `${PAIRS[code % 729]}${PAIRS[Math.floor(code / 729) % 729]}${SAFE_ALPHABET[Math.floor(code / 531441)]}`;
}

/** The 5-character suffix of replica `index` of a Deployment whose pod-template-hash is `hash`. */
export function replicaSuffix(hash: string, index: number, attempt = 0): string {
  return encodeSuffix(replicaCode(fnv1a32(hash), index, attempt));
}

export function readWorkload(o: ObjCtx, meta: ReadMeta, kind: "Deployment" | "StatefulSet"): Workload {
  const spec = o.root.get("spec").map();
  const replicasF = spec.get("replicas");
  let replicas = replicasF.int() ?? 1;
  if (replicas < 0) {
    replicasF.error(`invalid value ${replicas}: must be greater than or equal to 0`);
    replicas = 0;
  }
  const selF = spec.get("selector");
  const selector = readSelector(selF);
  if (!selF.set) selF.required("Required value", "add spec.selector.matchLabels with the template's labels");
  else if (isEmptySelector(selector)) {
    selF.error(
      `invalid value: empty selector is invalid for ${kind.toLowerCase()}`,
      "select the pods by the template's labels",
    );
  }
  const tmplF = spec.get("template").map();
  if (!tmplF.set)
    tmplF.required("Required value", "add spec.template with metadata.labels and spec.containers");
  const tmeta = tmplF.get("metadata").map();
  const labelsF = tmeta.get("labels");
  const templateLabels = readLabels(labelsF);
  const annotationsF = tmeta.get("annotations");
  const templateAnnotations = readAnnotations(annotationsF);
  const tspec = tmplF.get("spec").map();
  const podSpec: PodSpec = tmplF.set ? readPodSpec(tspec) : { hostNetwork: false, containers: [] };
  if (selF.set && !isEmptySelector(selector) && tmplF.set && !matchesSelector(selector, templateLabels)) {
    (labelsF.set ? labelsF : tmeta.set ? tmeta.get("labels") : tmplF).error(
      "invalid value: `selector` does not match template `labels`",
      `give the template the labels the selector requires (${describeSelector(selector)})`,
    );
  }
  const ready =
    readReady(templateAnnotations, annotationsF) ??
    readReady(meta.annotations, o.root.get("metadata").get("annotations")) ??
    true;
  const w: Workload = {
    kind,
    name: meta.name ?? "",
    namespace: meta.namespace ?? "default",
    cluster: "",
    labels: meta.labels,
    replicas,
    selector,
    templateLabels,
    templateAnnotations,
    spec: podSpec,
    ready,
    hash: podTemplateHash(tmplF.v),
    source: o.location,
  };
  if (kind === "StatefulSet") {
    const snF = spec.get("serviceName");
    const sn = snF.str();
    if (sn !== undefined && sn !== "") {
      checkNameField(snF, "dns1123Label", sn, "serviceName");
      w.serviceName = sn;
    }
    const name = meta.name;
    if (name !== undefined && dns1123Subdomain(name).length === 0) {
      const nameF = o.root.get("metadata").get("name");
      const last = `${name}-${Math.max(replicas - 1, 0)}`;
      if (name.includes(".")) {
        nameF.error(
          "StatefulSet pod names are their hostnames and must be lowercase RFC 1123 labels: no '.'",
          `use "${name.replaceAll(".", "-")}"`,
        );
      } else if (last.length > 63) {
        nameF.error(
          `pod name ${JSON.stringify(last)} is the pod's hostname and must be no more than 63 characters`,
          "shorten the StatefulSet name",
        );
      }
    }
  }
  return w;
}

function describeSelector(s: LabelSelector): string {
  const parts = Object.entries(s.matchLabels).map(([k, v]) => `${k}: ${v}`);
  for (const e of s.matchExpressions)
    parts.push(`${e.key} ${e.operator}${e.values.length ? ` [${e.values.join(", ")}]` : ""}`);
  return parts.join(", ");
}

function deepFreeze<T>(v: T): T {
  if (typeof v === "object" && v !== null && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/**
 * Expands a workload into its pods. `names` holds the names of declared Pods and StatefulSet pods in
 * the namespace (and receives this StatefulSet's); StatefulSet pods whose name is taken are left out
 * and returned in `clashes`. Deployment pods avoid the names in `names`.
 * Replicas share (frozen) containers, annotations, owner and, for Deployments, labels: the desired
 * state is read-only data, and sharing keeps 100,000 expanded pods cheap.
 */
export function expandWorkload(w: Workload, names: Set<string>): { pods: Pod[]; clashes: string[] } {
  const pods: Pod[] = [];
  const clashes: string[] = [];
  const owner = deepFreeze({ kind: w.kind, name: w.name });
  const containers = deepFreeze(
    w.spec.containers.map((c) => ({ name: c.name, ports: c.ports.map((p) => ({ ...p })) })),
  );
  const annotations = deepFreeze({ ...w.templateAnnotations });
  const deploymentLabels = deepFreeze({ ...w.templateLabels, "pod-template-hash": w.hash });
  const revision = `${w.name}-${w.hash}`;
  const isDeployment = w.kind === "Deployment";
  const seed = fnv1a32(w.hash);
  const prefix = `${w.name}-${w.hash}-`;
  const codes = new Set<number>();
  for (let i = 0; i < w.replicas; i++) {
    let name: string;
    let labels: Record<string, string>;
    if (isDeployment) {
      // Names are unique by construction across workloads (they start with `<name>-<hash>-`);
      // within the Deployment, a rare suffix collision takes the next attempt.
      let attempt = 0;
      for (;;) {
        const code = replicaCode(seed, i, attempt++);
        if (codes.has(code)) continue;
        name = prefix + encodeSuffix(code);
        if (names.size > 0 && names.has(name)) continue;
        codes.add(code);
        break;
      }
      labels = deploymentLabels;
    } else {
      name = `${w.name}-${i}`;
      if (names.has(name)) {
        clashes.push(name);
        continue;
      }
      names.add(name);
      labels = Object.freeze({
        ...w.templateLabels,
        "controller-revision-hash": revision,
        "statefulset.kubernetes.io/pod-name": name,
        "apps.kubernetes.io/pod-index": String(i),
      });
    }
    const pod: Pod = {
      kind: "Pod",
      meta: { name, namespace: w.namespace, cluster: w.cluster, labels, annotations, source: w.source },
      hostNetwork: w.spec.hostNetwork,
      containers,
      ready: w.ready,
      owner,
    };
    if (w.spec.nodeName !== undefined) pod.nodeName = w.spec.nodeName;
    if (!isDeployment) {
      pod.hostname = name;
      if (w.serviceName !== undefined) pod.subdomain = w.serviceName;
    } else {
      if (w.spec.hostname !== undefined) pod.hostname = w.spec.hostname;
      if (w.spec.subdomain !== undefined) pod.subdomain = w.spec.subdomain;
    }
    pods.push(pod);
  }
  return { pods, clashes };
}
