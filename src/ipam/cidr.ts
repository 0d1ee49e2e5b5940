// CIDR math for IPv4 and IPv6 on bigint. Text is parsed here once (ipaddr.js reads the IPv6 notation);
// everything after that is integer arithmetic, so planners can call these functions hundreds of
// thousands of times without re-parsing.
import ipaddr from "ipaddr.js";

export type Family = 4 | 6;

/** An address as an unsigned integer: 0..2^32-1 for IPv4, 0..2^128-1 for IPv6. */
export interface IpAddress {
  family: Family;
  value: bigint;
}

/** A network: `network` always has its host bits zero. */
export interface Cidr {
  family: Family;
  network: bigint;
  prefix: number;
}

/** An inclusive range of addresses of one family. */
export interface IpRange {
  family: Family;
  start: bigint;
  end: bigint;
}

/** Thrown for text that is not a valid IP address or CIDR; the message names the text and the fix. */
export class CidrError extends Error {
  /** The text that was rejected. */
  readonly input: string;
  constructor(message: string, input: string) {
    super(message);
    this.name = "CidrError";
    this.input = input;
  }
}

// ---------------------------------------------------------------------------------------------
// Masks, computed once per prefix length.

function buildHostMasks(bits: number): bigint[] {
  const masks: bigint[] = [];
  for (let prefix = 0; prefix <= bits; prefix++) masks.push((1n << BigInt(bits - prefix)) - 1n);
  return masks;
}

const HOST_MASKS_4 = buildHostMasks(32);
const HOST_MASKS_6 = buildHostMasks(128);

export function hostBits(family: Family): number {
  return family === 4 ? 32 : 128;
}

export function familyName(f: Family): "IPv4" | "IPv6" {
  return f === 4 ? "IPv4" : "IPv6";
}

/** Mask of the host part of a /prefix: the low (bits - prefix) bits set. */
function hostMask(family: Family, prefix: number): bigint {
  const mask = family === 4 ? HOST_MASKS_4[prefix] : HOST_MASKS_6[prefix];
  if (mask === undefined) {
    throw new RangeError(
      `prefix length ${prefix} is out of range for ${familyName(family)} (0..${hostBits(family)})`,
    );
  }
  return mask;
}

// ---------------------------------------------------------------------------------------------
// Parsing.

const HINT = "expected an IPv4 address like 10.0.0.1 or an IPv6 address like 2001:db8::1";

function ipError(text: string, reason?: string): CidrError {
  return new CidrError(`"${text}" is not a valid IP address${reason ? `: ${reason}` : ` (${HINT})`}`, text);
}

/**
 * Parses a strict dotted quad (four decimal octets, no leading zeros). Returns the value as a number,
 * or a reason string.
 */
function parseIpv4Number(s: string): number | string {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  let leadingZero = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits === 1 && octet === 0) leadingZero = true;
      octet = octet * 10 + (c - 48);
      digits++;
      if (digits > 3) return "an IPv4 octet has more than three digits";
    } else if (c === 46) {
      if (digits === 0) return "an IPv4 octet is empty";
      if (octet > 255) return `octet ${octet} is greater than 255`;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
      if (dots > 3) return "an IPv4 address has exactly four octets (like 10.0.0.1)";
    } else {
      return HINT;
    }
  }
  if (digits === 0) return "an IPv4 octet is empty";
  if (octet > 255) return `octet ${octet} is greater than 255`;
  if (dots !== 3) return "an IPv4 address has exactly four octets (like 10.0.0.1)";
  if (leadingZero) {
    const fixed = s
      .split(".")
      .map((o) => String(Number(o)))
      .join(".");
    return `IPv4 octets with leading zeros are ambiguous (octal or decimal?); write ${fixed} if decimal was meant`;
  }
  return value * 256 + octet;
}

const IPV6_CHARS = /^[0-9a-fA-F:]+$/;

function parseIpv6Value(text: string): bigint | string {
  let s = text;
  // An embedded dotted quad ("::ffff:10.0.0.1", "64:ff9b::192.0.2.1") is converted to two hex groups
  // here, with the same strict IPv4 rules; ipaddr.js would accept octal and rewrite "::a.b.c.d".
  const lastColon = s.lastIndexOf(":");
  const tail = s.slice(lastColon + 1);
  if (tail.includes(".")) {
    const v4 = parseIpv4Number(tail);
    if (typeof v4 === "string") return `the embedded IPv4 address "${tail}" is invalid: ${v4}`;
    s = `${s.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  if (!IPV6_CHARS.test(s)) return HINT;
  if (s.indexOf("::") !== s.lastIndexOf("::")) return `"::" may appear only once in an IPv6 address`;
  for (const group of s.split(":")) {
    if (group.length > 4) return `IPv6 group "${group}" has more than four hex digits`;
  }
  let parts: number[];
  try {
    parts = ipaddr.IPv6.parse(s).parts;
  } catch {
    return HINT;
  }
  if (parts.length !== 8) return HINT;
  let hi = 0;
  let lo = 0;
  let value = 0n;
  for (let i = 0; i < 8; i += 2) {
    hi = parts[i] ?? 0;
    lo = parts[i + 1] ?? 0;
    value = (value << 32n) | BigInt(hi * 65536 + lo);
  }
  return value;
}

/** Parses an IPv4 (dotted quad) or IPv6 address. Throws CidrError naming the text and the fix. */
export function parseIp(text: string): IpAddress {
  if (typeof text !== "string" || text.length === 0) throw ipError(String(text ?? ""), "the text is empty");
  if (/\s/.test(text)) throw ipError(text, "it contains whitespace; remove it");
  const slash = text.indexOf("/");
  if (slash >= 0) {
    throw ipError(
      text,
      `it is a CIDR, not an address; write ${text.slice(0, slash)} without "${text.slice(slash)}"`,
    );
  }
  const percent = text.indexOf("%");
  if (percent >= 0) {
    const zone = text.slice(percent);
    throw ipError(text, `zone indexes ("${zone}") are not allowed; remove "${zone}"`);
  }
  if (text.includes(":")) {
    const v6 = parseIpv6Value(text);
    if (typeof v6 === "string") throw ipError(text, v6);
    return { family: 6, value: v6 };
  }
  const v4 = parseIpv4Number(text);
  if (typeof v4 === "string") throw ipError(text, v4 === HINT ? undefined : v4);
  return { family: 4, value: BigInt(v4) };
}

export function tryParseIp(text: string): IpAddress | undefined {
  try {
    return parseIp(text);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Formatting.

function formatIpv4(value: bigint): string {
  const v = Number(value);
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

const MAPPED_PREFIX = 0xffffn << 32n;

const MASK_32 = 0xffffffffn;

/**
 * RFC 5952 text: lowercase hex without leading zeros, the longest run (the first on a tie) of two or
 * more zero groups compressed to "::". Equivalent to ipaddr.js's toRFC5952String (the tests check it
 * against ipaddr.js), but about ten times faster, which matters when a planner formats 100,000 pod IPs.
 */
function formatIpv6(value: bigint): string {
  // RFC 5952 section 5: IPv4-mapped addresses keep the dotted quad.
  if (value >> 32n === 0xffffn) return `::ffff:${formatIpv4(value ^ MAPPED_PREFIX)}`;
  const w0 = Number((value >> 96n) & MASK_32);
  const w1 = Number((value >> 64n) & MASK_32);
  const w2 = Number((value >> 32n) & MASK_32);
  const w3 = Number(value & MASK_32);
  const g = [w0 >>> 16, w0 & 0xffff, w1 >>> 16, w1 & 0xffff, w2 >>> 16, w2 & 0xffff, w3 >>> 16, w3 & 0xffff];
  let bestStart = -1;
  let bestLength = 1; // a single zero group is not compressed
  let runStart = -1;
  for (let i = 0; i <= 8; i++) {
    if (i < 8 && g[i] === 0) {
      if (runStart < 0) runStart = i;
    } else if (runStart >= 0) {
      if (i - runStart > bestLength) {
        bestStart = runStart;
        bestLength = i - runStart;
      }
      runStart = -1;
    }
  }
  if (bestStart < 0) return g.map((x) => x.toString(16)).join(":");
  let out = "";
  for (let i = 0; i < bestStart; i++) out += `${i > 0 ? ":" : ""}${(g[i] ?? 0).toString(16)}`;
  out += "::";
  for (let i = bestStart + bestLength; i < 8; i++) {
    out += `${i > bestStart + bestLength ? ":" : ""}${(g[i] ?? 0).toString(16)}`;
  }
  return out;
}

/** Canonical text: dotted quad for IPv4, RFC 5952 for IPv6 (IPv4-mapped as ::ffff:a.b.c.d). */
export function formatIp(ip: IpAddress): string {
  return ip.family === 4 ? formatIpv4(ip.value) : formatIpv6(ip.value);
}

export function formatCidr(c: Cidr): string {
  return `${formatIp({ family: c.family, value: c.network })}/${c.prefix}`;
}

// ---------------------------------------------------------------------------------------------
// CIDRs.

function cidrError(text: string, reason: string): CidrError {
  return new CidrError(`"${text}" is not a valid CIDR: ${reason}`, text);
}

/**
 * Parses "10.0.0.0/8" or "2001:db8::/32". With `strict` (the default) host bits must be zero;
 * `strict: false` masks them off ("10.96.0.1/12" becomes 10.96.0.0/12).
 */
export function parseCidr(text: string, options?: { strict?: boolean }): Cidr {
  const strict = options?.strict ?? true;
  if (typeof text !== "string" || text.length === 0) {
    throw cidrError(
      String(text ?? ""),
      "the text is empty; write a network like 10.0.0.0/8 or 2001:db8::/32",
    );
  }
  const slash = text.indexOf("/");
  if (slash < 0) {
    const ip = tryParseIp(text);
    const example = ip === undefined ? "10.0.0.0/8" : ip.family === 6 ? `${text}/64` : `${text}/24`;
    const single = ip ? ` (or /${hostBits(ip.family)} for the single address)` : "";
    throw cidrError(text, `the prefix length is missing; add /N, e.g. "${example}"${single}`);
  }
  const addressText = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  let ip: IpAddress;
  try {
    ip = parseIp(addressText);
  } catch (e) {
    throw cidrError(text, (e as Error).message);
  }
  const bits = hostBits(ip.family);
  const fam = familyName(ip.family);
  if (!/^[0-9]{1,3}$/.test(prefixText)) {
    throw cidrError(text, `prefix length "${prefixText}" is not a whole number from 0 to ${bits} (${fam})`);
  }
  if (prefixText.length > 1 && prefixText.startsWith("0")) {
    throw cidrError(text, `prefix length "${prefixText}" has a leading zero; write /${Number(prefixText)}`);
  }
  const prefix = Number(prefixText);
  if (prefix > bits) {
    throw cidrError(text, `prefix length ${prefix} is out of range; ${fam} prefix lengths are 0 to ${bits}`);
  }
  const mask = hostMask(ip.family, prefix);
  const network = ip.value & ~mask;
  if (network !== ip.value && strict) {
    const fixed = formatCidr({ family: ip.family, network, prefix });
    throw new CidrError(`"${text}" has host bits set; did you mean ${fixed}?`, text);
  }
  return { family: ip.family, network, prefix };
}

export function tryParseCidr(text: string): Cidr | undefined {
  try {
    return parseCidr(text);
  } catch {
    return undefined;
  }
}

/** Number of addresses in the CIDR: 2^(bits - prefix). */
export function cidrSize(c: Cidr): bigint {
  return hostMask(c.family, c.prefix) + 1n;
}

export function lastAddress(c: Cidr): bigint {
  return c.network | hostMask(c.family, c.prefix);
}

export function containsIp(c: Cidr, ip: IpAddress): boolean {
  if (c.family !== ip.family) return false;
  return (ip.value & ~hostMask(c.family, c.prefix)) === c.network;
}

export function containsCidr(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || inner.prefix < outer.prefix) return false;
  return (inner.network & ~hostMask(outer.family, outer.prefix)) === outer.network;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  // Aligned blocks overlap only when one contains the other.
  return a.prefix <= b.prefix ? containsCidr(a, b) : containsCidr(b, a);
}

function toBigInt(n: bigint | number, what: string): bigint {
  if (typeof n === "bigint") return n;
  if (!Number.isInteger(n)) throw new RangeError(`${what} ${n} is not a whole number`);
  return BigInt(n);
}

/**
 * The address at offset n from the network address; a negative n counts from the end (-1 is the last
 * address). Throws RangeError when n is outside the CIDR.
 */
export function nthAddress(c: Cidr, n: bigint | number): IpAddress {
  const offset = toBigInt(n, "offset");
  const size = cidrSize(c);
  const resolved = offset < 0n ? size + offset : offset;
  if (resolved < 0n || resolved >= size) {
    throw new RangeError(
      `offset ${offset} is outside ${formatCidr(c)}, which has ${size} addresses (valid offsets 0..${size - 1n}, or -${size}..-1 from the end)`,
    );
  }
  return { family: c.family, value: c.network + resolved };
}

/** Inverse of nthAddress: the offset of ip from the network address. Throws RangeError when ip is outside. */
export function offsetOf(c: Cidr, ip: IpAddress): bigint {
  if (!containsIp(c, ip)) {
    throw new RangeError(`${familyName(ip.family)} address ${formatIp(ip)} is not inside ${formatCidr(c)}`);
  }
  return ip.value - c.network;
}

function checkBlockPrefix(c: Cidr, blockPrefix: number): void {
  const bits = hostBits(c.family);
  if (!Number.isInteger(blockPrefix) || blockPrefix < c.prefix || blockPrefix > bits) {
    throw new RangeError(
      `block size /${blockPrefix} does not fit in ${formatCidr(c)}; use a prefix length from /${c.prefix} to /${bits}`,
    );
  }
}

/** How many /blockPrefix blocks fit in c. Throws RangeError when blockPrefix < c.prefix or > bits. */
export function blockCount(c: Cidr, blockPrefix: number): bigint {
  checkBlockPrefix(c, blockPrefix);
  return 1n << BigInt(blockPrefix - c.prefix);
}

/** The index-th /blockPrefix block of c (0 is the first; a negative index counts from the end). */
export function nthBlock(c: Cidr, blockPrefix: number, index: bigint | number): Cidr {
  const count = blockCount(c, blockPrefix);
  const i = toBigInt(index, "block index");
  const resolved = i < 0n ? count + i : i;
  if (resolved < 0n || resolved >= count) {
    throw new RangeError(
      `block index ${i} is outside ${formatCidr(c)}, which has ${count} /${blockPrefix} blocks (valid indexes 0..${count - 1n})`,
    );
  }
  const shift = BigInt(hostBits(c.family) - blockPrefix);
  return { family: c.family, network: c.network + (resolved << shift), prefix: blockPrefix };
}

export function cidrToRange(c: Cidr): IpRange {
  return { family: c.family, start: c.network, end: lastAddress(c) };
}

export function rangesOverlap(a: IpRange, b: IpRange): boolean {
  return a.family === b.family && a.start <= b.end && b.start <= a.end;
}

/** True when both addresses are the same family and value. */
export function ipEquals(a: IpAddress, b: IpAddress): boolean {
  return a.family === b.family && a.value === b.value;
}

/** True when both CIDRs are the same network and prefix. */
export function cidrEquals(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.prefix === b.prefix && a.network === b.network;
}
