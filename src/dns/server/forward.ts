/**
 * The `forward` directive: a zone's queries go to a pool of upstream DNS servers.
 *
 * - Order: `sequential` (as configured), `round_robin` (the start rotates per query) or `random`; upstreams
 *   that are down go last, tried only when every healthy one has failed (failover).
 * - Transport: UDP on one connected socket per upstream (so an ICMP "port unreachable" arrives as
 *   ECONNREFUSED at once instead of a timeout); a truncated answer is asked again over TCP; `force_tcp`
 *   always uses TCP. tls:// upstreams: DNS over TLS on one kept connection per upstream, queries
 *   pipelined (tls.ts), health checks over it too; a certificate that does not verify fails the
 *   upstream (fail closed) and each distinct reason is logged once until it answers again.
 * - Health: a failed query makes its upstream fail once and starts health checks (`. IN NS` every
 *   `health_check`) until it answers; after `max_fails` failures in a row it is down (0: never down).
 *   Any answer, whatever its rcode, counts as healthy, as in CoreDNS.
 * - Deadline: `timeout` (default 2 s) bounds the whole query over all tries; then the caller answers
 *   SERVFAIL. Each try gets a share of it, so one silent upstream does not use it all.
 * - `failover RCODE...`: an answer with one of these rcodes (e.g. SERVFAIL from a broken upstream) is
 *   not final: the next upstream is asked; the last such answer is returned when none does better.
 */
import { randomInt } from "node:crypto";
import type { Socket as UdpSocket } from "node:dgram";
import { isIP } from "node:net";
import type { ForwardConfig, Upstream as UpstreamAddress } from "./config.js";
import { inZone } from "./config.js";
import type { DnsMetrics, UpstreamMetrics } from "./metrics.js";
import type { SocketFactory } from "./sockets.js";
import { type ClientTls, DotClient, type Pending, type TlsUpstreamError } from "./tls.js";
import { FLAG_QR, FLAG_TC, HEADER_SIZE, MAX_MESSAGE_SIZE, questionText } from "./wire.js";

/** The shortest share of the deadline one try gets. */
const MIN_TRY_MS = 250;

export class UpstreamError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

function withId(query: Buffer, id: number): Buffer {
  const copy = Buffer.from(query);
  copy.writeUInt16BE(id, 0);
  return copy;
}

/** `. IN NS`, the health-check query CoreDNS sends. */
function healthCheckQuery(id: number): Buffer {
  const buf = Buffer.alloc(HEADER_SIZE + 5);
  buf.writeUInt16BE(id, 0);
  buf.writeUInt16BE(1, 4);
  buf.writeUInt16BE(2, HEADER_SIZE + 1);
  buf.writeUInt16BE(1, HEADER_SIZE + 3);
  return buf;
}

/** One upstream server: its UDP socket, queries in flight, failure count and health checks. */
export class Upstream {
  readonly name: string;
  /** Failed queries and health checks in a row. */
  fails = 0;
  private socket: Promise<UdpSocket> | undefined;
  private readonly pending = new Map<number, Pending>();
  private healthTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** The DNS-over-TLS client of a tls:// upstream. */
  private readonly dot: DotClient | undefined;
  /** The TLS problem last logged (each distinct one once, until the upstream answers again). */
  private tlsProblem: string | undefined;

  constructor(
    readonly address: UpstreamAddress,
    private readonly config: ForwardConfig,
    private readonly sockets: SocketFactory,
    readonly metrics: UpstreamMetrics,
    private readonly log: (message: string) => void,
    tls?: ClientTls,
  ) {
    this.name = upstreamName(address, config.transport);
    if (config.transport === "tls")
      this.dot = new DotClient(
        address.address,
        address.port,
        this.name,
        tls ?? { caLabel: "the system CAs" },
        sockets,
        () => {
          this.metrics.tlsConnections++;
        },
      );
  }

  get down(): boolean {
    return this.config.maxFails > 0 && this.fails >= this.config.maxFails;
  }

  private udpSocket(): Promise<UdpSocket> {
    this.socket ??= (async () => {
      const socket = await this.sockets.udpClient(isIP(this.address.address) === 6 ? 6 : 4);
      socket.on("message", (msg) => this.onMessage(msg));
      // A connected UDP socket reports ICMP errors (ECONNREFUSED: nothing listens there): every query in
      // flight to this upstream has failed.
      socket.on("error", (e: NodeJS.ErrnoException) =>
        this.failAll(new UpstreamError(`${this.name}: ${e.message}`, e.code ?? "EIO")),
      );
      await new Promise<void>((resolve, reject) => {
        socket.once("error", reject);
        socket.connect(this.address.port, this.address.address, () => {
          socket.off("error", reject);
          resolve();
        });
      });
      return socket;
    })();
    this.socket.catch(() => {
      this.socket = undefined;
    });
    return this.socket;
  }

  private onMessage(msg: Buffer): void {
    if (msg.length < HEADER_SIZE || !(msg.readUInt16BE(2) & FLAG_QR)) return;
    const id = msg.readUInt16BE(0);
    const pending = this.pending.get(id);
    // An answer to another question with the same id is not ours (late, or spoofed).
    if (!pending || questionText(msg) !== pending.question) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(msg);
  }

  private failAll(error: Error): void {
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(error);
    }
  }

  private freeId(): number {
    if (this.pending.size > 60_000)
      throw new UpstreamError(`${this.name}: too many queries in flight`, "EBUSY");
    for (;;) {
      const id = randomInt(0, 65536);
      if (!this.pending.has(id)) return id;
    }
  }

  /** One query over UDP; resolves with the answer (id as in `query`). */
  async exchangeUdp(query: Buffer, timeoutMs: number): Promise<Buffer> {
    const socket = await this.udpSocket();
    const question = questionText(query);
    if (question === undefined) throw new UpstreamError("not a single-question query", "EINVAL");
    const id = this.freeId();
    const answer = new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new UpstreamError(`${this.name}: no answer within ${timeoutMs} ms`, "ETIMEDOUT"));
      }, timeoutMs);
      this.pending.set(id, { question, resolve, reject, timer });
    });
    socket.send(withId(query, id), (e) => {
      if (e)
        this.failAll(
          new UpstreamError(`${this.name}: ${e.message}`, (e as NodeJS.ErrnoException).code ?? "EIO"),
        );
    });
    const response = await answer;
    response.writeUInt16BE(query.readUInt16BE(0), 0);
    return response;
  }

  /** One query over TCP (a connection per query); resolves with the answer. */
  async exchangeTcp(query: Buffer, timeoutMs: number): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    const socket = await this.sockets.tcpConnect(this.address.address, this.address.port, timeoutMs);
    try {
      return await new Promise<Buffer>((resolve, reject) => {
        const chunks: Buffer[] = [];
        let length = 0;
        const timer = setTimeout(
          () =>
            reject(new UpstreamError(`${this.name}: no answer over TCP within ${timeoutMs} ms`, "ETIMEDOUT")),
          Math.max(1, deadline - Date.now()),
        );
        socket.on("data", (chunk: Buffer) => {
          chunks.push(chunk);
          length += chunk.length;
          if (length < 2) return;
          const all = Buffer.concat(chunks);
          const size = all.readUInt16BE(0);
          if (all.length >= 2 + size) {
            clearTimeout(timer);
            const response = all.subarray(2, 2 + size);
            if (
              questionText(response) !== questionText(query) ||
              response.readUInt16BE(0) !== query.readUInt16BE(0)
            )
              reject(new UpstreamError(`${this.name}: answer over TCP does not match the query`, "EPROTO"));
            else resolve(Buffer.from(response));
          }
        });
        socket.on("error", (e) => {
          clearTimeout(timer);
          reject(e);
        });
        socket.on("end", () => {
          clearTimeout(timer);
          reject(new UpstreamError(`${this.name}: TCP connection closed before a full answer`, "ECONNRESET"));
        });
        const frame = Buffer.alloc(2 + query.length);
        frame.writeUInt16BE(query.length, 0);
        query.copy(frame, 2);
        socket.write(frame);
      });
    } finally {
      socket.destroy();
    }
  }

  /** UDP, then TCP when the answer is truncated (or TCP only with force_tcp); tls:// over TLS. */
  async exchange(query: Buffer, timeoutMs: number): Promise<Buffer> {
    if (this.dot) return this.dot.exchange(query, timeoutMs);
    const started = Date.now();
    if (this.config.forceTcp) return this.exchangeTcp(query, timeoutMs);
    const response = await this.exchangeUdp(query, timeoutMs);
    if (!(response.readUInt16BE(2) & FLAG_TC)) return response;
    return this.exchangeTcp(query, Math.max(1, timeoutMs - (Date.now() - started)));
  }

  succeeded(rcode: number): void {
    this.metrics.requests++;
    this.metrics.rcodes.set(rcode, (this.metrics.rcodes.get(rcode) ?? 0) + 1);
    this.fails = 0;
    this.tlsRecovered();
  }

  /** A TLS failure is logged when its reason differs from the last one logged for this upstream. */
  private tlsFailed(error: Error): void {
    const reason = (error as TlsUpstreamError).tlsReason;
    if (!reason || reason === this.tlsProblem) return;
    this.tlsProblem = reason;
    this.log(`forward ${this.config.from}: ${this.name}: ${reason}`);
  }

  private tlsRecovered(): void {
    if (this.tlsProblem === undefined) return;
    this.tlsProblem = undefined;
    this.log(`forward ${this.config.from}: ${this.name}: answers over TLS again`);
  }

  failed(error: Error): void {
    this.tlsFailed(error);
    this.metrics.requests++;
    this.metrics.failures++;
    const wasDown = this.down;
    this.fails++;
    if (this.down && !wasDown)
      this.log(`forward: upstream ${this.name} is down after ${this.fails} failures (${error.message})`);
    this.startHealthChecks();
  }

  private startHealthChecks(): void {
    if (this.healthTimer || this.closed) return;
    const check = async () => {
      if (this.closed) return;
      try {
        const timeout = Math.min(this.config.healthCheckMs, 1000);
        // Over the upstream's own transport, as CoreDNS does: a TLS upstream is healthy when it
        // answers over a verified TLS connection.
        if (this.dot) await this.dot.exchange(healthCheckQuery(0), Math.max(timeout, 1000));
        else await this.exchangeUdp(healthCheckQuery(0), timeout);
        if (this.down) this.log(`forward: upstream ${this.name} answers again`);
        this.fails = 0;
        this.healthTimer = undefined;
        this.tlsRecovered();
      } catch (e) {
        this.tlsFailed(e as Error);
        this.metrics.healthcheckFailures++;
        this.fails++;
        if (!this.closed) this.healthTimer = setTimeout(check, this.config.healthCheckMs).unref();
      }
    };
    this.healthTimer = setTimeout(check, this.config.healthCheckMs).unref();
  }

  close(): void {
    this.closed = true;
    if (this.healthTimer) clearTimeout(this.healthTimer);
    this.failAll(new UpstreamError(`${this.name}: forwarder closed`, "ECANCELED"));
    this.dot?.close();
    this.socket?.then((s) => s.close()).catch(() => {});
    this.socket = undefined;
  }
}

/** ADDRESS:PORT ([V6]:PORT), with tls:// in front for DNS over TLS: in logs and the metrics' `to`. */
export function upstreamName(address: UpstreamAddress, transport: "dns" | "tls" = "dns"): string {
  const hostPort =
    isIP(address.address) === 6
      ? `[${address.address}]:${address.port}`
      : `${address.address}:${address.port}`;
  return transport === "tls" ? `tls://${hostPort}` : hostPort;
}

/** The upstreams of one `forward` directive. */
export class ForwardPool {
  readonly upstreams: Upstream[];
  private nextStart = 0;

  constructor(
    readonly config: ForwardConfig,
    sockets: SocketFactory,
    metrics: DnsMetrics,
    log: (message: string) => void,
    /** Certificates for tls:// upstreams (loadClientTls); default: system CAs, no client certificate. */
    tls?: ClientTls,
  ) {
    this.upstreams = config.to.map(
      (address) =>
        new Upstream(
          address,
          config,
          sockets,
          metrics.upstream(
            config.transport === "tls" ? upstreamName(address, "tls") : `${address.address}:${address.port}`,
          ),
          log,
          tls,
        ),
    );
  }

  /** True when this pool forwards `qname`: inside its zone and outside its `except` zones. */
  covers(qname: string): boolean {
    return inZone(qname, this.config.from) && !this.config.except.some((zone) => inZone(qname, zone));
  }

  /** The order to try upstreams in for the next query: healthy by policy, then the down ones. */
  order(): Upstream[] {
    let list: Upstream[];
    switch (this.config.policy) {
      case "sequential":
        list = [...this.upstreams];
        break;
      case "round_robin": {
        const start = this.nextStart++ % this.upstreams.length;
        list = [...this.upstreams.slice(start), ...this.upstreams.slice(0, start)];
        break;
      }
      case "random":
        list = [...this.upstreams];
        for (let i = list.length - 1; i > 0; i--) {
          const j = randomInt(0, i + 1);
          [list[i], list[j]] = [list[j] as Upstream, list[i] as Upstream];
        }
        break;
    }
    return [...list.filter((u) => !u.down), ...list.filter((u) => u.down)];
  }

  /**
   * Forwards a query (any id; the answer carries the same) and resolves with the upstream's answer, or
   * undefined when no upstream answered before the deadline (the caller answers SERVFAIL).
   */
  async forward(query: Buffer): Promise<Buffer | undefined> {
    if (query.length > MAX_MESSAGE_SIZE) return undefined;
    const deadline = Date.now() + this.config.timeoutMs;
    const order = this.order();
    const share = Math.max(MIN_TRY_MS, Math.floor(this.config.timeoutMs / Math.min(order.length, 3)));
    // With `failover RCODE...`, such an answer sends the query on to the next upstream; the last one
    // received is what the client gets when no upstream does better.
    let fallback: Buffer | undefined;
    for (const upstream of order) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      try {
        const response = await upstream.exchange(query, Math.min(share, remaining));
        const rcode = response.readUInt16BE(2) & 0xf;
        upstream.succeeded(rcode);
        if (!this.config.failoverRcodes.includes(rcode)) return response;
        fallback = response;
      } catch (e) {
        upstream.failed(e as Error);
      }
    }
    return fallback;
  }

  close(): void {
    for (const upstream of this.upstreams) upstream.close();
  }
}
