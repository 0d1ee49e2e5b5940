/**
 * The response cache: fully encoded answers keyed by the question's bytes (name lower-cased) and the DO
 * bit, so that a hit costs a copy and a few patched bytes (id, flags, the client's spelling of the name,
 * the OPT record), not a lookup and an encoding. Entries keep TTL semantics: they expire, and the TTLs a
 * client sees count down with the time spent in the cache (patched in place, once per second per entry).
 *
 * Two partitions as CoreDNS's cache: success (answers) and denial (NXDOMAIN and NODATA), each with its own
 * capacity and TTL bounds. When a partition is full the oldest entry goes (insertion order; cheaper on the
 * hot path than LRU and, with expiry, close to it for DNS workloads). Not cached: SERVFAIL, REFUSED and
 * other errors, truncated answers, and denials without an SOA (RFC 2308 §5: no TTL to use).
 */
import type { CacheConfig, CacheLimits } from "./config.js";
import { FLAG_TC, RCODE, type RecordSpan, type ResponseLayout } from "./wire.js";

export type CacheKind = "success" | "denial";

export interface CacheEntry {
  kind: CacheKind;
  /** The response without OPT; its TTLs are rewritten as the entry ages (see `render`). */
  readonly response: Buffer;
  readonly layout: ResponseLayout;
  readonly ttlOffsets: Uint32Array;
  readonly ttls: Uint32Array;
  readonly storedAt: number;
  readonly expiresAt: number;
  /** Whole seconds since storedAt that the TTLs in `response` currently reflect. */
  renderedAge: number;
}

export class ResponseCache {
  private readonly partitions: Record<CacheKind, Map<string, CacheEntry>> = {
    success: new Map(),
    denial: new Map(),
  };

  /** Called with each key whose entry goes (expired, evicted, replaced, cleared): mirrors drop it too. */
  onDrop: ((key: string) => void) | undefined;

  constructor(readonly config: CacheConfig) {}

  /** The live entry for `key`, or undefined (an expired entry is dropped). */
  get(key: string, now: number): CacheEntry | undefined {
    const entry = this.partitions.success.get(key) ?? this.partitions.denial.get(key);
    if (!entry) return undefined;
    if (now >= entry.expiresAt) {
      this.partitions[entry.kind].delete(key);
      this.onDrop?.(key);
      return undefined;
    }
    return entry;
  }

  /**
   * The entry's response with TTLs reduced by its age in whole seconds. The buffer is shared: copy it
   * before changing anything.
   */
  render(entry: CacheEntry, now: number): Buffer {
    const age = Math.floor((now - entry.storedAt) / 1000);
    if (age !== entry.renderedAge) {
      for (let i = 0; i < entry.ttlOffsets.length; i++) {
        const ttl = (entry.ttls[i] as number) - age;
        entry.response.writeUInt32BE(Math.max(ttl, 0), entry.ttlOffsets[i] as number);
      }
      entry.renderedAge = age;
    }
    return entry.response;
  }

  /**
   * Stores a response (without OPT record; `layout` from walkResponse) when it is cacheable; returns the
   * new entry (its TTLs already capped: serve the first answer from it too), or undefined.
   */
  put(key: string, response: Buffer, layout: ResponseLayout, now: number): CacheEntry | undefined {
    if (layout.flags & FLAG_TC) return undefined;
    const answers = layout.records.filter((r) => r.section === 0);
    let kind: CacheKind;
    let ttl: number;
    if (layout.rcode === RCODE.NOERROR && answers.length > 0) {
      kind = "success";
      ttl = Math.min(...layout.records.map((r) => r.ttl));
    } else if (layout.rcode === RCODE.NXDOMAIN || layout.rcode === RCODE.NOERROR) {
      kind = "denial";
      // RFC 2308 §5: the lesser of the SOA's TTL and its MINIMUM field.
      const soa = layout.records.find(
        (r): r is RecordSpan & { soaMinimum: number } => r.soaMinimum !== undefined && r.section === 1,
      );
      if (!soa) return undefined;
      ttl = Math.min(soa.ttl, soa.soaMinimum);
    } else return undefined;
    const limits: CacheLimits = this.config[kind];
    ttl = Math.max(limits.minTtl, Math.min(limits.maxTtl, ttl));
    if (ttl <= 0) return undefined;
    const partition = this.partitions[kind];
    const replaced = partition.delete(key);
    if (this.partitions[kind === "success" ? "denial" : "success"].delete(key) || replaced)
      this.onDrop?.(key);
    while (partition.size >= limits.capacity) {
      const oldest = partition.keys().next();
      if (oldest.done) break;
      partition.delete(oldest.value);
      this.onDrop?.(oldest.value);
    }
    const copy = Buffer.from(response);
    const ttlOffsets = new Uint32Array(layout.records.map((r) => r.ttlOffset));
    // What the client sees never exceeds what the cache keeps the answer for.
    const ttls = new Uint32Array(layout.records.map((r) => Math.min(r.ttl, ttl)));
    ttlOffsets.forEach((offset, i) => {
      copy.writeUInt32BE(ttls[i] as number, offset);
    });
    const entry: CacheEntry = {
      kind,
      response: copy,
      layout,
      ttlOffsets,
      ttls,
      storedAt: now,
      expiresAt: now + ttl * 1000,
      renderedAge: 0,
    };
    partition.set(key, entry);
    return entry;
  }

  size(kind: CacheKind): number {
    return this.partitions[kind].size;
  }

  clear(): void {
    if (this.onDrop)
      for (const partition of Object.values(this.partitions))
        for (const key of partition.keys()) this.onDrop(key);
    this.partitions.success.clear();
    this.partitions.denial.clear();
  }
}
