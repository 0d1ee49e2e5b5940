/**
 * A fast parser for the subset of YAML that Kubernetes manifests use: block maps and sequences,
 * plain and quoted single-line scalars, single-line flow collections, literal and folded block
 * scalars, comments and `---` document separators. The `yaml` library parses ~1 MB/s here; this
 * parser is an order of magnitude faster, which matters for manifests with tens of thousands of
 * objects. Anything outside the subset (anchors, tags, multi-line plain or quoted scalars,
 * duplicate keys, syntax errors...) throws `Unsupported`, and the caller parses that document with
 * the `yaml` library instead, which also produces the error messages. Scalars resolve as in the
 * YAML 1.2 core schema (the `yaml` library's default), so both paths give identical values.
 */

export class Unsupported extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "Unsupported";
  }
}

/** One `---`-separated document of a file. */
export interface Chunk {
  /** The document's text (without the separator line unless the separator carries content). */
  text: string;
  /** 0-based line of the file where `text` starts. */
  startLine: number;
}

const DOC_START = /^---(?:[ \t]|$)/;
const DOC_END = /^\.\.\.(?:[ \t]|$)/;

/** Splits a multi-document YAML text at `---` and `...` lines (column 0). */
export function splitDocuments(text: string): Chunk[] {
  const chunks: Chunk[] = [];
  let start = 0; // offset of the current chunk
  let startLine = 0;
  let line = 0;
  let offset = 0;
  const n = text.length;
  while (offset <= n) {
    let end = text.indexOf("\n", offset);
    if (end === -1) end = n;
    const c = text.charCodeAt(offset);
    if (c === 45 /* - */ || c === 46 /* . */) {
      const content = text.slice(offset, end);
      const isStart = DOC_START.test(content);
      if (isStart || DOC_END.test(content)) {
        chunks.push({ text: text.slice(start, offset), startLine });
        const rest = isStart ? content.slice(3).trim() : "";
        if (rest !== "" && rest[0] !== "#") {
          // `--- value` or `--- !tag`: keep the separator line in the document.
          start = offset;
          startLine = line;
        } else {
          start = end + 1;
          startLine = line + 1;
        }
      }
    }
    offset = end + 1;
    line++;
  }
  if (start < n) chunks.push({ text: text.slice(start), startLine });
  return chunks.filter((ch) => ch.text.length > 0);
}

/** Result of parsing one document. */
export interface FastDoc {
  value: unknown;
  /** 0-based line (relative to the chunk) of the document's first content line. */
  firstLine: number;
  /** For a root map with an `items` block sequence: 0-based line of each item. */
  itemLines?: number[];
}

const LONE_CR = /\r(?!\n)/;
const NULL_RE = /^(?:~|[Nn]ull|NULL)?$/;
const INT_RE = /^[-+]?[0-9]+$/;
const OCT_RE = /^0o[0-7]+$/;
const HEX_RE = /^0x[0-9a-fA-F]+$/;
const NAN_RE = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;
const FLOAT_RE = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/;

/** Resolves a plain scalar with the YAML 1.2 core schema. */
export function resolvePlain(s: string): unknown {
  if (s.length === 0) return null;
  const c = s.charCodeAt(0);
  if ((c >= 97 && c <= 122) || (c >= 65 && c <= 90)) {
    // Letters: only null, true and false (in their three spellings) are not strings.
    switch (s) {
      case "null":
      case "Null":
      case "NULL":
        return null;
      case "true":
      case "True":
      case "TRUE":
        return true;
      case "false":
      case "False":
      case "FALSE":
        return false;
      default:
        return s;
    }
  }
  if (INT_RE.test(s)) return Number.parseInt(s, 10);
  if (NULL_RE.test(s)) return null;
  if (OCT_RE.test(s)) return Number.parseInt(s.slice(2), 8);
  if (HEX_RE.test(s)) return Number.parseInt(s.slice(2), 16);
  if (NAN_RE.test(s)) {
    if (s.slice(-3).toLowerCase() === "nan") return Number.NaN;
    return s[0] === "-" ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  }
  if (FLOAT_RE.test(s) && /[.eE]/.test(s)) return Number.parseFloat(s);
  return s;
}

/** A block sequence entry starts at `at`: `-` followed by a space, a tab or the end of the line. */
function isSeqAt(raw: string, at: number): boolean {
  if (raw.charCodeAt(at) !== 45) return false;
  const n = raw.charCodeAt(at + 1);
  return at + 1 === raw.length || n === 32 || n === 9;
}

/** Index of the `:` that separates a block-map key (starting at `at`) from its value, or -1. */
function mapSeparator(raw: string, at: number): number {
  const c = raw.charCodeAt(at);
  if (c === 123 /* { */ || c === 91 /* [ */) return -1;
  if (c === 34 /* " */ || c === 39 /* ' */) {
    const close = quotedEnd(raw, at);
    if (close === -1) return -1;
    let i = close + 1;
    while (raw.charCodeAt(i) === 32) i++;
    const n = raw.charCodeAt(i + 1);
    if (raw.charCodeAt(i) === 58 && (i + 1 === raw.length || n === 32 || n === 9)) return i;
    return -1;
  }
  const hash = raw.indexOf("#", at);
  for (let i = raw.indexOf(":", at); i !== -1; i = raw.indexOf(":", i + 1)) {
    if (hash !== -1 && hash < i && hasCommentBefore(raw, at, i)) return -1;
    const n = raw.charCodeAt(i + 1);
    if (i + 1 === raw.length || n === 32 || n === 9) return i;
  }
  return -1;
}

/** True when a ` #` comment starts in raw[from, end). */
function hasCommentBefore(raw: string, from: number, end: number): boolean {
  for (let i = raw.indexOf("#", from); i !== -1 && i < end; i = raw.indexOf("#", i + 1)) {
    if (i > from && (raw[i - 1] === " " || raw[i - 1] === "\t")) return true;
  }
  return false;
}

/** Index of the closing quote of the quoted scalar opening at `start`, or -1. */
function quotedEnd(text: string, start: number): number {
  const q = text[start];
  if (q === "'") {
    let i = start + 1;
    for (;;) {
      const j = text.indexOf("'", i);
      if (j === -1) return -1;
      if (text[j + 1] === "'") {
        i = j + 2;
        continue;
      }
      return j;
    }
  }
  for (let i = start + 1; i < text.length; i++) {
    const ch = text[i];
    if (ch === "\\") i++;
    else if (ch === '"') return i;
  }
  return -1;
}

const ESCAPES: Record<string, string> = {
  "0": "\0",
  a: "\x07",
  b: "\b",
  t: "\t",
  "\t": "\t",
  n: "\n",
  v: "\v",
  f: "\f",
  r: "\r",
  e: "\x1b",
  " ": " ",
  '"': '"',
  "/": "/",
  "\\": "\\",
  N: "\u0085",
  _: "\u00a0",
  L: "\u2028",
  P: "\u2029",
};

function unquote(raw: string): string {
  // raw includes the quotes
  if (raw[0] === "'") return raw.slice(1, -1).replaceAll("''", "'");
  const body = raw.slice(1, -1);
  if (!body.includes("\\")) return body;
  let out = "";
  for (let i = 0; i < body.length; i++) {
    const ch = body[i] as string;
    if (ch !== "\\") {
      out += ch;
      continue;
    }
    const e = body[++i] ?? "";
    const simple = ESCAPES[e];
    if (simple !== undefined) {
      out += simple;
      continue;
    }
    const len = e === "x" ? 2 : e === "u" ? 4 : e === "U" ? 8 : 0;
    const hex = body.slice(i + 1, i + 1 + len);
    if (len === 0 || hex.length !== len || !/^[0-9a-fA-F]+$/.test(hex)) throw new Unsupported("escape");
    const cp = Number.parseInt(hex, 16);
    if (cp > 0x10ffff) throw new Unsupported("escape");
    out += String.fromCodePoint(cp);
    i += len;
  }
  return out;
}

/** After a scalar or flow collection ends at `i`, only whitespace and a comment may follow. */
function assertTrailing(text: string, i: number): void {
  let j = i;
  while (j < text.length && (text[j] === " " || text[j] === "\t")) j++;
  if (j === text.length) return;
  if (text[j] === "#" && j > i) return;
  throw new Unsupported("trailing content");
}

/** End of a plain scalar starting at `at`: before a ` #` comment, trailing blanks trimmed. */
function plainEnd(raw: string, at: number): number {
  let end = raw.length;
  for (let i = raw.indexOf("#", at); i !== -1; i = raw.indexOf("#", i + 1)) {
    const p = raw.charCodeAt(i - 1);
    if (i > at && (p === 32 || p === 9)) {
      end = i;
      break;
    }
  }
  for (let p = raw.charCodeAt(end - 1); end > at && (p === 32 || p === 9); p = raw.charCodeAt(end - 1)) end--;
  return end;
}

/** Characters that cannot start a plain scalar (c-indicators other than -, ?, :). */
const FORBIDDEN_START = new Uint8Array(128);
for (const ch of "&*!%@`|>,]}#{['\"") FORBIDDEN_START[ch.charCodeAt(0)] = 1;

function checkPlain(s: string): void {
  const c = s.charCodeAt(0);
  if (c < 128 && FORBIDDEN_START[c] === 1) throw new Unsupported("indicator");
  if (c === 45 || c === 63 || c === 58) {
    // - ? : start a plain scalar only when followed by a non-space character.
    const n = s.charCodeAt(1);
    if (s.length === 1 || n === 32 || n === 9) throw new Unsupported("indicator");
  }
  if (s.indexOf(":") === -1 && s.indexOf("\t") === -1) return;
  if (s.includes(": ") || s.includes(":\t") || s.endsWith(":") || s.includes("\t#"))
    throw new Unsupported("colon");
}

/** Parses a single-line value starting at `at`: quoted scalar, flow collection or plain scalar. */
function inlineValue(raw: string, at: number): unknown {
  const c = raw.charCodeAt(at);
  if (c === 34 || c === 39) {
    const end = quotedEnd(raw, at);
    if (end === -1) throw new Unsupported("multi-line quoted scalar");
    assertTrailing(raw, end + 1);
    return unquote(raw.slice(at, end + 1));
  }
  if (c === 91 || c === 123) {
    const p = new FlowParser(raw, at);
    const v = p.value();
    assertTrailing(raw, p.i);
    return v;
  }
  const end = plainEnd(raw, at);
  if (end === at) return null;
  const s = raw.slice(at, end);
  checkPlain(s);
  return resolvePlain(s);
}

function plainKey(raw: string, at: number, sep: number): string {
  let end = sep;
  for (let p = raw.charCodeAt(end - 1); end > at && (p === 32 || p === 9); p = raw.charCodeAt(end - 1)) end--;
  const k = raw.slice(at, end);
  if (k === "" || k === "__proto__") throw new Unsupported("key");
  checkPlain(k);
  if (resolvePlain(k) !== k) throw new Unsupported("non-string key");
  return k;
}

class FlowParser {
  constructor(
    readonly s: string,
    public i: number,
  ) {}

  ws(): void {
    const s = this.s;
    while (this.i < s.length && (s[this.i] === " " || s[this.i] === "\t")) this.i++;
    if (s[this.i] === "#") throw new Unsupported("comment in flow");
  }

  value(): unknown {
    this.ws();
    const c = this.s[this.i];
    if (c === "[") return this.seq();
    if (c === "{") return this.map();
    if (c === '"' || c === "'") {
      const end = quotedEnd(this.s, this.i);
      if (end === -1) throw new Unsupported("flow quote");
      const v = unquote(this.s.slice(this.i, end + 1));
      this.i = end + 1;
      return v;
    }
    return this.plain();
  }

  plain(): unknown {
    const s = this.s;
    const start = this.i;
    while (this.i < s.length) {
      const ch = s[this.i];
      if (ch === "," || ch === "[" || ch === "]" || ch === "{" || ch === "}") break;
      if (ch === ":" && (this.i + 1 === s.length || " ,[]{}\t".includes(s[this.i + 1] as string))) break;
      if (ch === "#" && this.i > start && (s[this.i - 1] === " " || s[this.i - 1] === "\t")) break;
      this.i++;
    }
    const text = s.slice(start, this.i).trim();
    if (text === "") throw new Unsupported("empty flow entry");
    checkPlain(text);
    return resolvePlain(text);
  }

  seq(): unknown[] {
    this.i++; // [
    const out: unknown[] = [];
    for (;;) {
      this.ws();
      if (this.s[this.i] === "]") {
        this.i++;
        return out;
      }
      out.push(this.value());
      this.ws();
      const c = this.s[this.i];
      if (c === ",") this.i++;
      else if (c !== "]") throw new Unsupported("flow seq");
    }
  }

  map(): Record<string, unknown> {
    this.i++; // {
    const out: Record<string, unknown> = {};
    for (;;) {
      this.ws();
      if (this.s[this.i] === "}") {
        this.i++;
        return out;
      }
      const key = this.value();
      if (typeof key !== "string" || key === "__proto__" || Object.hasOwn(out, key))
        throw new Unsupported("flow key");
      this.ws();
      if (this.s[this.i] !== ":") throw new Unsupported("flow map");
      this.i++;
      this.ws();
      const c = this.s[this.i];
      out[key] = c === "," || c === "}" ? null : this.value();
      this.ws();
      const d = this.s[this.i];
      if (d === ",") this.i++;
      else if (d !== "}") throw new Unsupported("flow map");
    }
  }
}

class BlockParser {
  readonly lines: string[];
  i = 0;
  /**
   * The current significant line: `raw` with content from column `at` (= its indentation). A
   * compact entry (`- key: value`) is read as a virtual line starting after the dash.
   */
  private raw = "";
  private at = 0;
  private hasCur = false;
  itemLines: number[] | undefined;

  constructor(text: string) {
    this.lines = text.split("\n");
    // The empty string after a final newline is not a line.
    if (this.lines.length > 1 && this.lines[this.lines.length - 1] === "") this.lines.pop();
  }

  /** Moves to the next significant line (skipping blank and comment lines); false at the end. */
  peek(): boolean {
    if (this.hasCur) return true;
    const lines = this.lines;
    while (this.i < lines.length) {
      let raw = lines[this.i] as string;
      if (raw.charCodeAt(raw.length - 1) === 13) {
        raw = raw.slice(0, -1);
        lines[this.i] = raw;
      }
      let indent = 0;
      while (raw.charCodeAt(indent) === 32) indent++;
      const c = raw.charCodeAt(indent);
      if (indent === raw.length || c === 35 /* # */) {
        this.i++;
        continue;
      }
      // A tab in the indentation (even of a blank line): leave it to the yaml library.
      if (c === 9 /* tab */) throw new Unsupported("tab indentation");
      this.raw = raw;
      this.at = indent;
      this.hasCur = true;
      return true;
    }
    return false;
  }

  private setCurrent(at: number): void {
    this.at = at;
    this.hasCur = true;
  }

  consume(): void {
    this.hasCur = false;
    this.i++;
  }

  document(): FastDoc {
    if (!this.peek()) return { value: null, firstLine: 0 };
    if (this.raw.charCodeAt(this.at) === 37 /* % */) throw new Unsupported("directive");
    if (this.at === 0 && (this.raw.startsWith("---") || this.raw.startsWith("..."))) {
      throw new Unsupported("content on the document marker line");
    }
    const firstLine = this.i;
    const value = this.block(this.at, true);
    if (this.peek()) throw new Unsupported("trailing content");
    const doc: FastDoc = { value, firstLine };
    if (this.itemLines) doc.itemLines = this.itemLines;
    return doc;
  }

  /** A node whose first line is the current line, at exactly `indent`. */
  block(indent: number, root = false): unknown {
    const raw = this.raw;
    const at = this.at;
    if (isSeqAt(raw, at)) return this.seq(indent, undefined);
    if (mapSeparator(raw, at) !== -1) return this.map(indent, root);
    // A lone scalar on its own line: only a whole document (values sit on their key's line).
    if (!root) throw new Unsupported("scalar on its own line");
    const c = raw[at];
    if (c === "|" || c === ">" || c === "&" || c === "*" || c === "!" || c === "?")
      throw new Unsupported("indicator");
    this.consume();
    const v = inlineValue(raw, at);
    if (this.peek()) throw new Unsupported("multi-line scalar");
    return v;
  }

  map(indent: number, root = false): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    while (this.peek()) {
      const raw = this.raw;
      const at = this.at;
      if (at < indent) return out;
      if (at > indent) throw new Unsupported("indentation");
      if (isSeqAt(raw, at)) throw new Unsupported("sequence in map");
      const sep = mapSeparator(raw, at);
      if (sep === -1) throw new Unsupported("not a map entry");
      const c = raw.charCodeAt(at);
      let key: string;
      if (c === 34 || c === 39) {
        key = unquote(raw.slice(at, quotedEnd(raw, at) + 1));
        if (key === "__proto__") throw new Unsupported("key");
      } else {
        // ? [ { & * !
        if (c === 63 || c === 91 || c === 123 || c === 38 || c === 42 || c === 33)
          throw new Unsupported("key");
        key = plainKey(raw, at, sep);
      }
      // A duplicate key: leave the document to the yaml library, which reports it.
      if (Object.hasOwn(out, key)) throw new Unsupported("duplicate key");
      let v = sep + 1;
      for (let ch = raw.charCodeAt(v); ch === 32 || ch === 9; ch = raw.charCodeAt(v)) v++;
      this.consume();
      out[key] = this.value(raw, v, indent, true, root && key === "items");
    }
    return out;
  }

  seq(indent: number, record: number[] | undefined): unknown[] {
    const out: unknown[] = [];
    while (this.peek()) {
      const raw = this.raw;
      const at = this.at;
      if (at < indent) return out;
      if (at > indent) throw new Unsupported("indentation");
      if (!isSeqAt(raw, at)) return out;
      record?.push(this.i);
      let k = at + 1;
      while (raw.charCodeAt(k) === 32) k++;
      if (raw.charCodeAt(k) === 9) throw new Unsupported("tab");
      if (k === raw.length || raw.charCodeAt(k) === 35) {
        this.consume();
        out.push(this.nested(indent));
      } else if (isSeqAt(raw, k)) {
        this.setCurrent(k);
        out.push(this.seq(k, undefined));
      } else if (mapSeparator(raw, k) !== -1) {
        this.setCurrent(k);
        out.push(this.map(k));
      } else {
        this.consume();
        out.push(this.value(raw, k, indent, false, false));
      }
    }
    return out;
  }

  /** The value after `key:` or `-` with nothing on the same line. */
  nested(indent: number, inMap = false, recordItems = false): unknown {
    if (!this.peek()) return null;
    const at = this.at;
    if (at > indent) {
      if (recordItems && isSeqAt(this.raw, at)) {
        this.itemLines = [];
        return this.seq(at, this.itemLines);
      }
      return this.block(at);
    }
    if (inMap && at === indent && isSeqAt(this.raw, at)) {
      if (recordItems) {
        this.itemLines = [];
        return this.seq(indent, this.itemLines);
      }
      return this.seq(indent, undefined);
    }
    return null;
  }

  /** The value following a map key or a sequence dash on the same line, from column `v` of `raw`. */
  value(raw: string, v: number, indent: number, inMap: boolean, recordItems: boolean): unknown {
    const c = raw.charCodeAt(v);
    if (v >= raw.length || c === 35 /* # */) return this.nested(indent, inMap, recordItems);
    if (c === 124 /* | */ || c === 62 /* > */) return this.blockScalar(raw.slice(v), indent);
    if (c === 38 || c === 42 || c === 33) throw new Unsupported("anchor, alias or tag");
    const value = inlineValue(raw, v);
    if (this.peek() && this.at > indent) throw new Unsupported("multi-line value");
    return value;
  }
  blockScalar(header: string, indent: number): string {
    const m = /^([|>])([-+]?)(?:[ \t]+#.*)?\s*$/.exec(header);
    if (!m) throw new Unsupported("block scalar header");
    const folded = m[1] === ">";
    const chomp = m[2];
    // Keep chomping (`|+`) depends on how the document ends: rare in manifests, left to the yaml library.
    if (chomp === "+") throw new Unsupported("keep chomping");
    const lines = this.lines;
    const body: string[] = [];
    let contentIndent = -1;
    let i = this.i;
    for (; i < lines.length; i++) {
      let raw = lines[i] as string;
      if (raw.charCodeAt(raw.length - 1) === 13) raw = raw.slice(0, -1);
      let sp = 0;
      while (raw.charCodeAt(sp) === 32) sp++;
      if (raw.charCodeAt(sp) === 9) throw new Unsupported("tab in block scalar");
      if (sp === raw.length) {
        // Leading blank lines (their indentation rules are subtle): leave them to the yaml library.
        if (contentIndent === -1) throw new Unsupported("block scalar leading blank line");
        body.push(raw.slice(contentIndent));
        continue;
      }
      if (contentIndent === -1) {
        if (sp <= indent) break;
        contentIndent = sp;
      } else if (sp < contentIndent) break;
      body.push(raw.slice(contentIndent));
    }
    this.i = i;
    this.hasCur = false;
    // Trailing blank lines are dropped by clip and strip chomping.
    while (body.length > 0 && body[body.length - 1] === "") body.pop();
    if (body.length === 0) return "";
    let text: string;
    if (folded) {
      for (const l of body) {
        if (l[0] === " " || l[0] === "\t") throw new Unsupported("more-indented folded line");
      }
      if (body[0] === "") throw new Unsupported("folded leading blank");
      text = body[0] as string;
      let empty = 0;
      for (let k = 1; k < body.length; k++) {
        const l = body[k] as string;
        if (l === "") empty++;
        else {
          text += empty > 0 ? "\n".repeat(empty) : " ";
          text += l;
          empty = 0;
        }
      }
    } else {
      text = body.join("\n");
    }
    return chomp === "-" ? text : `${text}\n`;
  }
}

/** Parses one document of the supported subset; throws `Unsupported` otherwise. */
export function parseFast(text: string): FastDoc {
  // A lone carriage return is a line break in YAML (old Mac line endings).
  if (LONE_CR.test(text)) throw new Unsupported("lone carriage return");
  return new BlockParser(text).document();
}
