/**
 * Prometheus metrics in the text exposition format (version 0.0.4), written by hand: a few counters and
 * one histogram do not need a client library, and plain numbers keep the per-query cost at a few
 * increments. Names follow CoreDNS's (coredns_dns_* → podnet_dns_*) so dashboards translate.
 *
 * Served over HTTP on a loopback address only (`prometheus 127.0.0.1:9153` in the configuration).
 */
import { createServer, type Server } from "node:http";
import { rcodeName, typeName } from "./wire.js";

/** CoreDNS's request duration buckets: 0.25 ms doubling to 8 s. */
export const DURATION_BUCKETS = [
  0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096,
  8.192,
];

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function labels(pairs: Record<string, string>): string {
  return `{${Object.entries(pairs)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(",")}}`;
}

/** What one server block on one listener counts. */
export class ZoneMetrics {
  readonly requests = { udp: new Map<number, number>(), tcp: new Map<number, number>() };
  readonly rcodes = new Map<number, number>();
  readonly buckets = new Float64Array(DURATION_BUCKETS.length);
  durationSum = 0;
  durationCount = 0;
  cacheHits = { success: 0, denial: 0 };
  cacheMisses = 0;

  constructor(
    readonly server: string,
    readonly zone: string,
  ) {}

  request(proto: "udp" | "tcp", qtype: number): void {
    const counts = this.requests[proto];
    counts.set(qtype, (counts.get(qtype) ?? 0) + 1);
  }

  /** One answered request: its rcode and seconds from receipt to send. */
  response(rcode: number, seconds: number): void {
    this.rcodes.set(rcode, (this.rcodes.get(rcode) ?? 0) + 1);
    this.durationSum += seconds;
    this.durationCount++;
    for (let i = 0; i < DURATION_BUCKETS.length; i++) {
      if (seconds <= (DURATION_BUCKETS[i] as number)) {
        this.buckets[i] = (this.buckets[i] as number) + 1;
        break;
      }
    }
  }
}

/** What one upstream counts. */
export class UpstreamMetrics {
  requests = 0;
  failures = 0;
  healthcheckFailures = 0;
  /** TLS connections opened to a tls:// upstream (each one handshake; queries are pipelined on it). */
  tlsConnections = 0;
  readonly rcodes = new Map<number, number>();
  constructor(readonly to: string) {}
}

/** All metrics of a server: zones, upstreams, malformed packets, cache sizes. */
export class DnsMetrics {
  readonly zones: ZoneMetrics[] = [];
  readonly upstreams: UpstreamMetrics[] = [];
  readonly malformed = new Map<string, number>();
  readonly refused = new Map<string, number>();
  /** DNS-over-TLS listeners: completed and failed handshakes, by server. */
  readonly tlsHandshakes = new Map<string, number>();
  readonly tlsHandshakeFailures = new Map<string, number>();
  /** Reports cache sizes at scrape time: [server, zone, kind, entries]. */
  cacheSizes: () => [string, string, string, number][] = () => [];
  /** Runs before each render: folds counts kept elsewhere (the native fast path) into these metrics. */
  beforeRender: (() => void) | undefined;

  zone(server: string, zone: string): ZoneMetrics {
    const m = new ZoneMetrics(server, zone);
    this.zones.push(m);
    return m;
  }

  upstream(to: string): UpstreamMetrics {
    const existing = this.upstreams.find((u) => u.to === to);
    if (existing) return existing;
    const m = new UpstreamMetrics(to);
    this.upstreams.push(m);
    return m;
  }

  countMalformed(server: string): void {
    this.malformed.set(server, (this.malformed.get(server) ?? 0) + 1);
  }

  countRefused(server: string): void {
    this.refused.set(server, (this.refused.get(server) ?? 0) + 1);
  }

  countTlsHandshake(server: string, ok: boolean): void {
    const map = ok ? this.tlsHandshakes : this.tlsHandshakeFailures;
    map.set(server, (map.get(server) ?? 0) + 1);
  }

  /** The text exposition format. */
  render(): string {
    this.beforeRender?.();
    const out: string[] = [];
    const family = (name: string, type: string, help: string) =>
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);

    family(
      "podnet_dns_requests_total",
      "counter",
      "DNS requests received, by server, zone, transport and query type.",
    );
    for (const z of this.zones)
      for (const proto of ["udp", "tcp"] as const)
        for (const [qtype, n] of z.requests[proto])
          out.push(
            `podnet_dns_requests_total${labels({ server: z.server, zone: z.zone, proto, type: typeName(qtype) })} ${n}`,
          );

    family("podnet_dns_responses_total", "counter", "DNS responses sent, by server, zone and rcode.");
    for (const z of this.zones)
      for (const [rcode, n] of z.rcodes)
        out.push(
          `podnet_dns_responses_total${labels({ server: z.server, zone: z.zone, rcode: rcodeName(rcode) })} ${n}`,
        );

    family(
      "podnet_dns_request_duration_seconds",
      "histogram",
      "Time from receiving a request to sending its response.",
    );
    for (const z of this.zones) {
      let cumulative = 0;
      DURATION_BUCKETS.forEach((le, i) => {
        cumulative += z.buckets[i] as number;
        out.push(
          `podnet_dns_request_duration_seconds_bucket${labels({ server: z.server, zone: z.zone, le: String(le) })} ${cumulative}`,
        );
      });
      const base = { server: z.server, zone: z.zone };
      out.push(
        `podnet_dns_request_duration_seconds_bucket${labels({ ...base, le: "+Inf" })} ${z.durationCount}`,
      );
      out.push(`podnet_dns_request_duration_seconds_sum${labels(base)} ${z.durationSum}`);
      out.push(`podnet_dns_request_duration_seconds_count${labels(base)} ${z.durationCount}`);
    }

    family("podnet_dns_cache_hits_total", "counter", "Answers served from the cache, by partition.");
    for (const z of this.zones)
      for (const kind of ["success", "denial"] as const)
        out.push(
          `podnet_dns_cache_hits_total${labels({ server: z.server, zone: z.zone, type: kind })} ${z.cacheHits[kind]}`,
        );
    family("podnet_dns_cache_misses_total", "counter", "Requests the cache could not answer.");
    for (const z of this.zones)
      out.push(`podnet_dns_cache_misses_total${labels({ server: z.server, zone: z.zone })} ${z.cacheMisses}`);
    family("podnet_dns_cache_entries", "gauge", "Entries in the cache, by partition.");
    for (const [server, zone, kind, n] of this.cacheSizes())
      out.push(`podnet_dns_cache_entries${labels({ server, zone, type: kind })} ${n}`);

    family(
      "podnet_dns_malformed_requests_total",
      "counter",
      "Packets dropped or answered FORMERR/NOTIMP before routing.",
    );
    for (const [server, n] of this.malformed)
      out.push(`podnet_dns_malformed_requests_total${labels({ server })} ${n}`);

    family(
      "podnet_dns_refused_requests_total",
      "counter",
      "Queries for names outside every zone of the listener (REFUSED).",
    );
    for (const [server, n] of this.refused)
      out.push(`podnet_dns_refused_requests_total${labels({ server })} ${n}`);

    family("podnet_dns_forward_requests_total", "counter", "Queries sent to each upstream.");
    for (const u of this.upstreams)
      out.push(`podnet_dns_forward_requests_total${labels({ to: u.to })} ${u.requests}`);
    family("podnet_dns_forward_responses_total", "counter", "Responses from each upstream, by rcode.");
    for (const u of this.upstreams)
      for (const [rcode, n] of u.rcodes)
        out.push(`podnet_dns_forward_responses_total${labels({ to: u.to, rcode: rcodeName(rcode) })} ${n}`);
    family(
      "podnet_dns_forward_failures_total",
      "counter",
      "Queries to an upstream that failed (timeout, refused, bad answer).",
    );
    for (const u of this.upstreams)
      out.push(`podnet_dns_forward_failures_total${labels({ to: u.to })} ${u.failures}`);
    family(
      "podnet_dns_forward_healthcheck_failures_total",
      "counter",
      "Failed health checks of each upstream.",
    );
    for (const u of this.upstreams)
      out.push(
        `podnet_dns_forward_healthcheck_failures_total${labels({ to: u.to })} ${u.healthcheckFailures}`,
      );
    family(
      "podnet_dns_forward_tls_connections_total",
      "counter",
      "TLS connections opened to each tls:// upstream (queries are pipelined on them).",
    );
    for (const u of this.upstreams)
      if (u.to.startsWith("tls://"))
        out.push(`podnet_dns_forward_tls_connections_total${labels({ to: u.to })} ${u.tlsConnections}`);
    family(
      "podnet_dns_tls_handshakes_total",
      "counter",
      "Completed TLS handshakes of DNS-over-TLS listeners (one per client connection).",
    );
    for (const [server, n] of this.tlsHandshakes)
      out.push(`podnet_dns_tls_handshakes_total${labels({ server })} ${n}`);
    family(
      "podnet_dns_tls_handshake_failures_total",
      "counter",
      "Failed TLS handshakes and rejected client certificates of DNS-over-TLS listeners.",
    );
    for (const [server, n] of this.tlsHandshakeFailures)
      out.push(`podnet_dns_tls_handshake_failures_total${labels({ server })} ${n}`);
    return `${out.join("\n")}\n`;
  }
}

/** An HTTP server answering GET /metrics with `metrics.render()`; listen it yourself. */
export function createMetricsServer(render: () => string): Server {
  return createServer((req, res) => {
    if (req.method !== "GET" || (req.url !== "/metrics" && !req.url?.startsWith("/metrics?"))) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: GET /metrics\n");
      return;
    }
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(render());
  });
}
