/**
 * DNS wire format for the server: a hand-written parser for the header, question and EDNS OPT of queries
 * (the hot path: no objects per label), an encoder with name compression for answers built from
 * `DnsRecord`s, a walker over the resource records of any response (ours or an upstream's), and
 * truncation at a record boundary with the TC bit.
 *
 * dns-packet (the wire library podnet uses) decodes everything, including compressed names, but its
 * encoder writes every name in full (`name.encode` has no compression table): a 1,000-record answer would
 * repeat the owner name 1,000 times. So names are written here, with RFC 1035 §4.1.4 compression; the
 * address codecs and the type table come from dns-packet.
 */
import { createRequire } from "node:module";
import type { DnsRecord, Rcode } from "../types.js";

// Parts of dns-packet that its type declarations leave out: the address codecs and the type table.
interface AddressCodec {
  encode(address: string, buf: Buffer, offset: number): Buffer;
}
const require = createRequire(import.meta.url);
const dnsPacket = require("dns-packet") as { a: AddressCodec; aaaa: AddressCodec };
const dnsTypes = require("dns-packet/types") as {
  toString(type: number): string;
  toType(name: string): number;
};

export const HEADER_SIZE = 12;
/** The largest DNS message (TCP length prefix is 16 bits). */
export const MAX_MESSAGE_SIZE = 65535;
/** Without EDNS a UDP answer holds at most 512 bytes (RFC 1035 §4.2.1). */
export const CLASSIC_UDP_SIZE = 512;
/** What we advertise in our OPT record: the DNS flag day 2020 size, safe from fragmentation anywhere. */
export const ADVERTISED_UDP_SIZE = 1232;
/** A client may ask for more; beyond this we truncate anyway (loopback and pod links take it). */
export const MAX_UDP_SIZE = 4096;
/** An OPT record without options: root name, type, class (size), TTL (ext. rcode, version, flags), rdlen. */
export const OPT_RECORD_SIZE = 11;

export const TYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
} as const;
export const CLASS_IN = 1;
export const CLASS_ANY = 255;

export const FLAG_QR = 0x8000;
export const FLAG_AA = 0x0400;
export const FLAG_TC = 0x0200;
export const FLAG_RD = 0x0100;
export const FLAG_RA = 0x0080;
export const FLAG_CD = 0x0010;
const OPCODE_MASK = 0x7800;
const RCODE_MASK = 0x000f;
const EDNS_DO = 0x8000;

export const RCODE: Record<Rcode, number> = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
};
const RCODE_NAMES = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];
/** Extended rcode BADVERS (16): the upper 8 bits go in the OPT record. */
export const RCODE_BADVERS = 16;

/** The mnemonic of a query type, "TYPE65" style for types without one (the ZoneAnswerer convention). */
export function typeName(type: number): string {
  const name = dnsTypes.toString(type);
  return name.startsWith("UNKNOWN_") ? `TYPE${type}` : name;
}

export function typeNumber(name: string): number {
  const upper = name.toUpperCase();
  if (upper.startsWith("TYPE")) return Number(upper.slice(4));
  return dnsTypes.toType(upper);
}

export function rcodeName(rcode: number): string {
  return RCODE_NAMES[rcode] ?? (rcode === RCODE_BADVERS ? "BADVERS" : `RCODE${rcode}`);
}

export interface Edns {
  /** The client's UDP payload size as sent (may be below 512: treat as 512). */
  udpSize: number;
  version: number;
  dnssecOk: boolean;
}

/** A query that the server can answer: header, the one question, EDNS. */
export interface Query {
  kind: "query";
  id: number;
  flags: number;
  /** Offset just after the question: bytes [12, questionEnd) are the question as the client wrote it. */
  questionEnd: number;
  qtype: number;
  qclass: number;
  edns: Edns | undefined;
  /** Cache key: the question with the name's ASCII letters lower-cased, plus a byte when DO is set. */
  key: string;
}

/** Why a packet is not a query we can answer: dropped silently, or answered with an rcode only. */
export type QueryRejection =
  | { kind: "drop"; reason: string }
  | { kind: "error"; reason: string; id: number; flags: number; rcode: number };

export type ParsedQuery = Query | QueryRejection;

const keyScratch = Buffer.allocUnsafe(HEADER_SIZE + 260);

/**
 * Parses a query without allocating per label. Responses (QR set) and packets shorter than a header are
 * dropped: answering them could start a loop between two servers or reflect garbage.
 */
export function parseQuery(buf: Buffer): ParsedQuery {
  if (buf.length < HEADER_SIZE) return { kind: "drop", reason: "shorter than a DNS header" };
  const id = buf.readUInt16BE(0);
  const flags = buf.readUInt16BE(2);
  if (flags & FLAG_QR) return { kind: "drop", reason: "a response, not a query" };
  const error = (rcode: number, reason: string): QueryRejection => ({
    kind: "error",
    reason,
    id,
    flags,
    rcode,
  });
  if ((flags & OPCODE_MASK) !== 0) return error(RCODE.NOTIMP, `opcode ${(flags & OPCODE_MASK) >> 11}`);
  const qdcount = buf.readUInt16BE(4);
  if (qdcount !== 1) return error(RCODE.FORMERR, `${qdcount} questions (exactly 1 is answered)`);
  // The question name: plain labels only (a compression pointer cannot point anywhere useful here).
  let pos = HEADER_SIZE;
  let upper = false;
  for (;;) {
    if (pos >= buf.length) return error(RCODE.FORMERR, "question name runs past the end");
    const len = buf[pos] as number;
    if (len > 63) return error(RCODE.FORMERR, "question name has a pointer or a bad label length");
    if (pos + len + 1 - HEADER_SIZE > 255) return error(RCODE.FORMERR, "question name longer than 255 bytes");
    if (pos + 1 + len > buf.length) return error(RCODE.FORMERR, "question label runs past the end");
    for (let i = pos + 1; i <= pos + len; i++) {
      const c = buf[i] as number;
      if (c >= 0x41 && c <= 0x5a) upper = true;
    }
    pos += len + 1;
    if (len === 0) break;
  }
  if (pos + 4 > buf.length) return error(RCODE.FORMERR, "question type and class missing");
  const qtype = buf.readUInt16BE(pos);
  const qclass = buf.readUInt16BE(pos + 2);
  const questionEnd = pos + 4;
  let edns: Edns | undefined;
  const ancount = buf.readUInt16BE(6);
  const nscount = buf.readUInt16BE(8);
  const arcount = buf.readUInt16BE(10);
  if (ancount + nscount + arcount > 0) {
    // Usually just an OPT record; walk whatever is there, strictly.
    let at = questionEnd;
    const total = ancount + nscount + arcount;
    for (let i = 0; i < total; i++) {
      const nameEnd = skipName(buf, at);
      if (nameEnd < 0 || nameEnd + 10 > buf.length) return error(RCODE.FORMERR, "malformed record");
      const type = buf.readUInt16BE(nameEnd);
      const rdlength = buf.readUInt16BE(nameEnd + 8);
      const end = nameEnd + 10 + rdlength;
      if (end > buf.length) return error(RCODE.FORMERR, "record data runs past the end");
      if (type === TYPE.OPT) {
        if (i < ancount + nscount) return error(RCODE.FORMERR, "OPT record outside the additional section");
        if (edns) return error(RCODE.FORMERR, "more than one OPT record");
        if (nameEnd !== at + 1) return error(RCODE.FORMERR, "OPT record with a name other than the root");
        edns = {
          udpSize: buf.readUInt16BE(nameEnd + 2),
          version: buf[nameEnd + 5] as number,
          dnssecOk: (buf.readUInt16BE(nameEnd + 6) & EDNS_DO) !== 0,
        };
      }
      at = end;
    }
  }
  // The key: the question's bytes with the name lower-cased (label lengths are < 0x41, so lower-casing
  // every byte of the name is safe); a DO query gets one more byte, so keys of the two never collide.
  let key: string;
  if (upper) {
    const nameEnd = pos;
    buf.copy(keyScratch, 0, HEADER_SIZE, questionEnd);
    for (let i = 0; i < nameEnd - HEADER_SIZE; i++) {
      const c = keyScratch[i] as number;
      if (c >= 0x41 && c <= 0x5a) keyScratch[i] = c | 0x20;
    }
    key = keyScratch.toString("latin1", 0, questionEnd - HEADER_SIZE);
  } else key = buf.toString("latin1", HEADER_SIZE, questionEnd);
  if (edns?.dnssecOk) key += "\u0001";
  return { kind: "query", id, flags, questionEnd, qtype, qclass, edns, key };
}

/** The question name of a parsed query: lower case, without the trailing dot ("." for the root). */
export function questionName(buf: Buffer): string {
  const labels: string[] = [];
  let pos = HEADER_SIZE;
  for (;;) {
    const len = buf[pos] as number;
    if (len === 0) break;
    labels.push(buf.toString("latin1", pos + 1, pos + 1 + len).toLowerCase());
    pos += len + 1;
  }
  return labels.length === 0 ? "." : labels.join(".");
}

/**
 * True when every label of the question is representable as a dotted name: no "." inside a label. Such
 * a name cannot be in a zone whose names are dotted strings (the ZoneAnswerer contract).
 */
export function questionIsDotted(buf: Buffer): boolean {
  for (let pos = HEADER_SIZE; (buf[pos] as number) > 0; pos += (buf[pos] as number) + 1)
    for (let i = pos + 1; i <= pos + (buf[pos] as number); i++) if (buf[i] === 0x2e) return false;
  return true;
}

/** The offset after the name at `pos` (following no pointers), or -1 when malformed. */
export function skipName(buf: Buffer, pos: number): number {
  for (let hops = 0; hops < 128; hops++) {
    if (pos >= buf.length) return -1;
    const len = buf[pos] as number;
    if (len === 0) return pos + 1;
    if ((len & 0xc0) === 0xc0) return pos + 2 <= buf.length ? pos + 2 : -1;
    if (len > 63) return -1;
    pos += len + 1;
  }
  return -1;
}

/** The maximum UDP answer size for a query: 512 without EDNS, else the client's size within our bounds. */
export function udpLimit(edns: Edns | undefined): number {
  if (!edns) return CLASSIC_UDP_SIZE;
  return Math.min(MAX_UDP_SIZE, Math.max(CLASSIC_UDP_SIZE, edns.udpSize));
}

/** Our OPT record: advertised size, upper rcode bits, version 0, the DO bit echoed. */
export function writeOpt(buf: Buffer, offset: number, extendedRcode: number, dnssecOk: boolean): number {
  buf[offset] = 0;
  buf.writeUInt16BE(TYPE.OPT, offset + 1);
  buf.writeUInt16BE(ADVERTISED_UDP_SIZE, offset + 3);
  buf[offset + 5] = extendedRcode >> 4;
  buf[offset + 6] = 0;
  buf.writeUInt16BE(dnssecOk ? EDNS_DO : 0, offset + 7);
  buf.writeUInt16BE(0, offset + 9);
  return offset + OPT_RECORD_SIZE;
}

// ---- encoding --------------------------------------------------------------------------------------------

class MessageFull extends Error {}

/**
 * Writes a message into a scratch buffer, with a compression table of name suffixes → offsets. Suffixes
 * match byte for byte (case-sensitively): compression never changes how a name is spelled, e.g. a
 * CNAME target does not take the case of a client's mixed-case question.
 */
class MessageWriter {
  pos = 0;
  private readonly offsets = new Map<string, number>();
  constructor(readonly buf: Buffer) {}

  private room(n: number): void {
    if (this.pos + n > this.buf.length) throw new MessageFull();
  }
  u8(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v;
  }
  u16(v: number): void {
    this.room(2);
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
  }
  u32(v: number): void {
    this.room(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
  }
  bytes(b: Buffer): void {
    this.room(b.length);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
  }

  /**
   * Remembers the suffixes of the question (wire form at `offset`), so that answers point into it. Only
   * for plain ASCII names without "." inside labels: then the dotted string and the wire agree byte for
   * byte; otherwise answers are simply written without pointing into the question.
   */
  noteQuestion(buf: Buffer, offset: number): void {
    const starts: number[] = [];
    for (let pos = offset; (buf[pos] as number) > 0; pos += (buf[pos] as number) + 1) {
      for (let i = pos + 1; i <= pos + (buf[pos] as number); i++) {
        const c = buf[i] as number;
        if (c === 0x2e || c < 0x21 || c > 0x7e) return;
      }
      starts.push(pos);
    }
    for (const start of starts) {
      if (start >= 0x3fff) break;
      const labels: string[] = [];
      for (let pos = start; (buf[pos] as number) > 0; pos += (buf[pos] as number) + 1)
        labels.push(buf.toString("latin1", pos + 1, pos + 1 + (buf[pos] as number)));
      const suffix = labels.join(".");
      if (!this.offsets.has(suffix)) this.offsets.set(suffix, start);
    }
  }

  /**
   * Writes a domain name. With `compress`, the longest suffix already in the message becomes a pointer
   * (RFC 1035 §4.1.4); new suffixes are remembered either way, so later names may point into this one.
   */
  name(name: string, compress: boolean): void {
    const labels = splitName(name);
    let total = 1;
    for (let i = 0; i < labels.length; i++) {
      const label = labels[i] as string;
      const length = Buffer.byteLength(label);
      if (length === 0 || length > 63) throw new RangeError(`bad label "${label}" in name "${name}"`);
      total += length + 1;
      if (total > 255) throw new RangeError(`name longer than 255 bytes: "${name}"`);
      if (compress) {
        const known = this.offsets.get(labels.slice(i).join("."));
        if (known !== undefined) {
          this.u16(0xc000 | known);
          return;
        }
      }
      if (this.pos < 0x3fff) this.offsets.set(labels.slice(i).join("."), this.pos);
      this.room(length + 1);
      this.buf[this.pos] = length;
      this.pos += 1 + this.buf.write(label, this.pos + 1, "utf8");
    }
    this.u8(0);
  }

  /** Forgets suffixes recorded at or after `offset` (a record that did not fit was rolled back). */
  rollback(offset: number): void {
    for (const [suffix, at] of this.offsets) if (at >= offset) this.offsets.delete(suffix);
    this.pos = offset;
  }
}

function splitName(name: string): string[] {
  if (name === "." || name === "") return [];
  return (name.endsWith(".") ? name.slice(0, -1) : name).split(".");
}

function writeRdata(w: MessageWriter, record: DnsRecord): void {
  switch (record.type) {
    case "A":
    case "AAAA": {
      // dns-packet's address codecs write the rdata length, then the address.
      const codec = record.type === "A" ? dnsPacket.a : dnsPacket.aaaa;
      const scratch = Buffer.alloc(record.type === "A" ? 6 : 18);
      codec.encode(record.data, scratch, 0);
      w.bytes(scratch);
      return;
    }
    case "CNAME":
    case "PTR":
    case "NS":
    case "SOA":
    case "SRV":
    case "TXT": {
      const lengthAt = w.pos;
      w.u16(0);
      const start = w.pos;
      if (record.type === "SOA") {
        w.name(record.data.mname, true);
        w.name(record.data.rname, true);
        w.u32(record.data.serial);
        w.u32(record.data.refresh);
        w.u32(record.data.retry);
        w.u32(record.data.expire);
        w.u32(record.data.minimum);
      } else if (record.type === "SRV") {
        w.u16(record.data.priority);
        w.u16(record.data.weight);
        w.u16(record.data.port);
        // RFC 2782: the target is not compressed (RFC 3597 §4 lists the types that may be).
        w.name(record.data.target, false);
      } else if (record.type === "TXT") {
        for (const text of record.data.length ? record.data : [""]) writeCharacterStrings(w, text);
      } else {
        w.name(record.data, true);
      }
      w.buf.writeUInt16BE(w.pos - start, lengthAt);
      return;
    }
  }
}

/** A TXT string longer than 255 bytes becomes several character-strings, as zone files do. */
function writeCharacterStrings(w: MessageWriter, text: string): void {
  const bytes = Buffer.from(text, "utf8");
  let at = 0;
  do {
    const chunk = bytes.subarray(at, at + 255);
    w.u8(chunk.length);
    w.bytes(chunk);
    at += 255;
  } while (at < bytes.length);
}

function writeRecord(w: MessageWriter, record: DnsRecord): void {
  w.name(record.name, true);
  w.u16(typeNumber(record.type));
  w.u16(CLASS_IN);
  w.u32(record.ttl);
  writeRdata(w, record);
}

export interface ResponseContent {
  rcode: number;
  authoritative: boolean;
  answers: readonly DnsRecord[];
  authority: readonly DnsRecord[];
  additionals: readonly DnsRecord[];
}

const encodeScratch = Buffer.allocUnsafe(MAX_MESSAGE_SIZE);

/**
 * Encodes the answer to `query` (whose bytes are `queryBuf`): the question as the client wrote it, then
 * the records, compressed; no OPT record (added per client when sending, see `finishResponse`). Records
 * that do not fit in 64 KiB are left out with TC set.
 */
export function encodeResponse(queryBuf: Buffer, query: Query, content: ResponseContent): Buffer {
  const w = new MessageWriter(encodeScratch);
  w.u16(query.id);
  const flags =
    FLAG_QR |
    (content.authoritative ? FLAG_AA : 0) |
    (query.flags & (FLAG_RD | FLAG_CD)) |
    FLAG_RA |
    (content.rcode & RCODE_MASK);
  w.u16(flags);
  w.u16(1);
  w.u16(0);
  w.u16(0);
  w.u16(0);
  w.bytes(queryBuf.subarray(HEADER_SIZE, query.questionEnd));
  w.noteQuestion(encodeScratch, HEADER_SIZE);
  const sections = [content.answers, content.authority, content.additionals];
  let truncated = false;
  sections.forEach((records, section) => {
    let count = 0;
    for (const record of records) {
      if (truncated) break;
      const start = w.pos;
      try {
        writeRecord(w, record);
        count++;
      } catch (e) {
        if (!(e instanceof MessageFull)) throw e;
        w.rollback(start);
        truncated = true;
      }
    }
    encodeScratch.writeUInt16BE(count, 6 + 2 * section);
  });
  if (truncated) encodeScratch.writeUInt16BE(flags | FLAG_TC, 2);
  return Buffer.from(encodeScratch.subarray(0, w.pos));
}

/** A header-only answer (FORMERR, NOTIMP, ...) echoing the query's id, RD and CD. */
export function encodeHeaderOnly(id: number, queryFlags: number, rcode: number): Buffer {
  const buf = Buffer.alloc(HEADER_SIZE);
  buf.writeUInt16BE(id, 0);
  buf.writeUInt16BE(FLAG_QR | FLAG_RA | (queryFlags & (FLAG_RD | FLAG_CD)) | (rcode & RCODE_MASK), 2);
  return buf;
}

// ---- walking and truncating responses --------------------------------------------------------------------

export interface RecordSpan {
  /** 0 answer, 1 authority, 2 additional. */
  section: number;
  start: number;
  end: number;
  type: number;
  ttlOffset: number;
  ttl: number;
  /** For SOA records: the MINIMUM field (negative-caching TTL, RFC 2308). */
  soaMinimum?: number;
}

export interface ResponseLayout {
  id: number;
  flags: number;
  rcode: number;
  qdcount: number;
  questionEnd: number;
  records: RecordSpan[];
}

/** Walks a response's records (names may be compressed); undefined when malformed. */
export function walkResponse(buf: Buffer): ResponseLayout | undefined {
  if (buf.length < HEADER_SIZE) return undefined;
  const qdcount = buf.readUInt16BE(4);
  const counts = [buf.readUInt16BE(6), buf.readUInt16BE(8), buf.readUInt16BE(10)];
  let pos = HEADER_SIZE;
  for (let i = 0; i < qdcount; i++) {
    const end = skipName(buf, pos);
    if (end < 0 || end + 4 > buf.length) return undefined;
    pos = end + 4;
  }
  const questionEnd = pos;
  const records: RecordSpan[] = [];
  for (let section = 0; section < 3; section++) {
    for (let i = 0; i < (counts[section] as number); i++) {
      const nameEnd = skipName(buf, pos);
      if (nameEnd < 0 || nameEnd + 10 > buf.length) return undefined;
      const type = buf.readUInt16BE(nameEnd);
      const end = nameEnd + 10 + buf.readUInt16BE(nameEnd + 8);
      if (end > buf.length) return undefined;
      const span: RecordSpan = {
        section,
        start: pos,
        end,
        type,
        ttlOffset: nameEnd + 4,
        ttl: buf.readUInt32BE(nameEnd + 4),
      };
      if (type === TYPE.SOA && end - 20 >= nameEnd + 10) span.soaMinimum = buf.readUInt32BE(end - 4);
      records.push(span);
      pos = end;
    }
  }
  const flags = buf.readUInt16BE(2);
  return { id: buf.readUInt16BE(0), flags, rcode: flags & RCODE_MASK, qdcount, questionEnd, records };
}

/**
 * The response without its OPT record (when it is the last record, as servers write it), for re-use with
 * any client; undefined when an OPT record sits elsewhere (then the caller should not cache it).
 */
export function withoutOpt(
  buf: Buffer,
  layout: ResponseLayout,
): { buf: Buffer; layout: ResponseLayout } | undefined {
  const optIndex = layout.records.findIndex((r) => r.type === TYPE.OPT);
  if (optIndex < 0) return { buf, layout };
  if (optIndex !== layout.records.length - 1) return undefined;
  const opt = layout.records[optIndex] as RecordSpan;
  const stripped = Buffer.from(buf.subarray(0, opt.start));
  stripped.writeUInt16BE(buf.readUInt16BE(10) - 1, 10);
  return { buf: stripped, layout: { ...layout, records: layout.records.slice(0, optIndex) } };
}

/**
 * Cuts a response (without OPT) to at most `limit` bytes at a record boundary, leaving `reserve` bytes for
 * an OPT record. TC is set when answer or authority records were dropped; dropping only additional
 * records does not need it (RFC 2181 §9). Name pointers only point backwards, so a prefix stays valid.
 */
export function truncateResponse(
  buf: Buffer,
  layout: ResponseLayout,
  limit: number,
  reserve: number,
): Buffer {
  const room = limit - reserve;
  let kept = 0;
  while (kept < layout.records.length && (layout.records[kept] as RecordSpan).end <= room) kept++;
  const end = kept === 0 ? layout.questionEnd : (layout.records[kept - 1] as RecordSpan).end;
  const out = Buffer.from(buf.subarray(0, Math.min(end, room >= layout.questionEnd ? end : HEADER_SIZE)));
  const counts = [0, 0, 0];
  for (let i = 0; i < kept; i++) {
    const section = (layout.records[i] as RecordSpan).section;
    counts[section] = (counts[section] as number) + 1;
  }
  const droppedNeeded = layout.records.slice(kept).some((r) => r.section < 2);
  if (out.length === HEADER_SIZE) out.writeUInt16BE(0, 4);
  for (let s = 0; s < 3; s++) out.writeUInt16BE(counts[s] as number, 6 + 2 * s);
  if (droppedNeeded) out.writeUInt16BE(out.readUInt16BE(2) | FLAG_TC, 2);
  return out;
}

/** The question section of a message in lower case, to match upstream answers to queries. */
export function questionText(buf: Buffer): string | undefined {
  if (buf.length < HEADER_SIZE || buf.readUInt16BE(4) !== 1) return undefined;
  const end = skipName(buf, HEADER_SIZE);
  if (end < 0 || end + 4 > buf.length) return undefined;
  return buf.toString("latin1", HEADER_SIZE, end + 4).toLowerCase();
}
