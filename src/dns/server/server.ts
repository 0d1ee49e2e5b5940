/**
 * The DNS server: UDP and TCP listeners per address and port, each query routed to the server block with
 * the most specific zone on that listener, then inside the block: cache → authoritative answerers (the
 * cluster zone, `hosts` zones, answerers given by the caller) → forward (the most specific `forward`
 * zone) → REFUSED. As in CoreDNS the cache sits in front, so authoritative answers are cached too, for at
 * most their TTL (the cluster zone's `ttl`, 5 s by default): a block without `cache` always asks its
 * answerers.
 *
 * DNS over TLS (`tls://` blocks): a TLS listener whose connections go through the same TCP path
 * (framing, limits, pipelining); handshake failures and rejected client certificates are logged once
 * per client address and reason (tls.ts has the certificates and the words).
 *
 * UDP cache hits of listeners with a `cache` block are answered by the native fast path's thread
 * (fastpath.ts, native/dnsfast.c) when the addon is built; what it does not answer arrives here through
 * `onFastPacket`, and cacheable UDP answers are offered back to it (`offer`).
 *
 * Robustness: packets shorter than a header and responses are dropped; anything else that does not parse
 * gets FORMERR (NOTIMP for other opcodes); an answerer that throws gives SERVFAIL; TCP connections are
 * bounded in number, in queries in flight and in idle time. Nothing a client sends can throw out of a
 * socket handler.
 */
import type { RemoteInfo, Socket as UdpSocket } from "node:dgram";
import type { Server as HttpServer } from "node:http";
import { createServer as createTcpServer, isIP, type Socket, type Server as TcpServer } from "node:net";
import { performance } from "node:perf_hooks";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import { InvalidInputError } from "../../api/diagnostics.js";
import type { ZoneAnswerer } from "../types.js";
import { type CacheEntry, ResponseCache } from "./cache.js";
import {
  type ClusterZoneConfig,
  type DnsServerConfig,
  inZone,
  type ServerBlockConfig,
  type Transport,
} from "./config.js";
import { FAST_MAX_VIEWS, FAST_RESPONSE_MAX, FastPath } from "./fastpath.js";
import { ForwardPool } from "./forward.js";
import { buildHostsZone } from "./hosts.js";
import { createMetricsServer, DnsMetrics, type ZoneMetrics } from "./metrics.js";
import { hereSockets, netnsSockets, type SocketFactory } from "./sockets.js";
import {
  loadClientTls,
  loadServerTls,
  type ServerTls,
  serverHandshakeReason,
  serverTlsCheck,
} from "./tls.js";
import {
  CLASS_ANY,
  CLASS_IN,
  encodeHeaderOnly,
  encodeResponse,
  FLAG_CD,
  FLAG_RD,
  HEADER_SIZE,
  MAX_MESSAGE_SIZE,
  OPT_RECORD_SIZE,
  parseQuery,
  type Query,
  questionIsDotted,
  questionName,
  RCODE,
  RCODE_BADVERS,
  type ResponseContent,
  type ResponseLayout,
  TYPE,
  truncateResponse,
  typeName,
  udpLimit,
  walkResponse,
  withoutOpt,
  writeOpt,
} from "./wire.js";

export interface DnsServerOptions {
  /** Builds the answerer of a `kubernetes` directive; required when the configuration has one. */
  clusterZone?: (config: ClusterZoneConfig, block: ServerBlockConfig) => ZoneAnswerer;
  /** More answerers, consulted by every server block whose zones overlap theirs (after the config's). */
  zones?: ZoneAnswerer[];
  /** Address for blocks without `bind`; default 127.0.0.1. */
  defaultListen?: string;
  /**
   * Network namespace for every socket (listeners, upstream clients, metrics), as a path such as
   * /run/netns/NAME; default: the calling thread's namespace.
   */
  netns?: string;
  /** Problems the server survives (an upstream down, an answerer that threw); default: stderr. */
  log?: (message: string) => void;
  /**
   * Only for tests: the clock the cache uses (ms). It turns the native fast path off (its table runs on
   * the real clock).
   */
  now?: () => number;
  /**
   * UDP cache hits answered by the native addon's thread (native/dnsfast.c) for listeners with a `cache`
   * block; default true. Without the addon (or with PODNET_DNS_FASTPATH=0) the JS path answers all.
   */
  fastPath?: boolean;
}

export interface BoundListener {
  /** `dns`: UDP and TCP; `tls`: DNS over TLS on TCP. */
  transport: Transport;
  address: string;
  /** The same port for UDP and TCP (the one asked for, or the free one chosen for port 0). */
  port: number;
  zones: string[];
}

export interface DnsServerHandle {
  listeners: BoundListener[];
  /** Bound metrics endpoints (GET /metrics). */
  metrics: { address: string; port: number }[];
  /** The metrics in text format, also without an endpoint. */
  renderMetrics(): string;
  close(): Promise<void>;
}

const MAX_TCP_CONNECTIONS = 1000;
const MAX_TCP_IN_FLIGHT = 128;
const TCP_IDLE_MS = 10_000;
/** Client addresses whose last handshake failure was logged (bounded: a scan must not grow it forever). */
const MAX_LOGGED_TLS_CLIENTS = 1024;

interface BlockAnswerer {
  answerer: ZoneAnswerer;
  /** NXDOMAIN inside these zones goes on to forwarding. */
  fallthrough: readonly string[];
}

/** A server block at run time. */
class Block {
  readonly cache: ResponseCache | undefined;
  readonly forwards: ForwardPool[];
  /** The fast paths of listeners serving this block: they drop what the JS cache drops. */
  readonly fastPaths = new Set<FastPath>();
  constructor(
    readonly config: ServerBlockConfig,
    readonly answerers: BlockAnswerer[],
    forwards: ForwardPool[],
    /** The certificate of a tls:// block. */
    readonly tls?: ServerTls,
  ) {
    this.cache = config.cache ? new ResponseCache(config.cache) : undefined;
    if (this.cache)
      this.cache.onDrop = (key) => {
        for (const fast of this.fastPaths) fast.drop(key);
      };
    // Most specific zone first.
    this.forwards = [...forwards].sort((a, b) => zoneDepth(b.config.from) - zoneDepth(a.config.from));
  }
}

/** A block as seen from one listener: its zone for routing and its metrics. */
interface View {
  zone: string;
  block: Block;
  metrics: ZoneMetrics;
  /** The view's position in its listener's views (the fast path counts per view). */
  index: number;
}

interface Listener {
  name: string;
  transport: Transport;
  address: string;
  port: number;
  /** A tls:// listener's certificate (its blocks share one). */
  tls?: ServerTls;
  /** Per client address, the handshake failure last logged. */
  tlsFailures?: Map<string, string>;
  /** A TLS listener's TCP connections, from accept (a handshake in progress is not in `connections`). */
  tlsRaw?: Set<Socket>;
  views: View[];
  udp?: UdpSocket;
  /** Instead of `udp`: the native fast path owns the UDP socket. */
  fast?: FastPath;
  tcp?: TcpServer;
  connections: Set<Socket>;
}

/** The view with the most specific zone holding `qname` (views are sorted most specific first). */
function routeByName(views: readonly View[], qname: string): View | undefined {
  for (const view of views) if (inZone(qname, view.zone)) return view;
  return undefined;
}

/** The most specific of `zones` holding `qname`. */
function deepestZone(zones: readonly string[], qname: string): string | undefined {
  let best: string | undefined;
  for (const zone of zones)
    if (inZone(qname, zone) && (best === undefined || zoneDepth(zone) > zoneDepth(best))) best = zone;
  return best;
}

function zoneDepth(zone: string): number {
  return zone === "." ? 0 : zone.split(".").length;
}

/** What to send back: a response without OPT record, and its layout when already known. */
interface Answer {
  response: Buffer;
  layout?: ResponseLayout;
}

function overlaps(a: readonly string[], b: readonly string[]): boolean {
  return a.some((x) => b.some((y) => inZone(x, y) || inZone(y, x)));
}

function listenerName(address: string, port: number, transport: Transport): string {
  return isIP(address) === 6 ? `${transport}://[${address}]:${port}` : `${transport}://${address}:${port}`;
}

class DnsServer {
  readonly metrics = new DnsMetrics();
  readonly listeners: Listener[] = [];
  readonly metricsServers: { server: HttpServer; address: string; port: number }[] = [];
  private readonly blocks: Block[] = [];
  private readonly sockets: SocketFactory;
  private readonly log: (message: string) => void;
  private readonly now: () => number;

  constructor(
    readonly config: DnsServerConfig,
    readonly options: DnsServerOptions,
  ) {
    this.sockets = options.netns ? netnsSockets(options.netns) : hereSockets;
    this.log = options.log ?? ((m) => process.stderr.write(`podnet dns: ${m}\n`));
    this.now = options.now ?? Date.now;
  }

  /** Builds blocks (answerers, pools); throws InvalidInputError for what the configuration cannot get. */
  buildBlocks(): void {
    for (const blockConfig of this.config.servers) {
      const answerers: BlockAnswerer[] = [];
      if (blockConfig.clusterZone) {
        if (!this.options.clusterZone)
          throw new InvalidInputError([
            {
              severity: "error",
              code: "dns-config",
              message: "the kubernetes directive needs the cluster's records, and this process has none",
              hint: "run the server from the lab, which supplies them, or serve static names with a hosts block instead",
              source: { file: this.config.file, line: blockConfig.clusterZone.line },
            },
          ]);
        answerers.push({
          answerer: this.options.clusterZone(blockConfig.clusterZone, blockConfig),
          fallthrough: blockConfig.clusterZone.fallthrough,
        });
      }
      for (const hosts of blockConfig.hosts)
        answerers.push({
          answerer: buildHostsZone(hosts, this.config.file),
          fallthrough: hosts.fallthrough ? hosts.zones : [],
        });
      for (const answerer of this.options.zones ?? [])
        if (overlaps(answerer.zones, blockConfig.zones)) answerers.push({ answerer, fallthrough: [] });
      // Certificates are read now: a missing or mismatched file stops the start with file:line.
      const pools = blockConfig.forwards.map(
        (f) =>
          new ForwardPool(
            f,
            this.sockets,
            this.metrics,
            this.log,
            f.tls ? loadClientTls(f.tls, this.config.file) : undefined,
          ),
      );
      const tls = blockConfig.tls ? loadServerTls(blockConfig.tls, this.config.file) : undefined;
      this.blocks.push(new Block(blockConfig, answerers, pools, tls));
    }
    this.metrics.cacheSizes = () =>
      this.listeners.flatMap((l) =>
        l.views.flatMap((v) =>
          v.block.cache
            ? [
                [l.name, v.zone, "success", v.block.cache.size("success")] as [
                  string,
                  string,
                  string,
                  number,
                ],
                [l.name, v.zone, "denial", v.block.cache.size("denial")] as [string, string, string, number],
              ]
            : [],
        ),
      );
  }

  async listen(): Promise<void> {
    // Blocks on the same address and port share a listener; its views exist once the port is known
    // (port 0), since their metrics are labelled with it.
    const byAddress = new Map<string, { listener: Listener; zones: { zone: string; block: Block }[] }>();
    for (const block of this.blocks) {
      const addresses = block.config.bind.length
        ? block.config.bind
        : [this.options.defaultListen ?? "127.0.0.1"];
      for (const address of addresses) {
        const key = `${address}|${block.config.port}|${block.config.transport}`;
        let entry = byAddress.get(key);
        if (!entry) {
          const listener: Listener = {
            name: "",
            transport: block.config.transport,
            address,
            port: block.config.port,
            views: [],
            connections: new Set<Socket>(),
          };
          if (block.tls) listener.tls = block.tls;
          entry = { listener, zones: [] };
          byAddress.set(key, entry);
          this.listeners.push(listener);
        } else if (block.config.tls && entry.zones[0]?.block.config.tls) {
          const first = entry.zones[0].block.config.tls;
          const mine = block.config.tls;
          if (
            first.cert !== mine.cert ||
            first.key !== mine.key ||
            first.ca !== mine.ca ||
            first.clientAuth !== mine.clientAuth
          )
            throw new InvalidInputError([
              {
                severity: "error",
                code: "dns-config",
                message: `the tls:// blocks on ${address} port ${block.config.port} have different tls settings (lines ${first.line} and ${mine.line}), but share one listener`,
                hint: "give them the same tls line, or different ports",
                source: { file: this.config.file, line: mine.line },
              },
            ]);
        }
        for (const zone of block.config.zones) entry.zones.push({ zone, block });
      }
    }
    for (const { listener, zones } of byAddress.values()) {
      if (listener.transport === "tls") await this.bindTls(listener);
      else await this.bind(listener, zones);
      listener.name = listenerName(listener.address, listener.port, listener.transport);
      listener.views = zones
        .map(({ zone, block }) => ({
          zone,
          block,
          metrics: this.metrics.zone(listener.name, zone),
          index: 0,
        }))
        .sort((a, b) => zoneDepth(b.zone) - zoneDepth(a.zone));
      listener.views.forEach((view, i) => {
        view.index = i;
        if (listener.fast && view.block.cache) view.block.fastPaths.add(listener.fast);
      });
    }
    this.metrics.beforeRender = () => this.foldFastPaths();
    const metricsAt = new Map<string, { address: string; port: number }>();
    for (const block of this.blocks)
      if (block.config.metrics)
        metricsAt.set(`${block.config.metrics.address}|${block.config.metrics.port}`, block.config.metrics);
    for (const { address, port } of metricsAt.values()) {
      const server = createMetricsServer(() => this.metrics.render());
      await this.sockets.listen(server as unknown as TcpServer, address, port);
      const bound = server.address();
      this.metricsServers.push({
        server,
        address,
        port: typeof bound === "object" && bound ? bound.port : port,
      });
    }
  }

  /** UDP and TCP on the same port; for port 0, a free port both can take. */
  private async bind(listener: Listener, zones: readonly { block: Block }[]): Promise<void> {
    // The fast path is a cache: only listeners with a `cache` block get it (the others answer from
    // their zones every time, e.g. the cluster zone, whose answers follow changes at once).
    const fastEligible =
      this.options.fastPath !== false &&
      this.options.now === undefined &&
      zones.length <= FAST_MAX_VIEWS &&
      zones.some(({ block }) => block.cache !== undefined);
    // Twice the JS capacity (open addressing), at most 16,384 slots of ~1.1 KB (18 MB, touched as used).
    const slots = Math.min(
      1 << 14,
      2 *
        zones.reduce(
          (n, { block }) =>
            n + (block.cache ? block.cache.config.success.capacity + block.cache.config.denial.capacity : 0),
          0,
        ),
    );
    for (let attempt = 0; ; attempt++) {
      let udp: UdpSocket | undefined;
      let fast: FastPath | undefined;
      try {
        if (fastEligible)
          fast = FastPath.open(
            listener.address,
            listener.port,
            this.options.netns,
            zones.length,
            Math.max(slots, 1024),
            (msg, from) => this.onFastPacket(listener, fast as FastPath, msg, from),
          );
        if (!fast) udp = await this.sockets.udpServer(listener.address, listener.port);
      } catch (e) {
        throw bindError(e, listener, "UDP");
      }
      const port = fast ? fast.port : (udp as UdpSocket).address().port;
      const tcp = createTcpServer({ noDelay: true }, (conn) => this.onTcpConnection(listener, conn));
      try {
        await this.sockets.listen(tcp, listener.address, port);
      } catch (e) {
        udp?.close();
        fast?.close();
        if (listener.port === 0 && (e as NodeJS.ErrnoException).code === "EADDRINUSE" && attempt < 20)
          continue;
        throw bindError(e, { ...listener, port }, "TCP");
      }
      listener.port = port;
      listener.tcp = tcp;
      if (fast) listener.fast = fast;
      else if (udp) {
        const socket = udp;
        listener.udp = socket;
        socket.on("message", (msg, rinfo) => this.onUdp(listener, socket, msg, rinfo));
        socket.on("error", (e) => this.log(`${listener.name} UDP: ${e.message}`));
      }
      tcp.on("error", (e) => this.log(`${listener.name} TCP: ${e.message}`));
      return;
    }
  }

  /** A DNS-over-TLS listener: TLS on TCP, each connection then served by the TCP path. */
  private async bindTls(listener: Listener): Promise<void> {
    const tls = listener.tls as ServerTls;
    listener.tlsFailures = new Map();
    const server = createTlsServer({ ...tls.options, handshakeTimeout: TCP_IDLE_MS }, (conn: TLSSocket) => {
      const client =
        isIP(conn.remoteAddress ?? "") === 6
          ? `[${conn.remoteAddress}]:${conn.remotePort}`
          : `${conn.remoteAddress}:${conn.remotePort}`;
      const refused = serverTlsCheck(conn, tls);
      if (refused) {
        this.tlsHandshakeFailed(listener, conn.remoteAddress ?? "", client, refused);
        conn.destroy();
        return;
      }
      this.metrics.countTlsHandshake(listener.name, true);
      listener.tlsFailures?.delete(conn.remoteAddress ?? "");
      this.onTcpConnection(listener, conn);
    });
    server.maxConnections = MAX_TCP_CONNECTIONS;
    // The client's address, taken while the TCP connection is up: a failed handshake may have closed it.
    const peers = new WeakMap<object, { address: string; port: number }>();
    const raws = new Set<Socket>();
    listener.tlsRaw = raws;
    server.on("connection", (raw: Socket) => {
      peers.set(raw, { address: raw.remoteAddress ?? "?", port: raw.remotePort ?? 0 });
      raws.add(raw);
      raw.once("close", () => raws.delete(raw));
    });
    server.on("tlsClientError", (e: Error & { code?: string }, conn: TLSSocket) => {
      const raw = (conn as unknown as { _parent?: object })._parent;
      const peer = (raw && peers.get(raw)) ?? {
        address: conn.remoteAddress ?? "?",
        port: conn.remotePort ?? 0,
      };
      const client =
        isIP(peer.address) === 6 ? `[${peer.address}]:${peer.port}` : `${peer.address}:${peer.port}`;
      this.tlsHandshakeFailed(listener, peer.address, client, serverHandshakeReason(e, tls));
    });
    try {
      await this.sockets.listen(server, listener.address, listener.port);
    } catch (e) {
      throw bindError(e, listener, "TCP (DNS over TLS)");
    }
    const bound = server.address();
    if (typeof bound === "object" && bound) listener.port = bound.port;
    listener.tcp = server;
    server.on("error", (e) => this.log(`${listener.name} TLS: ${e.message}`));
  }

  /** Counts a failed handshake; logs it unless this client's last failure had the same reason. */
  private tlsHandshakeFailed(listener: Listener, address: string, client: string, reason: string): void {
    if (this.closing) return; // our own close cut the handshake
    this.metrics.countTlsHandshake(listener.name, false);
    const failures = listener.tlsFailures as Map<string, string>;
    if (failures.get(address) === reason) return;
    if (failures.size >= MAX_LOGGED_TLS_CLIENTS) failures.clear();
    failures.set(address, reason);
    const tls = listener.tls as ServerTls;
    this.log(
      `tls handshake from ${client} on ${listener.name} failed: ${reason} (client_auth ${tls.clientAuth})`,
    );
  }

  /** A datagram the fast path did not answer: the JS path answers it through the fast path's socket. */
  private onFastPacket(listener: Listener, fast: FastPath, msg: Buffer, from: Buffer): void {
    let answer: Buffer | Promise<Buffer> | undefined;
    try {
      answer = this.handle(listener, msg, "udp");
    } catch (e) {
      this.log(`${listener.name}: UDP query failed: ${(e as Error).stack}`);
      return;
    }
    if (answer instanceof Promise)
      answer.then(
        (out) => fast.send(out, from),
        (e: Error) => this.log(`${listener.name}: UDP query failed: ${e.stack}`),
      );
    else if (answer) fast.send(answer, from);
  }

  /** Adds the fast paths' counts to the metrics (at scrape time and on close). */
  private foldFastPaths(): void {
    for (const listener of this.listeners) listener.fast?.fold(listener.views.map((v) => v.metrics));
  }

  /**
   * Offers a UDP answer from a `cache` block to the listener's fast path, valid as long as the JS entry
   * (its expiry; evictions reach C through `onDrop`), with the entry's TTLs and age so that C counts them
   * down exactly as `ResponseCache.render` does. Answers over 512 bytes, or truncated for this client,
   * stay in JS (512 bytes fit every client's size untruncated).
   */
  private offer(
    listener: Listener,
    view: View,
    query: Query,
    entry: CacheEntry,
    out: Buffer,
    now: number,
  ): void {
    const fast = listener.fast;
    const whole = entry.response.length + (query.edns ? OPT_RECORD_SIZE : 0);
    if (!fast || out.length > FAST_RESPONSE_MAX || out.length !== whole) return;
    fast.put(
      query.key,
      query.edns !== undefined,
      out,
      entry.expiresAt - now,
      view.index,
      entry.kind === "success" ? 0 : 1,
      entry.ttlOffsets,
      entry.ttls,
      now - entry.storedAt,
    );
  }

  private onUdp(listener: Listener, udp: UdpSocket, msg: Buffer, rinfo: RemoteInfo): void {
    let answer: Buffer | Promise<Buffer> | undefined;
    try {
      answer = this.handle(listener, msg, "udp");
    } catch (e) {
      this.log(`${listener.name}: query from ${rinfo.address}:${rinfo.port} failed: ${(e as Error).stack}`);
      return;
    }
    if (answer instanceof Promise)
      answer.then(
        (out) => udp.send(out, rinfo.port, rinfo.address),
        (e: Error) =>
          this.log(`${listener.name}: query from ${rinfo.address}:${rinfo.port} failed: ${e.stack}`),
      );
    else if (answer) udp.send(answer, rinfo.port, rinfo.address);
  }

  private onTcpConnection(listener: Listener, conn: Socket): void {
    if (listener.connections.size >= MAX_TCP_CONNECTIONS) {
      conn.destroy();
      return;
    }
    listener.connections.add(conn);
    conn.on("close", () => listener.connections.delete(conn));
    conn.on("error", () => conn.destroy());
    conn.setTimeout(TCP_IDLE_MS, () => conn.destroy());
    let buffered: Buffer = Buffer.alloc(0);
    let inFlight = 0;
    const reply = (out: Buffer) => {
      if (inFlight < MAX_TCP_IN_FLIGHT && conn.isPaused()) conn.resume();
      if (conn.destroyed || !conn.writable) return;
      const frame = Buffer.allocUnsafe(2 + out.length);
      frame.writeUInt16BE(out.length, 0);
      out.copy(frame, 2);
      conn.write(frame);
    };
    conn.on("data", (chunk: Buffer) => {
      buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
      while (buffered.length >= 2) {
        const length = buffered.readUInt16BE(0);
        // A frame that cannot hold a DNS header means the stream is not DNS: stop reading it.
        if (length < HEADER_SIZE) {
          this.metrics.countMalformed(listener.name);
          conn.destroy();
          return;
        }
        if (buffered.length < 2 + length) break;
        const msg = Buffer.from(buffered.subarray(2, 2 + length));
        buffered = buffered.subarray(2 + length);
        try {
          const answer = this.handle(listener, msg, "tcp");
          if (answer instanceof Promise) {
            inFlight++;
            answer.then(
              (out) => {
                inFlight--;
                reply(out);
              },
              (e: Error) => {
                inFlight--;
                this.log(`${listener.name}: TCP query failed: ${e.stack}`);
              },
            );
          } else if (answer) reply(answer);
        } catch (e) {
          this.log(`${listener.name}: TCP query failed: ${(e as Error).stack}`);
        }
        if (inFlight >= MAX_TCP_IN_FLIGHT) conn.pause();
      }
    });
  }

  /**
   * Answers one packet: the bytes to send back, a promise of them (forwarded queries), or undefined when
   * the packet is dropped. The cache-hit path allocates only the answer itself.
   */
  private handle(
    listener: Listener,
    msg: Buffer,
    proto: "udp" | "tcp",
  ): Buffer | Promise<Buffer> | undefined {
    const started = performance.now();
    const parsed = parseQuery(msg);
    if (parsed.kind !== "query") {
      this.metrics.countMalformed(listener.name);
      return parsed.kind === "error" ? encodeHeaderOnly(parsed.id, parsed.flags, parsed.rcode) : undefined;
    }
    const query = parsed;
    const views = listener.views;
    // One block on this listener: a cache hit proves the name was routed into it before, so the name is
    // only decoded on a miss. Several blocks: route by name first.
    let view = views.length === 1 ? views[0] : undefined;
    let qname: string | undefined;
    if (!view) {
      qname = questionName(msg);
      view = routeByName(views, qname);
      if (!view) return this.refuse(listener, msg, query);
    }
    const metrics = view.metrics;
    const limit = proto === "udp" ? udpLimit(query.edns) : MAX_MESSAGE_SIZE;
    if (query.edns && query.edns.version > 0) return this.badVersion(metrics, proto, msg, query, started);
    const block = view.block;
    const cache = block.cache;
    if (cache) {
      const now = this.now();
      const entry = cache.get(query.key, now);
      if (entry) {
        metrics.request(proto, query.qtype);
        metrics.cacheHits[entry.kind]++;
        const out = this.finish(cache.render(entry, now), entry.layout, msg, query, limit);
        metrics.response((out[3] as number) & 0xf, (performance.now() - started) / 1000);
        if (proto === "udp" && listener.fast) this.offer(listener, view, query, entry, out, now);
        return out;
      }
    }
    if (qname === undefined) {
      qname = questionName(msg);
      if (view.zone !== "." && routeByName(views, qname) !== view) return this.refuse(listener, msg, query);
    }
    metrics.request(proto, query.qtype);
    if (cache) metrics.cacheMisses++;
    const routed = view;
    const respond = (answer: Answer): Buffer => {
      let { response, layout } = answer;
      let entry: CacheEntry | undefined;
      let now = 0;
      if (cache) {
        layout ??= walkResponse(response);
        now = this.now();
        entry = layout ? cache.put(query.key, response, layout, now) : undefined;
        // The first answer as the cached ones: TTLs capped by the cache.
        if (entry) response = cache.render(entry, now);
      }
      const out = this.finish(response, layout, msg, query, limit);
      metrics.response((out[3] as number) & 0xf, (performance.now() - started) / 1000);
      if (entry && proto === "udp" && listener.fast) this.offer(listener, routed, query, entry, out, now);
      return out;
    };
    const answer = this.resolve(block, msg, query, qname);
    if (!(answer instanceof Promise)) return respond(answer);
    return answer.then(respond, (e: Error) => {
      this.log(`${listener.name}: resolving failed: ${e.stack}`);
      return respond({ response: encodeResponse(msg, query, servfail()) });
    });
  }

  /** RFC 6891 §6.1.3: only EDNS version 0 exists; anything above gets BADVERS. */
  private badVersion(
    metrics: ZoneMetrics,
    proto: "udp" | "tcp",
    msg: Buffer,
    query: Query,
    started: number,
  ): Buffer {
    metrics.request(proto, query.qtype);
    const response = encodeResponse(msg, query, { ...refused(), rcode: 0 });
    const out = Buffer.allocUnsafe(response.length + OPT_RECORD_SIZE);
    response.copy(out);
    writeOpt(out, response.length, RCODE_BADVERS, query.edns?.dnssecOk ?? false);
    out.writeUInt16BE(1, 10);
    metrics.response(RCODE_BADVERS, (performance.now() - started) / 1000);
    return out;
  }

  /** REFUSED for a name outside every zone of the listener (counted per listener: it has no zone). */
  private refuse(listener: Listener, msg: Buffer, query: Query): Buffer {
    this.metrics.countRefused(listener.name);
    return this.finish(encodeResponse(msg, query, refused()), undefined, msg, query, MAX_MESSAGE_SIZE);
  }

  /** The answer from the block's answerers, or the forwarded one (a promise). */
  private resolve(block: Block, msg: Buffer, query: Query, qname: string): Answer | Promise<Answer> {
    if (query.qclass !== CLASS_IN && query.qclass !== CLASS_ANY)
      return { response: encodeResponse(msg, query, refused()) };
    if (query.qtype === TYPE.AXFR || query.qtype === TYPE.IXFR)
      return { response: encodeResponse(msg, query, { ...refused(), rcode: RCODE.NOTIMP }) };
    if (query.qtype === TYPE.OPT)
      return { response: encodeResponse(msg, query, { ...refused(), rcode: RCODE.FORMERR }) };
    const qtype = typeName(query.qtype);
    const pool = block.forwards.find((p) => p.covers(qname));
    // A "." inside a label cannot be in an answerer's zone (dotted names): only forwarding can answer it.
    const answerers = questionIsDotted(msg) ? block.answerers : [];
    // A forward zone more specific than an answerer's (remote.svc.cluster.local inside cluster.local)
    // takes the name: the answerer would only say NXDOMAIN for the other cluster's services.
    const forwardDepth = pool ? zoneDepth(pool.config.from) : -1;
    for (const { answerer, fallthrough } of answerers) {
      const zone = deepestZone(answerer.zones, qname);
      if (zone === undefined || zoneDepth(zone) < forwardDepth) continue;
      let result: ReturnType<ZoneAnswerer["lookup"]>;
      try {
        result = answerer.lookup(qname, qtype);
      } catch (e) {
        this.log(
          `answerer for ${answerer.zones.join(" ")} threw on ${qname} ${qtype}: ${(e as Error).stack}`,
        );
        return { response: encodeResponse(msg, query, servfail()) };
      }
      if (!result) continue;
      if (result.rcode === "NXDOMAIN" && fallthrough.some((z) => inZone(qname, z))) continue;
      const content: ResponseContent = {
        rcode: RCODE[result.rcode],
        authoritative: result.rcode === "NOERROR" || result.rcode === "NXDOMAIN",
        answers: result.answers,
        authority: result.authority,
        additionals: result.additionals,
      };
      try {
        return { response: encodeResponse(msg, query, content) };
      } catch (e) {
        this.log(`cannot encode the answer for ${qname} ${qtype}: ${(e as Error).message}`);
        return { response: encodeResponse(msg, query, servfail()) };
      }
    }
    if (!pool) return { response: encodeResponse(msg, query, refused()) };
    return pool.forward(msg).then((response) => {
      const layout = response ? walkResponse(response) : undefined;
      const stripped = response && layout ? withoutOpt(response, layout) : undefined;
      if (!stripped) return { response: encodeResponse(msg, query, servfail()) };
      return { response: stripped.buf, layout: stripped.layout };
    });
  }

  /**
   * The bytes for this client: the response with the client's id, RD/CD bits and spelling of the name,
   * cut to the client's size (TC) and with an OPT record when the client sent one.
   */
  private finish(
    response: Buffer,
    layout: ResponseLayout | undefined,
    msg: Buffer,
    query: Query,
    limit: number,
  ): Buffer {
    const optSize = query.edns ? OPT_RECORD_SIZE : 0;
    let body = response;
    if (response.length + optSize > limit) {
      const walked = layout ?? walkResponse(response);
      if (walked) body = truncateResponse(response, walked, limit, optSize);
    }
    const out = Buffer.allocUnsafe(body.length + optSize);
    body.copy(out);
    out.writeUInt16BE(query.id, 0);
    out.writeUInt16BE((out.readUInt16BE(2) & ~(FLAG_RD | FLAG_CD)) | (query.flags & (FLAG_RD | FLAG_CD)), 2);
    if (out.readUInt16BE(4) === 1 && body.length >= query.questionEnd)
      msg.copy(out, HEADER_SIZE, HEADER_SIZE, query.questionEnd);
    if (query.edns) {
      writeOpt(out, body.length, 0, query.edns.dnssecOk);
      out.writeUInt16BE(out.readUInt16BE(10) + 1, 10);
    }
    return out;
  }

  private closing: Promise<void> | undefined;

  /** Stops everything; calling it again returns the same promise. */
  close(): Promise<void> {
    this.closing ??= this.closeAll();
    return this.closing;
  }

  private async closeAll(): Promise<void> {
    this.foldFastPaths();
    for (const listener of this.listeners) listener.fast?.close();
    for (const block of this.blocks) {
      for (const pool of block.forwards) pool.close();
      block.cache?.clear();
    }
    const closing: Promise<unknown>[] = [];
    for (const listener of this.listeners) {
      if (listener.udp) {
        const udp = listener.udp;
        closing.push(new Promise<void>((r) => udp.close(() => r())).catch(() => {}));
      }
      for (const conn of listener.connections) conn.destroy();
      // Handshakes in progress too: the server's close waits for every connection.
      for (const raw of listener.tlsRaw ?? []) raw.destroy();
      if (listener.tcp) {
        const tcp = listener.tcp;
        closing.push(new Promise((r) => tcp.close(r)));
      }
    }
    for (const { server } of this.metricsServers) {
      server.closeAllConnections();
      closing.push(new Promise((r) => server.close(r)));
    }
    await Promise.all(closing);
  }
}

function refused(): ResponseContent {
  return { rcode: RCODE.REFUSED, authoritative: false, answers: [], authority: [], additionals: [] };
}

function servfail(): ResponseContent {
  return { rcode: RCODE.SERVFAIL, authoritative: false, answers: [], authority: [], additionals: [] };
}

function bindError(e: unknown, listener: { address: string; port: number }, proto: string): Error {
  const code = (e as NodeJS.ErrnoException).code;
  const where = `${proto} ${listener.address} port ${listener.port}`;
  const hint =
    code === "EACCES"
      ? "ports below 1024 need root or CAP_NET_BIND_SERVICE: use a port such as 1053"
      : code === "EADDRINUSE"
        ? "another process listens there: choose another port (or port 0 for any free one)"
        : code === "EADDRNOTAVAIL"
          ? "the address is not on any interface of this namespace: use one that is (127.0.0.1 on loopback)"
          : "check the bind address and port";
  return Object.assign(new Error(`cannot listen on ${where}: ${(e as Error).message}; ${hint}`), { code });
}

/**
 * Starts a DNS server for `config` (from parseDnsConfig/loadDnsConfig). Resolves once every listener and
 * metrics endpoint is bound; the handle tells the ports (for port 0) and closes everything.
 */
export async function startDnsServer(
  config: DnsServerConfig,
  options: DnsServerOptions = {},
): Promise<DnsServerHandle> {
  const server = new DnsServer(config, options);
  server.buildBlocks();
  try {
    await server.listen();
  } catch (e) {
    await server.close();
    throw e;
  }
  return {
    listeners: server.listeners.map((l) => ({
      transport: l.transport,
      address: l.address,
      port: l.port,
      zones: l.views.map((v) => v.zone),
    })),
    metrics: server.metricsServers.map(({ address, port }) => ({ address, port })),
    renderMetrics: () => server.metrics.render(),
    close: () => server.close(),
  };
}
