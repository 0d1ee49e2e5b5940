// Interface names and MAC addresses derived from stable inputs. Linux interface names are at most 15
// bytes, so names made from long identifiers (container IDs) are hashed; the hash is deterministic so the
// name can be computed again later (DEL finds the host side of a veth without entering the pod namespace).
import { sha256 as digest } from "./sha256.js";

/** Longest interface name Linux accepts (IFNAMSIZ - 1). */
export const MAX_IFNAME_BYTES = 15;

function sha256(parts: readonly string[]): Uint8Array {
  // "/" cannot appear in interface names or container IDs, so joining with it is unambiguous.
  return digest(parts.join("/"));
}

function hex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** `prefix` + the first hex digits of sha256(parts joined by "/"), filling up to 15 bytes (at most `hexDigits`). */
export function hashedName(prefix: string, parts: readonly string[], hexDigits = 8): string {
  const room = MAX_IFNAME_BYTES - Buffer.byteLength(prefix);
  if (room < 4) throw new RangeError(`prefix "${prefix}" leaves fewer than 4 bytes for the hash`);
  return prefix + hex(sha256(parts)).slice(0, Math.min(hexDigits, room));
}

/** Host-side veth name of an attachment: `veth` + 8 hex digits of sha256(containerID/ifname). */
export function hostVethName(containerId: string, ifname: string): string {
  return hashedName("veth", [containerId, ifname]);
}

/**
 * A deterministic, locally administered, unicast MAC address for (kind, …parts), e.g.
 * `deterministicMac("container", id, "eth0")`. 46 random bits: collisions on one bridge are negligible.
 */
export function deterministicMac(kind: string, ...parts: string[]): string {
  const h = sha256([kind, ...parts]);
  const bytes = [...h.subarray(0, 6)];
  bytes[0] = ((bytes[0] ?? 0) & 0xfc) | 0x02; // locally administered, unicast
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join(":");
}

/**
 * Why `name` is not a valid Linux interface name, or undefined when it is: not empty, not "." or "..",
 * at most 15 bytes, no "/", ":" or whitespace.
 */
export function ifnameProblem(name: string): string | undefined {
  if (name.length === 0) return "it is empty";
  if (name === "." || name === "..") return `"${name}" is reserved`;
  const bytes = Buffer.byteLength(name);
  if (bytes > MAX_IFNAME_BYTES) return `it is ${bytes} bytes long; Linux allows at most ${MAX_IFNAME_BYTES}`;
  if (/[/:\s]/.test(name)) return `it contains "/", ":" or whitespace, which Linux does not allow`;
  return undefined;
}
