/**
 * Reading manifest files and splitting them into documents. YAML goes through the fast subset
 * parser (yaml-fast.ts) and falls back to the `yaml` library per document; JSON through JSON.parse.
 * Lines of fields are found lazily: a `Locator` parses its document with the `yaml` library (with
 * node ranges) only when a diagnostic needs a line, so loading valid input costs no line mapping.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseAllDocuments,
  parseDocument,
  type Node as YamlNode,
} from "yaml";
import type { Diagnostic } from "./diagnostics.js";
import type { Seg } from "./path.js";
import { parseFast, splitDocuments } from "./yaml-fast.js";

/** Finds the 1-based line of a field path inside one document. */
export class Locator {
  private doc: Document | undefined;
  private lc: LineCounter | undefined;

  constructor(
    private readonly text: string,
    /** 0-based line of the file where `text` starts. */
    private readonly lineOffset: number,
    doc?: Document,
    lc?: LineCounter,
  ) {
    this.doc = doc;
    this.lc = lc;
  }

  /**
   * Line of the node at `segs` (of its key, for map entries). When the path does not exist: the
   * line of the deepest list item on the way (a port, a container, a rule), else undefined.
   */
  lineOf(segs: readonly Seg[]): number | undefined {
    if (!this.doc || !this.lc) {
      this.lc = new LineCounter();
      this.doc = parseDocument(this.text, { lineCounter: this.lc, uniqueKeys: false, prettyErrors: false });
    }
    const doc = this.doc;
    const lc = this.lc;
    const lineAt = (offset: number) => lc.linePos(offset).line + this.lineOffset;
    let node: unknown = doc.contents;
    if (!node) return undefined;
    let line = lineAt((node as YamlNode).range?.[0] ?? 0);
    let itemLine: number | undefined;
    for (const seg of segs) {
      if (isAlias(node)) node = node.resolve(doc);
      if (typeof seg === "number") {
        if (!isSeq(node)) return itemLine;
        const item = node.items[seg] as YamlNode | undefined;
        if (!item) return itemLine;
        line = lineAt(item.range?.[0] ?? 0);
        itemLine = line;
        node = item;
      } else {
        const key = typeof seg === "string" ? seg : seg.key;
        if (!isMap(node)) return itemLine;
        const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === key);
        if (!pair) return itemLine;
        const k = pair.key as YamlNode | null;
        line = lineAt(k?.range?.[0] ?? 0);
        node = pair.value;
      }
    }
    return line;
  }
}

/** One parsed document of a source file. */
export interface SourceDoc {
  file: string;
  fileIndex: number;
  value: unknown;
  /** 1-based line of the document's root node. */
  line: number;
  /** 1-based lines of the items of a root `items` list, when known without a full parse. */
  itemLines?: number[];
  locator: Locator;
}

export interface Source {
  file: string;
  text: string;
}

const YAML_HINTS: Record<string, string> = {
  TAB_AS_INDENT: "indent with spaces; YAML does not allow tabs for indentation",
  DUPLICATE_KEY: "remove one of the duplicate keys (Kubernetes rejects duplicate fields)",
  BAD_INDENT: "align the entries of each map or list at the same column",
  MISSING_CHAR: "close the quote or bracket",
  BLOCK_AS_IMPLICIT_KEY: 'quote a value that contains ": "',
  MULTILINE_IMPLICIT_KEY: "a key must fit on one line; check the indentation of the lines above",
};

function yamlDiagnostics(
  doc: Document,
  lc: LineCounter,
  file: string,
  lineOffset: number,
): { errors: Diagnostic[]; warnings: Diagnostic[] } {
  const conv = (e: (typeof doc.errors)[number], severity: "error" | "warning"): Diagnostic => {
    const line = lc.linePos(e.pos[0]).line + lineOffset;
    const message = e.message.split("\n")[0]?.replace(/ at line \d+, column \d+:?$/, "") ?? e.message;
    const d: Diagnostic = { severity, message: `YAML syntax error: ${message}`, source: { file, line } };
    const hint = YAML_HINTS[e.code];
    if (hint) d.hint = hint;
    if (severity === "warning") d.message = `YAML: ${message}`;
    return d;
  };
  return {
    errors: doc.errors.map((e) => conv(e, "error")),
    warnings: doc.warnings.map((e) => conv(e, "warning")),
  };
}

function slowDoc(
  doc: Document,
  lc: LineCounter,
  file: string,
  fileIndex: number,
  lineOffset: number,
  text: string,
  diags: Diagnostic[],
): SourceDoc | undefined {
  const { errors, warnings } = yamlDiagnostics(doc, lc, file, lineOffset);
  diags.push(...errors, ...warnings);
  if (errors.length > 0) return undefined;
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    const line = lc.linePos((doc.contents as YamlNode | null)?.range?.[0] ?? 0).line + lineOffset;
    diags.push({ severity: "error", message: `YAML error: ${(e as Error).message}`, source: { file, line } });
    return undefined;
  }
  const root = doc.contents as YamlNode | null;
  const line = lc.linePos(root?.range?.[0] ?? 0).line + lineOffset;
  return { file, fileIndex, value, line, locator: new Locator(text, lineOffset, doc, lc) };
}

/**
 * Splits and parses one source into documents; syntax errors become diagnostics. With `onDoc`, each
 * document is handed over as soon as it is parsed (and none are returned), so that a consumer can
 * let its parse tree go before the next one is built.
 */
export function parseSource(
  src: Source,
  fileIndex: number,
  diags: Diagnostic[],
  onDoc?: (doc: SourceDoc) => void,
): SourceDoc[] {
  const collected: SourceDoc[] = [];
  const out = onDoc ? { push: onDoc } : collected;
  parseInto(src, fileIndex, diags, out);
  return collected;
}

function parseInto(
  src: Source,
  fileIndex: number,
  diags: Diagnostic[],
  out: { push(d: SourceDoc): void },
): void {
  const file = src.file;
  let text = src.text;
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const first = text.search(/\S/);
  if (first === -1) return;
  if (file.endsWith(".json") || text[first] === "{" || text[first] === "[") {
    try {
      const value = JSON.parse(text) as unknown;
      let line = 1;
      for (let i = text.indexOf("\n"); i !== -1 && i < first; i = text.indexOf("\n", i + 1)) line++;
      const d: SourceDoc = { file, fileIndex, value, line, locator: new Locator(text, 0) };
      const itemLines = jsonItemLines(text);
      if (itemLines) d.itemLines = itemLines;
      out.push(d);
      return;
    } catch {
      // Not strict JSON: parse it as YAML (a superset), which also locates syntax errors.
    }
  }
  if (/^%/m.test(text)) {
    // Directives: let the yaml library handle the whole stream.
    const lc = new LineCounter();
    for (const doc of parseAllDocuments(text, { lineCounter: lc, prettyErrors: false })) {
      if (!("contents" in doc)) continue;
      if (doc.contents === null && doc.errors.length === 0) continue;
      const d = slowDoc(doc as Document, lc, file, fileIndex, 0, text, diags);
      if (d && d.value !== null && d.value !== undefined) out.push(d);
    }
    return;
  }
  for (const chunk of splitDocuments(text)) {
    let d: SourceDoc | undefined;
    try {
      const fast = parseFast(chunk.text);
      if (fast.value === null || fast.value === undefined) continue;
      d = {
        file,
        fileIndex,
        value: fast.value,
        line: chunk.startLine + fast.firstLine + 1,
        locator: new Locator(chunk.text, chunk.startLine),
      };
      if (fast.itemLines) d.itemLines = fast.itemLines.map((l) => chunk.startLine + l + 1);
    } catch {
      // Outside the fast parser's subset (Unsupported or, defensively, any failure): the yaml library decides.
      const lc = new LineCounter();
      const doc = parseDocument(chunk.text, { lineCounter: lc, prettyErrors: false });
      if (doc.contents === null && doc.errors.length === 0) continue;
      d = slowDoc(doc, lc, file, fileIndex, chunk.startLine, chunk.text, diags);
    }
    if (d && d.value !== null && d.value !== undefined) out.push(d);
  }
}

/**
 * 1-based lines of the elements of the top-level `"items"` array of a (valid) JSON text, found by a
 * scan that only tracks strings and nesting: `kind: List` dumps get their items' lines without a
 * full YAML parse.
 */
export function jsonItemLines(text: string): number[] | undefined {
  let depth = 0;
  let line = 1;
  let lastKey = "";
  let inItems = false;
  let expectItem = false;
  let out: number[] | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) {
      line++;
      continue;
    }
    if (c === 32 || c === 9 || c === 13) continue;
    if (expectItem) {
      if (c !== 93 /* ] */) out?.push(line);
      expectItem = false;
    }
    if (c === 34 /* " */) {
      let j = i + 1;
      while (j < text.length && text.charCodeAt(j) !== 34) j += text.charCodeAt(j) === 92 ? 2 : 1;
      if (depth === 1) lastKey = text.slice(i + 1, j);
      i = j;
    } else if (c === 123 /* { */ || c === 91 /* [ */) {
      depth++;
      if (c === 91 && depth === 2 && lastKey === "items") {
        inItems = true;
        out = [];
        expectItem = true;
      }
    } else if (c === 125 /* } */ || c === 93 /* ] */) {
      depth--;
      if (depth === 1 && inItems) inItems = false;
    } else if (c === 44 /* , */ && inItems && depth === 2) {
      expectItem = true;
    }
  }
  return out;
}

const MANIFEST_EXT = /\.(ya?ml|json)$/;

function walkDir(dir: string, out: string[]): void {
  for (const entry of readdirSync(dir).sort()) {
    if (entry.startsWith(".")) continue;
    const p = join(dir, entry);
    const st = statSync(p);
    if (st.isDirectory()) walkDir(p, out);
    else if (MANIFEST_EXT.test(entry)) out.push(p);
  }
}

/** Reads files and directories (recursively: *.yaml, *.yml, *.json, sorted); `-` is standard input. */
export function readSources(paths: readonly string[], diags: Diagnostic[]): Source[] {
  const sources: Source[] = [];
  for (const p of paths) {
    try {
      if (p === "-") {
        sources.push({ file: "-", text: readFileSync(0, "utf8") });
        continue;
      }
      const st = statSync(p);
      if (st.isDirectory()) {
        const files: string[] = [];
        walkDir(p, files);
        files.sort();
        if (files.length === 0) {
          diags.push({
            severity: "warning",
            message: `no manifest files (*.yaml, *.yml, *.json) in directory ${p}`,
          });
        }
        for (const f of files) sources.push({ file: f, text: readFileSync(f, "utf8") });
      } else {
        sources.push({ file: p, text: readFileSync(p, "utf8") });
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      diags.push({
        severity: "error",
        message: code === "ENOENT" ? `file not found: ${p}` : `cannot read ${p}: ${(e as Error).message}`,
        hint:
          code === "ENOENT"
            ? "check the path (files and directories are accepted; - reads standard input)"
            : undefined,
      });
    }
  }
  return sources;
}
