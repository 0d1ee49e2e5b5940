/**
 * The UDP fast path for cache hits: native/dnsfast.c (dist/native/dnsfast.node) owns a listener's UDP
 * socket and runs a thread that reads queries in batches (recvmmsg), answers those it finds in a table of
 * encoded responses and writes the answers in batches (sendmmsg). Everything else reaches JavaScript in
 * batches (`onPacket` per datagram) and is answered through `send` on the same socket; answers from a
 * `cache` block are offered back with `put`, valid in C until the JS cache entry expires (or the JS
 * cache drops it), their TTLs counted down in C exactly as the JS cache renders them (stored TTL minus
 * whole seconds of age). Node's per-datagram cost is what this avoids.
 *
 * Without the addon (not built, another platform) `openFastPath` returns undefined and the server uses a
 * plain dgram socket, as before.
 */
import { closeSync } from "node:fs";
import { createRequire } from "node:module";
import { isIP } from "node:net";
import { fileURLToPath } from "node:url";
import { openNetnsSocket } from "../../linux/netns-native.js";
import { DURATION_BUCKETS, type ZoneMetrics } from "./metrics.js";

type NativeHandle = { readonly __brand: "dnsfast" };

interface DnsFastAddon {
  VIEW_STATS: number;
  openUdp(family: 4 | 6, address: string, port: number): number;
  localPort(fd: number): number;
  start(fd: number, views: number, slots: number, onPackets: (blob: Buffer) => void): NativeHandle;
  stop(handle: NativeHandle): void;
  send(handle: NativeHandle, bytes: Buffer, address: Buffer): boolean;
  put(
    handle: NativeHandle,
    key: Buffer,
    response: Buffer,
    validMs: number,
    view: number,
    kind: number,
    ttlOffsets: Uint32Array,
    ttls: Uint32Array,
    ageMs: number,
  ): void;
  del(handle: NativeHandle, key: Buffer): void;
  clear(handle: NativeHandle): void;
  stats(handle: NativeHandle, out: Float64Array): void;
}

/** The largest answer the C table holds: it fits every client's UDP size (≥ 512) untruncated. */
export const FAST_RESPONSE_MAX = 512;
/** Views (server blocks × zones) per listener the C side counts for. */
export const FAST_MAX_VIEWS = 32;

// dist/src/dns/server/fastpath.js -> dist/native/dnsfast.node
const ADDON_PATH = fileURLToPath(new URL("../../../native/dnsfast.node", import.meta.url));
let addon: DnsFastAddon | null | undefined;

function loadAddon(): DnsFastAddon | undefined {
  if (addon === undefined) {
    try {
      addon = createRequire(import.meta.url)(ADDON_PATH) as DnsFastAddon;
    } catch {
      addon = null;
    }
  }
  return addon ?? undefined;
}

/** True when the addon loads (and PODNET_DNS_FASTPATH is not 0). */
export function fastPathAvailable(): boolean {
  return process.env.PODNET_DNS_FASTPATH !== "0" && loadAddon() !== undefined;
}

// Offsets inside one view's stats (native/dnsfast.c VIEW_STATS).
const HITS = 0;
const RCODES = 2;
const BUCKETS = 18;
const DURATION_SUM = BUCKETS + DURATION_BUCKETS.length;
const DURATION_COUNT = DURATION_SUM + 1;
const REQUESTS = DURATION_COUNT + 1;

export class FastPath {
  private closed = false;
  private readonly stride: number;
  private readonly folded: Float64Array;
  private readonly current: Float64Array;

  private constructor(
    private readonly native: DnsFastAddon,
    private readonly handle: NativeHandle,
    readonly port: number,
    private readonly views: number,
  ) {
    this.stride = native.VIEW_STATS;
    this.folded = new Float64Array(views * this.stride + 1);
    this.current = new Float64Array(views * this.stride + 1);
  }

  /**
   * A bound UDP socket at address:port (created in `netns` when given) served by the fast path's thread;
   * undefined without the addon. Throws the socket's errors (code EADDRINUSE, ...).
   */
  static open(
    address: string,
    port: number,
    netns: string | undefined,
    views: number,
    slots: number,
    onPacket: (msg: Buffer, address: Buffer) => void,
  ): FastPath | undefined {
    const native = fastPathAvailable() ? loadAddon() : undefined;
    if (!native || views < 1 || views > FAST_MAX_VIEWS) return undefined;
    const family = isIP(address) === 6 ? 6 : 4;
    const fd = netns
      ? openNetnsSocket(netns, family, "udp", port, address, false)
      : native.openUdp(family, address, port);
    let handle: NativeHandle;
    let bound: number;
    try {
      bound = native.localPort(fd);
      handle = native.start(fd, views, slots, (blob) => {
        let at = 0;
        while (at + 3 <= blob.length) {
          const length = blob.readUInt16BE(at);
          const addressLength = blob[at + 2] as number;
          const from = blob.subarray(at + 3, at + 3 + addressLength);
          at += 3 + addressLength;
          const msg = blob.subarray(at, at + length);
          at += length;
          if (!fast.closed) onPacket(msg, from);
        }
      });
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    const fast: FastPath = new FastPath(native, handle, bound, views);
    return fast;
  }

  /** Sends `bytes` to the client at `address` (a sockaddr from onPacket) from the listener's port. */
  send(bytes: Buffer, address: Buffer): void {
    if (!this.closed) this.native.send(this.handle, bytes, address);
  }

  /**
   * Offers an answer to the C table: `response` is what the JS path sent for this question (id, RD/CD,
   * the name's case and the TTLs are patched per query in C), `key` the JS cache key, `edns` whether the
   * query had an OPT record (the response then ends with ours); `ttlOffsets`/`ttls`/`ageMs` from the JS
   * cache entry.
   */
  put(
    key: string,
    edns: boolean,
    response: Buffer,
    validMs: number,
    view: number,
    kind: 0 | 1,
    ttlOffsets: Uint32Array,
    ttls: Uint32Array,
    ageMs: number,
  ): void {
    if (this.closed || response.length > FAST_RESPONSE_MAX || validMs <= 0) return;
    this.native.put(
      this.handle,
      Buffer.from(edns ? `${key}\u0001` : `${key}\u0000`, "latin1"),
      response,
      validMs,
      view,
      kind,
      ttlOffsets,
      ttls,
      ageMs,
    );
  }

  /** Forgets both EDNS variants of a JS cache key (the JS entry was evicted or replaced). */
  drop(key: string): void {
    if (this.closed) return;
    this.native.del(this.handle, Buffer.from(`${key}\u0000`, "latin1"));
    this.native.del(this.handle, Buffer.from(`${key}\u0001`, "latin1"));
  }

  clear(): void {
    if (!this.closed) this.native.clear(this.handle);
  }

  /** Adds what the C side answered since the last call to the views' metrics (index = view number). */
  fold(metrics: readonly ZoneMetrics[]): void {
    if (this.closed) return;
    this.native.stats(this.handle, this.current);
    const cur = this.current;
    const old = this.folded;
    for (let v = 0; v < this.views; v++) {
      const m = metrics[v];
      if (!m) continue;
      const base = v * this.stride;
      const d = (i: number) => (cur[base + i] as number) - (old[base + i] as number);
      m.cacheHits.success += d(HITS);
      m.cacheHits.denial += d(HITS + 1);
      for (let r = 0; r < 16; r++) {
        const n = d(RCODES + r);
        if (n) m.rcodes.set(r, (m.rcodes.get(r) ?? 0) + n);
      }
      for (let b = 0; b < DURATION_BUCKETS.length; b++)
        m.buckets[b] = (m.buckets[b] as number) + d(BUCKETS + b);
      m.durationSum += d(DURATION_SUM);
      m.durationCount += d(DURATION_COUNT);
      for (let t = 0; t < this.stride - REQUESTS; t++) {
        const n = d(REQUESTS + t);
        if (n) m.requests.udp.set(t, (m.requests.udp.get(t) ?? 0) + n);
      }
    }
    old.set(cur);
  }

  /** Datagrams the thread could not hand to JavaScript (queue full): dropped, as a full socket would. */
  dropped(): number {
    if (!this.closed) this.native.stats(this.handle, this.current);
    return this.current[this.current.length - 1] as number;
  }

  /** Stops the thread and closes the socket; batches already queued for JavaScript are ignored. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.stop(this.handle);
  }
}
