/**
 * Reading one manifest object: typed field access that reports type errors with the field's path
 * and line ("expected an integer, found a string (\"80\")"), diagnostics tied to the object, and —
 * with `verbose` — tracking of the fields podnet reads, so the fields it ignores can be listed.
 */
import type { Diagnostic, Severity, SourceLocation } from "./diagnostics.js";
import { at, formatPath, formatSegments, type Path, type Seg, segments } from "./path.js";
import type { SourceDoc } from "./source.js";
import { closest } from "./validate.js";

export interface LoadOptions {
  /** List every distinct field podnet ignores (one `info` per `Kind: path`). */
  verbose?: boolean;
}

interface Pending {
  d: Diagnostic;
  fileIndex: number;
  line: number;
  seq: number;
}

/** State shared by everything loaded in one call. */
export class LoadCtx {
  readonly verbose: boolean;
  private readonly pending: Pending[] = [];
  private seq = 0;
  /** Keys read per map (or `true`: consumed whole). Only when verbose. */
  readonly marks: WeakMap<object, Set<string> | true> | undefined;
  private readonly ignored = new Map<string, { count: number; source: SourceLocation }>();

  constructor(options: LoadOptions = {}) {
    this.verbose = options.verbose === true;
    this.marks = this.verbose ? new WeakMap() : undefined;
  }

  add(d: Diagnostic, fileIndex = Number.MAX_SAFE_INTEGER, line = 0): void {
    this.pending.push({ d: withoutUndefined(d), fileIndex, line, seq: this.seq++ });
  }

  /** Records the fields of `obj` that were never read (verbose mode). */
  collectIgnored(o: ObjCtx): void {
    if (!this.marks) return;
    const found: Seg[][] = [];
    walkIgnored(o.raw.value, [], this.marks, found);
    for (const segs of found) {
      const key = `${o.kind}\u0000${formatSegments(segs, true)}`;
      const seen = this.ignored.get(key);
      if (seen) seen.count++;
      else this.ignored.set(key, { count: 1, source: o.source(segs) });
    }
  }

  /** All diagnostics, ordered by file and line (diagnostics without a location last). */
  finish(): Diagnostic[] {
    for (const [key, { count, source }] of this.ignored) {
      const [kind, path] = key.split("\u0000") as [string, string];
      this.add(
        {
          severity: "info",
          object: kind,
          path,
          message: `ignored: podnet does not use this field (${count} object${count === 1 ? "" : "s"})`,
          source,
        },
        this.fileIndexOf(source.file),
        source.line,
      );
    }
    this.ignored.clear();
    return this.pending
      .sort((a, b) => a.fileIndex - b.fileIndex || a.line - b.line || a.seq - b.seq)
      .map((p) => p.d);
  }

  private readonly files = new Map<string, number>();
  registerFile(file: string, index: number): void {
    if (!this.files.has(file)) this.files.set(file, index);
  }
  fileIndexOf(file: string): number {
    return this.files.get(file) ?? Number.MAX_SAFE_INTEGER;
  }
}

/** Drops keys whose value is undefined, so diagnostics compare and print cleanly. */
export function withoutUndefined(d: Diagnostic): Diagnostic {
  for (const k of Object.keys(d) as (keyof Diagnostic)[]) if (d[k] === undefined) delete d[k];
  return d;
}

function isMapValue(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function walkIgnored(
  v: unknown,
  path: Seg[],
  marks: WeakMap<object, Set<string> | true>,
  out: Seg[][],
): void {
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) walkIgnored(v[i], [...path, i], marks, out);
    return;
  }
  if (!isMapValue(v)) return;
  const m = marks.get(v);
  if (m === undefined || m === true) return;
  for (const k of Object.keys(v)) {
    if (!m.has(k)) out.push([...path, k]);
    else walkIgnored(v[k], [...path, k], marks, out);
  }
}

/** A manifest object being read: where it is, how to refer to it, its diagnostics. */
export interface RawObject {
  doc: SourceDoc;
  /** The parsed object; emptied by `ObjCtx.release()` once read. */
  value: Record<string, unknown>;
  /** Path of the object inside its document ([] or ["items", i] for `kind: List`). */
  base: Seg[];
  /** 1-based line of the object. */
  line: number;
}

export class ObjCtx {
  /** `Kind ns/name` for diagnostics; refined once metadata is read. */
  ref: string;
  errors = 0;
  private rootField: Field | undefined;

  constructor(
    readonly load: LoadCtx,
    readonly raw: RawObject,
    readonly kind: string,
  ) {
    this.ref = `${kind} <unnamed>`;
  }

  /** The object itself, as a field. */
  get root(): Field {
    this.rootField ??= new Field(this, this.raw.value, undefined, undefined);
    return this.rootField;
  }

  /**
   * Drops the parsed document once the object is read: diagnostics after that (cross-object
   * checks) need only paths and the document's text, and the parse tree can be collected young.
   */
  release(): void {
    this.raw.value = {};
    this.rootField = undefined;
  }

  get file(): string {
    return this.raw.doc.file;
  }

  /** Where the object is declared. */
  get location(): SourceLocation {
    return { file: this.raw.doc.file, line: this.raw.line };
  }

  /** File and line of a field (of the object when the field does not exist). Parses lazily. */
  source(segs: readonly Seg[]): SourceLocation {
    if (segs.length === 0) return this.location;
    const line = this.raw.doc.locator.lineOf([...this.raw.base, ...segs]);
    return { file: this.raw.doc.file, line: line ?? this.raw.line };
  }

  diag(severity: Severity, path: Path | undefined, message: string, hint?: string): void {
    const segs = segments(path);
    const source = this.source(segs);
    const d: Diagnostic = { severity, message, object: this.ref };
    if (segs.length > 0) d.path = formatPath(path);
    d.source = source;
    if (hint) d.hint = hint;
    if (severity === "error") this.errors++;
    this.load.add(d, this.raw.doc.fileIndex, source.line);
  }

  error(path: Path | undefined, message: string, hint?: string): void {
    this.diag("error", path, message, hint);
  }

  warning(path: Path | undefined, message: string, hint?: string): void {
    this.diag("warning", path, message, hint);
  }

  info(path: Path | undefined, message: string, hint?: string): void {
    this.diag("info", path, message, hint);
  }

  mark(map: object, key: string): void {
    const marks = this.load.marks;
    if (!marks) return;
    const m = marks.get(map);
    if (m === true) return;
    if (m) m.add(key);
    else marks.set(map, new Set([key]));
  }

  markAll(v: unknown): void {
    if (this.load.marks && typeof v === "object" && v !== null) this.load.marks.set(v, true);
  }
}

/** A short description of a value's type for "expected X, found Y" messages. */
export function describe(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (Array.isArray(v)) return "a list";
  switch (typeof v) {
    case "string": {
      const s = v.length > 40 ? `${v.slice(0, 40)}...` : v;
      return `a string (${JSON.stringify(s)})`;
    }
    case "number":
      return `a number (${v})`;
    case "boolean":
      return `a boolean (${v})`;
    case "object":
      return "a map";
    default:
      return typeof v;
  }
}

/** A field of an object: its value, its path and typed accessors that report type errors. */
export class Field {
  constructor(
    readonly o: ObjCtx,
    readonly v: unknown,
    /** The parent field and this field's segment (undefined for the object itself). */
    private readonly up: Field | undefined,
    private readonly seg: Seg | undefined,
    /** The parent had the wrong type (already reported): do not report this field as missing. */
    readonly broken = false,
  ) {}

  /** The field's path, built on demand (diagnostics only). */
  get path(): Path | undefined {
    return this.seg === undefined ? undefined : at(this.up?.path, this.seg);
  }

  /** The field has a value (absent and `null` both mean unset, as in Kubernetes). */
  get set(): boolean {
    return this.v !== undefined && this.v !== null;
  }

  get(key: string): Field {
    const v = this.v;
    if (isMapValue(v)) {
      this.o.mark(v, key);
      return new Field(this.o, v[key], this, key);
    }
    return new Field(this.o, undefined, this, key, this.broken || this.set);
  }

  /** Checks that the value is a map; wrong types are reported and read as unset. */
  map(): Field {
    if (!this.set || isMapValue(this.v)) return this;
    this.typeError("a map");
    return new Field(this.o, undefined, this.up, this.seg, true);
  }

  list(): Field[] {
    const v = this.v;
    if (!this.set) return [];
    if (!Array.isArray(v)) {
      this.typeError(
        "a list",
        isMapValue(v) ? "write the entries as a list, each starting with '- '" : undefined,
      );
      return [];
    }
    return v.map((item, i) => new Field(this.o, item, this, i));
  }

  keys(): string[] {
    return isMapValue(this.v) ? Object.keys(this.v) : [];
  }

  /** The entry `key` of a map whose keys are data (labels, selectors): path `field[key]`. */
  entry(key: string): Field {
    const v = this.v;
    return new Field(this.o, isMapValue(v) ? v[key] : undefined, this, { key });
  }

  str(): string | undefined {
    const v = this.v;
    if (typeof v === "string") return v;
    if (!this.set) return undefined;
    const quotable = typeof v === "number" || typeof v === "boolean";
    this.typeError("a string", quotable ? `quote it: "${String(v)}"` : undefined);
    return undefined;
  }

  int(): number | undefined {
    const v = this.v;
    if (typeof v === "number" && Number.isInteger(v)) return v;
    if (!this.set) return undefined;
    if (typeof v === "string" && /^-?\d+$/.test(v.trim())) {
      this.typeError("an integer", `write the number without quotes: ${v.trim()}`);
    } else this.typeError("an integer");
    return undefined;
  }

  bool(): boolean | undefined {
    const v = this.v;
    if (typeof v === "boolean") return v;
    if (!this.set) return undefined;
    if (typeof v === "string" && /^(true|false)$/i.test(v)) {
      this.typeError("true or false", `write ${v.toLowerCase()} without quotes`);
    } else this.typeError("true or false");
    return undefined;
  }

  /** An int-or-string (targetPort, NetworkPolicy port). */
  intOrStr(): number | string | undefined {
    const v = this.v;
    if (typeof v === "string" || (typeof v === "number" && Number.isInteger(v))) return v;
    if (!this.set) return undefined;
    this.typeError("an integer or a string");
    return undefined;
  }

  /** A map of strings (labels, annotations, selectors); wrong entries are reported and skipped. */
  strMap(): Record<string, string> | undefined {
    const m = this.map();
    if (!m.set) return undefined;
    this.o.markAll(m.v);
    const out: Record<string, string> = {};
    for (const k of m.keys()) {
      const s = m.entry(k).str();
      if (s !== undefined) out[k] = s;
    }
    return out;
  }

  /** One of `values` (case-sensitive, as Kubernetes). */
  oneOf<T extends string>(values: readonly T[]): T | undefined {
    const s = this.str();
    if (s === undefined) return undefined;
    if ((values as readonly string[]).includes(s)) return s as T;
    const sorted = [...values].sort();
    const near = closest(s, values);
    this.error(
      `unsupported value ${JSON.stringify(s)}: supported values: ${sorted.map((x) => `"${x}"`).join(", ")}`,
      near ? `use "${near}"` : undefined,
    );
    return undefined;
  }

  /** Reports fields not in `known` as errors (for podnet's own kinds, where unknown fields are typos). */
  only(known: readonly string[]): void {
    for (const k of this.keys()) {
      if (known.includes(k)) continue;
      const near = closest(k, known);
      this.get(k).error(
        `unknown field ${JSON.stringify(k)}`,
        near ? `did you mean "${near}"?` : `known fields: ${known.join(", ")}`,
      );
    }
  }

  required(message = "Required value", hint?: string): void {
    if (!this.broken) this.error(message, hint);
  }

  error(message: string, hint?: string): void {
    this.o.error(this.path, message, hint);
  }

  warning(message: string, hint?: string): void {
    this.o.warning(this.path, message, hint);
  }

  info(message: string, hint?: string): void {
    this.o.info(this.path, message, hint);
  }

  private typeError(expected: string, hint?: string): void {
    this.error(`expected ${expected}, found ${describe(this.v)}`, hint);
  }
}
