/**
 * Field paths inside an object, as Kubernetes prints them: `spec.ports[1].targetPort`,
 * `metadata.labels[app.kubernetes.io/name]`. Stored as a linked list so that building a child path
 * costs one small object; formatted only when a diagnostic needs it.
 */

/** A field name, a list index, or a key of a map whose keys are data (labels, selectors). */
export type Seg = string | number | { key: string };

export interface Path {
  readonly up: Path | undefined;
  readonly seg: Seg;
}

export function at(up: Path | undefined, seg: Seg): Path {
  return { up, seg };
}

/** Builds a path from segments: `pathOf("spec", "ports", 0)`. */
export function pathOf(...segs: Seg[]): Path | undefined {
  let p: Path | undefined;
  for (const s of segs) p = at(p, s);
  return p;
}

export function segments(p: Path | undefined): Seg[] {
  const out: Seg[] = [];
  for (let q = p; q; q = q.up) out.push(q.seg);
  return out.reverse();
}

export function formatSegments(segs: readonly Seg[], generic = false): string {
  let s = "";
  for (const seg of segs) {
    if (typeof seg === "number") s += generic ? "[]" : `[${seg}]`;
    else if (typeof seg === "string") s += s === "" ? seg : `.${seg}`;
    else s += `[${seg.key}]`;
  }
  return s;
}

export function formatPath(p: Path | undefined): string {
  return formatSegments(segments(p));
}
