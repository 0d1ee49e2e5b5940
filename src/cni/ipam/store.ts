// The on-disk allocation store of podnet-ipam: one directory per network under dataDir, one file per
// allocated address (named by the address, content "containerID\nifname").
//
// Locking: an address file is created atomically with its full content: the content is written to a
// private temporary file which is then hard-linked to the address's name. link(2) fails with EEXIST when
// the name exists, so of any number of processes racing for one address exactly one wins, and a file that
// exists always names its owner. A process killed at any point leaves either nothing, a temporary file
// (removed by GC), or a complete allocation (a leak that DEL or GC releases), never a half-owned address.
//
// `last_reserved_ip.<set>` remembers where round-robin allocation continues (written with write+rename);
// a stale value only changes where the search starts.
import {
  closeSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { formatIp, type IpAddress, tryParseIp } from "../../ipam/cidr.js";

export interface Owner {
  containerID: string;
  /** "" for files written by old host-local versions, which stored only the container ID. */
  ifname: string;
}

export interface Allocation {
  ip: IpAddress;
  /** File name inside the network directory. */
  file: string;
  /** Undefined when the file is empty or unreadable (not written by a current podnet-ipam). */
  owner?: Owner;
}

const TEMP_PREFIX = ".tmp-";
const LAST_RESERVED = "last_reserved_ip.";

let tempCounter = 0;

function tempName(): string {
  tempCounter++;
  return `${TEMP_PREFIX}${process.pid}-${tempCounter}-${Math.random().toString(36).slice(2, 8)}`;
}

function isErrno(e: unknown, code: string): boolean {
  return (e as NodeJS.ErrnoException | null)?.code === code;
}

/** Parses an allocation file's content ("id\nifname", also host-local's "id\r\nifname" and bare "id"). */
export function parseOwner(text: string): Owner | undefined {
  const lines = text.split(/\r?\n/);
  const containerID = lines[0]?.trim() ?? "";
  if (containerID === "") return undefined;
  return { containerID, ifname: lines[1]?.trim() ?? "" };
}

export function sameOwner(a: Owner, b: Owner): boolean {
  return a.containerID === b.containerID && (a.ifname === b.ifname || a.ifname === "" || b.ifname === "");
}

export class AllocationStore {
  /** dataDir/network */
  readonly dir: string;
  private dirReady = false;

  constructor(dataDir: string, network: string) {
    this.dir = join(dataDir, network);
  }

  ensureDir(): void {
    if (this.dirReady) return;
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    this.dirReady = true;
  }

  private names(): string[] {
    try {
      return readdirSync(this.dir);
    } catch (e) {
      if (isErrno(e, "ENOENT")) return [];
      throw e;
    }
  }

  /** Every allocation; with `withOwners`, each file's owner is read too. */
  list(withOwners: boolean): Allocation[] {
    const out: Allocation[] = [];
    for (const file of this.names()) {
      if (file.startsWith(".") || file.startsWith(LAST_RESERVED) || file === "lock") continue;
      const ip = tryParseIp(file);
      if (!ip) continue;
      const a: Allocation = { ip, file };
      if (withOwners) {
        const owner = this.readOwner(file);
        if (owner === null) continue; // released meanwhile
        if (owner) a.owner = owner;
      }
      out.push(a);
    }
    return out;
  }

  /** The owner of an allocation file; null when the file no longer exists, undefined when unreadable. */
  readOwner(file: string): Owner | undefined | null {
    try {
      return parseOwner(readFileSync(join(this.dir, file), "utf8"));
    } catch (e) {
      if (isErrno(e, "ENOENT")) return null;
      return undefined;
    }
  }

  /** Modification time of an allocation file in ms (undefined when gone). */
  mtimeMs(file: string): number | undefined {
    try {
      return statSync(join(this.dir, file)).mtimeMs;
    } catch {
      return undefined;
    }
  }

  /**
   * Reserves the first of `candidates` that is free, for `owner`. Returns the address, or undefined when
   * every candidate was taken. Safe against any number of concurrent processes (see the file comment).
   */
  reserveFirst(candidates: Iterable<IpAddress>, owner: Owner): IpAddress | undefined {
    this.ensureDir();
    const temp = join(this.dir, tempName());
    const fd = openSync(temp, "wx", 0o644);
    try {
      writeSync(fd, `${owner.containerID}\n${owner.ifname}`);
    } finally {
      closeSync(fd);
    }
    try {
      for (const ip of candidates) {
        try {
          linkSync(temp, join(this.dir, formatIp(ip)));
          return ip;
        } catch (e) {
          if (!isErrno(e, "EEXIST")) throw e;
        }
      }
      return undefined;
    } finally {
      try {
        unlinkSync(temp);
      } catch {
        // Already gone: nothing to clean.
      }
    }
  }

  /** Removes an allocation file; with `expected`, only when it still belongs to that owner. */
  release(file: string, expected?: Owner): boolean {
    if (expected) {
      const owner = this.readOwner(file);
      if (owner === null) return false;
      if (owner && !sameOwner(owner, expected)) return false;
    }
    try {
      unlinkSync(join(this.dir, file));
      return true;
    } catch (e) {
      if (isErrno(e, "ENOENT")) return false;
      throw e;
    }
  }

  lastReserved(set: number): IpAddress | undefined {
    try {
      return tryParseIp(readFileSync(join(this.dir, `${LAST_RESERVED}${set}`), "utf8").trim());
    } catch {
      return undefined;
    }
  }

  setLastReserved(set: number, ip: IpAddress): void {
    this.ensureDir();
    const temp = join(this.dir, `${tempName()}-last`);
    const fd = openSync(temp, "wx", 0o644);
    try {
      writeSync(fd, formatIp(ip));
    } finally {
      closeSync(fd);
    }
    renameSync(temp, join(this.dir, `${LAST_RESERVED}${set}`));
  }

  /**
   * Removes temporary files left by processes that no longer exist (killed mid-write), and any older than
   * `maxAgeMs`. Returns how many were removed.
   */
  cleanTempFiles(maxAgeMs = 10 * 60_000): number {
    let removed = 0;
    const now = Date.now();
    for (const file of this.names()) {
      if (!file.startsWith(TEMP_PREFIX)) continue;
      const pid = Number(file.slice(TEMP_PREFIX.length).split("-")[0]);
      const mtime = this.mtimeMs(file);
      const stale = !processAlive(pid) || (mtime !== undefined && now - mtime > maxAgeMs);
      if (stale && pid !== process.pid) {
        try {
          unlinkSync(join(this.dir, file));
          removed++;
        } catch {
          // Removed by someone else.
        }
      }
    }
    return removed;
  }
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return isErrno(e, "EPERM");
  }
}
