/**
 * IP address and CIDR syntax, strict as Go's net package (no leading zeros, no zones, no host bits
 * in a CIDR), with messages that say what to write instead. Byte-level helpers for containment.
 */
import ipaddr from "ipaddr.js";
import type { IpFamily } from "./types.js";

export interface Ip {
  family: IpFamily;
  bytes: number[];
  text: string;
}

export interface Cidr {
  family: IpFamily;
  /** Network address bytes. */
  bytes: number[];
  prefix: number;
  /** Canonical text, e.g. `10.96.0.0/12`. */
  text: string;
}

export interface NetError {
  error: string;
  hint?: string;
}

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function ipToString(family: IpFamily, bytes: number[]): string {
  if (family === "IPv4") return bytes.join(".");
  return ipaddr.fromByteArray(bytes).toString();
}

/** Parses an IP address; returns an error message for anything Go's net.ParseIP would reject. */
export function parseIp(text: string): Ip | NetError {
  const t = text.trim();
  if (t !== text) return { error: `"${text}" has surrounding spaces`, hint: `write "${t}"` };
  if (text === "") return { error: "must be a valid IP address, found an empty string" };
  const m = V4.exec(text);
  if (m) {
    const parts = m.slice(1, 5);
    const bytes = parts.map((p) => Number(p));
    if (bytes.some((b) => b > 255)) {
      return { error: `"${text}" is not a valid IP address: each IPv4 part must be 0..255` };
    }
    if (parts.some((p) => p.length > 1 && p[0] === "0")) {
      const fixed = bytes.join(".");
      return {
        error: `"${text}" has leading zeros, which are ambiguous (octal or decimal)`,
        hint: `write ${fixed}`,
      };
    }
    return { family: "IPv4", bytes, text };
  }
  if (text.includes(":")) {
    if (text.includes("%"))
      return {
        error: `"${text}" has a zone index, which is not allowed here`,
        hint: `write ${text.split("%")[0]}`,
      };
    if (ipaddr.IPv6.isValid(text)) {
      const bytes = ipaddr.IPv6.parse(text).toByteArray();
      return { family: "IPv6", bytes, text };
    }
  }
  if (text.includes("/"))
    return { error: `"${text}" is a CIDR, not an IP address`, hint: `write ${text.split("/")[0]}` };
  return { error: `must be a valid IP address (e.g. 10.9.8.7 or 2001:db8::ffff), found "${text}"` };
}

/** Parses a CIDR strictly: the address must be the network address (no host bits set). */
export function parseCidr(text: string): Cidr | NetError {
  const slash = text.indexOf("/");
  if (slash === -1) {
    const ip = parseIp(text);
    const bits = "error" in ip ? 32 : ip.family === "IPv4" ? 32 : 128;
    return {
      error: `must be a valid CIDR (e.g. 10.0.0.0/16 or fd00::/64), found "${text}" without a prefix length`,
      hint: "error" in ip ? undefined : `write ${text}/${bits} for a single address, or the network's CIDR`,
    };
  }
  const ip = parseIp(text.slice(0, slash));
  if ("error" in ip)
    return { error: `must be a valid CIDR (e.g. 10.0.0.0/16 or fd00::/64): ${ip.error}`, hint: ip.hint };
  const ptext = text.slice(slash + 1);
  const max = ip.family === "IPv4" ? 32 : 128;
  if (!/^(0|[1-9]\d{0,2})$/.test(ptext) || Number(ptext) > max) {
    return { error: `"${text}" has an invalid prefix length "${ptext}": must be 0..${max} for ${ip.family}` };
  }
  const prefix = Number(ptext);
  const net = maskBytes(ip.bytes, prefix);
  const netText = `${ipToString(ip.family, net)}/${prefix}`;
  if (net.some((b, i) => b !== ip.bytes[i])) {
    return { error: `${text} has host bits set; did you mean ${netText}?`, hint: `write ${netText}` };
  }
  return { family: ip.family, bytes: net, prefix, text: netText };
}

export function isNetError(v: unknown): v is NetError {
  return typeof v === "object" && v !== null && "error" in v;
}

function maskBytes(bytes: number[], prefix: number): number[] {
  return bytes.map((b, i) => {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    return bits === 8 ? b : b & ((0xff << (8 - bits)) & 0xff);
  });
}

export function cidrContainsIp(c: Cidr, ip: Ip): boolean {
  if (c.family !== ip.family) return false;
  const m = maskBytes(ip.bytes, c.prefix);
  return m.every((b, i) => b === c.bytes[i]);
}

/** True when `inner` lies inside `outer` (equal counts as inside). */
export function cidrContainsCidr(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || inner.prefix < outer.prefix) return false;
  const m = maskBytes(inner.bytes, outer.prefix);
  return m.every((b, i) => b === outer.bytes[i]);
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrContainsCidr(a, b) || cidrContainsCidr(b, a);
}

/** The n-th address of a CIDR (0 = network address), or undefined when outside it. */
export function nthAddress(c: Cidr, n: number): string | undefined {
  const bits = c.bytes.length * 8 - c.prefix;
  if (bits < 53 && n >= 2 ** bits) return undefined;
  const bytes = c.bytes.slice();
  let carry = n;
  for (let i = bytes.length - 1; i >= 0 && carry > 0; i--) {
    const sum = (bytes[i] as number) + (carry % 256);
    carry = Math.floor(carry / 256) + (sum > 255 ? 1 : 0);
    bytes[i] = sum & 0xff;
  }
  return ipToString(c.family, bytes);
}

/** Number of addresses in a CIDR (capped at 2^53). */
export function cidrSize(c: Cidr): number {
  const bits = c.bytes.length * 8 - c.prefix;
  return bits >= 53 ? Number.MAX_SAFE_INTEGER : 2 ** bits;
}

/** Rejects addresses that cannot be a service's external address (as Kubernetes' ValidateNonSpecialIP). */
export function specialIpProblem(ip: Ip): string | undefined {
  const b = ip.bytes;
  if (b.every((x) => x === 0)) return "may not be unspecified (0.0.0.0 or ::)";
  if (ip.family === "IPv4") {
    if (b[0] === 127) return "may not be in the loopback range (127.0.0.0/8)";
    if (b[0] === 169 && b[1] === 254) return "may not be in the link-local range (169.254.0.0/16)";
    if ((b[0] as number) >= 224 && (b[0] as number) <= 239)
      return "may not be in the multicast range (224.0.0.0/4)";
    return undefined;
  }
  if (b.slice(0, 15).every((x) => x === 0) && b[15] === 1) return "may not be the loopback address (::1)";
  if (b[0] === 0xfe && ((b[1] as number) & 0xc0) === 0x80)
    return "may not be in the link-local range (fe80::/10)";
  if (b[0] === 0xff) return "may not be in the multicast range (ff00::/8)";
  return undefined;
}
