/**
 * The DNS server's configuration: a Corefile-like text parsed into typed config. Every problem is
 * reported with file, line, what is wrong and how to fix it, all at once (InvalidInputError).
 *
 *   [dns://|tls://]ZONE[:PORT] [ZONE[:PORT]...] {
 *       bind ADDRESS...
 *       tls CERT KEY [CA] { client_auth nocert|request|require|verify_if_given|require_and_verify }
 *                                                  (tls:// blocks only, and required there)
 *       kubernetes ZONES... { pods disabled|insecure|verified; ttl SECONDS; fallthrough [ZONES...] }
 *       hosts [FILE] [ZONES...] { IP NAME...; ttl SECONDS; fallthrough }
 *       forward FROM TO... { policy random|round_robin|sequential; health_check DURATION;
 *                            max_fails N; timeout DURATION; failover RCODE...; force_tcp; except ZONES...;
 *                            tls [CERT KEY] [CA]; tls_servername NAME }   (TO: IP[:PORT] or tls://IP[:PORT])
 *       cache [MAXTTL] { success CAPACITY [MAXTTL [MINTTL]]; denial CAPACITY [MAXTTL [MINTTL]] }
 *       prometheus ADDRESS:PORT
 *   }
 *
 * Statements end at a newline or `;`; `#` starts a comment; a `{` opens a directive's own block.
 * Relative file names (hosts files, certificates, keys) start at the configuration file's directory
 * (`resolveConfigPath`); they are read when the server starts, not here.
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { dirname, resolve } from "node:path";
import { type Diagnostic, InvalidInputError } from "../../api/diagnostics.js";

export type ForwardPolicy = "random" | "round_robin" | "sequential";
/** How queries travel: plain DNS (UDP, TCP) or DNS over TLS (RFC 7858, TCP framing inside TLS). */
export type Transport = "dns" | "tls";
/** Go's tls.ClientAuthType as CoreDNS's `client_auth` names it. */
export type ClientAuth = "nocert" | "request" | "require" | "verify_if_given" | "require_and_verify";
export const CLIENT_AUTH_MODES: readonly ClientAuth[] = [
  "nocert",
  "request",
  "require",
  "verify_if_given",
  "require_and_verify",
];
export type PodsMode = "disabled" | "insecure" | "verified";

export interface Upstream {
  address: string;
  port: number;
}

/** The cluster zone (CoreDNS's `kubernetes`): the process starting the server supplies its answerer. */
export interface ClusterZoneConfig {
  zones: string[];
  pods: PodsMode;
  ttl: number;
  /** Zones whose NXDOMAIN answers go on to the next handler (forward); empty = none. */
  fallthrough: string[];
  line: number;
}

export interface HostsEntry {
  address: string;
  names: string[];
  line: number;
}

/** Static records, as /etc/hosts: A/AAAA and the matching PTR records. */
export interface HostsConfig {
  zones: string[];
  entries: HostsEntry[];
  /** A hosts-format file read at start, resolved relative to the configuration file. */
  file?: string;
  ttl: number;
  fallthrough: boolean;
  line: number;
}

/** A `tls://` block's certificate (CoreDNS's `tls` plugin); paths as written (see resolveConfigPath). */
export interface ServerTlsConfig {
  cert: string;
  key: string;
  /** Verifies client certificates; without it, the system CAs do (CoreDNS's rule). */
  ca?: string;
  clientAuth: ClientAuth;
  line: number;
}

/** A forward's TLS options (`tls`, `tls_servername`); present when its upstreams are tls://. */
export interface ForwardTlsConfig {
  /** The client certificate and key, for servers that require one (mutual TLS). */
  cert?: string;
  key?: string;
  /** Verifies the upstream's certificate; without it, the system CAs do. */
  ca?: string;
  /** The name the upstream's certificate must hold; without it, the upstream's IP address. */
  serverName?: string;
  line: number;
}

export interface ForwardConfig {
  /** The zone forwarded ("." = everything not answered before). */
  from: string;
  to: Upstream[];
  /** One transport for all upstreams (podnet refuses to mix tls:// and plain ones). */
  transport: Transport;
  tls?: ForwardTlsConfig;
  except: string[];
  policy: ForwardPolicy;
  healthCheckMs: number;
  /** An upstream is down after this many failed queries or checks in a row (0 = never). */
  maxFails: number;
  /** Whole-query deadline over all tries: SERVFAIL when it passes. */
  timeoutMs: number;
  forceTcp: boolean;
  /** Answers with these rcodes (e.g. SERVFAIL, REFUSED) make the next upstream be tried (CoreDNS's `failover`). */
  failoverRcodes: number[];
  line: number;
}

export interface CacheLimits {
  capacity: number;
  maxTtl: number;
  minTtl: number;
}

export interface CacheConfig {
  success: CacheLimits;
  denial: CacheLimits;
  line: number;
}

export interface MetricsConfig {
  address: string;
  port: number;
  line: number;
}

export interface ServerBlockConfig {
  /** Zones served, lower case without the trailing dot; "." is the root. */
  zones: string[];
  port: number;
  /** `dns` (UDP and TCP) or `tls` (DNS over TLS on TCP; keys written tls://ZONE:PORT). */
  transport: Transport;
  /** The certificate of a tls:// block. */
  tls?: ServerTlsConfig;
  /** Addresses to listen on; empty = the server's default (127.0.0.1 for `podnet dns serve`). */
  bind: string[];
  clusterZone?: ClusterZoneConfig;
  hosts: HostsConfig[];
  forwards: ForwardConfig[];
  cache?: CacheConfig;
  metrics?: MetricsConfig;
  line: number;
}

export interface DnsServerConfig {
  file: string;
  servers: ServerBlockConfig[];
}

export const DEFAULT_PORT = 53;
export const DEFAULT_TLS_PORT = 853;
export const DEFAULT_FORWARD_TIMEOUT_MS = 2000;
export const DEFAULT_HEALTH_CHECK_MS = 500;
export const DEFAULT_MAX_FAILS = 2;
export const DEFAULT_CACHE_CAPACITY = 9984;
export const DEFAULT_CACHE_MAX_TTL = 3600;
export const DEFAULT_DENIAL_MAX_TTL = 1800;
export const DEFAULT_CLUSTER_TTL = 5;
export const DEFAULT_HOSTS_TTL = 3600;

// ---- tokens ----------------------------------------------------------------------------------------------

interface Token {
  text: string;
  line: number;
  /** `{`, `}` and statement ends are structural; quoted text never is. */
  kind: "word" | "open" | "close" | "end";
}

function tokenize(text: string, file: string, diagnostics: Diagnostic[]): Token[] {
  const tokens: Token[] = [];
  let line = 1;
  let i = 0;
  const end = () => {
    const last = tokens[tokens.length - 1];
    if (last && last.kind !== "end") tokens.push({ text: "\n", line, kind: "end" });
  };
  while (i < text.length) {
    const c = text[i] as string;
    if (c === "\n") {
      end();
      line++;
      i++;
    } else if (c === " " || c === "\t" || c === "\r") i++;
    else if (c === "#") while (i < text.length && text[i] !== "\n") i++;
    else if (c === ";") {
      end();
      i++;
    } else if (c === "{" || c === "}") {
      if (c === "}") end();
      tokens.push({ text: c, line, kind: c === "{" ? "open" : "close" });
      if (c === "}") tokens.push({ text: "\n", line, kind: "end" });
      i++;
    } else if (c === '"') {
      const start = line;
      let value = "";
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === "\\" && i + 1 < text.length) i++;
        if (text[i] === "\n") line++;
        value += text[i];
        i++;
      }
      if (i >= text.length)
        diagnostics.push(error(file, start, "unterminated quoted string", 'close it with a matching "'));
      i++;
      tokens.push({ text: value, line: start, kind: "word" });
    } else {
      let value = "";
      while (i < text.length && !/[\s#;{}"]/.test(text[i] as string)) value += text[i++];
      tokens.push({ text: value, line, kind: "word" });
    }
  }
  end();
  return tokens;
}

function error(file: string, line: number, message: string, hint?: string): Diagnostic {
  return { severity: "error", code: "dns-config", message, hint, source: { file, line } };
}

/** A statement: its words, and its own `{ ... }` block of statements when it has one. */
interface Statement {
  words: Token[];
  block?: Statement[];
  line: number;
}

function parseStatements(tokens: Token[], file: string, diagnostics: Diagnostic[]): Statement[] {
  let at = 0;
  const parseList = (depth: number, openLine: number): Statement[] => {
    const list: Statement[] = [];
    let words: Token[] = [];
    for (;;) {
      const token = tokens[at++];
      if (!token) {
        if (words.length) list.push({ words, line: (words[0] as Token).line });
        if (depth > 0)
          diagnostics.push(
            error(file, openLine, "block opened here is never closed", "add the missing `}` at its end"),
          );
        return list;
      }
      if (token.kind === "word") words.push(token);
      else if (token.kind === "end") {
        if (words.length) list.push({ words, line: (words[0] as Token).line });
        words = [];
      } else if (token.kind === "open") {
        const line = words[0]?.line ?? token.line;
        if (!words.length)
          diagnostics.push(error(file, token.line, "`{` without a name before it", "write `NAME ... {`"));
        const block = parseList(depth + 1, token.line);
        list.push({ words, block, line });
        words = [];
      } else {
        if (words.length) list.push({ words, line: (words[0] as Token).line });
        if (depth === 0) {
          diagnostics.push(error(file, token.line, "`}` without a matching `{`", "remove it"));
          words = [];
          continue;
        }
        return list;
      }
    }
  };
  return parseList(0, 0);
}

// ---- values ----------------------------------------------------------------------------------------------

/** A zone name: lower case, without the trailing dot; "." for the root. */
export function normalizeZone(text: string): string | undefined {
  const lower = text.toLowerCase();
  if (lower === "." || lower === "") return ".";
  const name = lower.endsWith(".") ? lower.slice(0, -1) : lower;
  const labels = name.split(".");
  if (name.length > 253 || labels.some((l) => l.length === 0 || l.length > 63 || !/^[a-z0-9_*-]+$/.test(l)))
    return undefined;
  return name;
}

/** True when `name` is `zone` or below it. */
export function inZone(name: string, zone: string): boolean {
  return zone === "." || name === zone || (name.length > zone.length && name.endsWith(`.${zone}`));
}

/** Go-style durations as CoreDNS takes them: 500ms, 0.5s, 2s, 1m. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text);
  if (!m) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
  return Math.round(Number(m[1]) * unit);
}

/** A file name of the configuration, absolute: relative ones start at the configuration file's directory. */
export function resolveConfigPath(configFile: string, path: string): string {
  return resolve(dirname(configFile), path);
}

function parseUpstream(text: string, defaultPort = DEFAULT_PORT): Upstream | undefined {
  const plain = text.replace(/^dns:\/\//, "");
  let address = plain;
  let port = defaultPort;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(plain);
  if (bracketed) {
    address = bracketed[1] as string;
    if (bracketed[2]) port = Number(bracketed[2]);
  } else if (isIP(plain) === 0) {
    const m = /^([^:]+):(\d+)$/.exec(plain);
    if (!m) return undefined;
    address = m[1] as string;
    port = Number(m[2]);
  }
  if (isIP(address) === 0 || port < 1 || port > 65535) return undefined;
  return { address, port };
}

function isLoopback(address: string): boolean {
  return (isIP(address) === 4 && address.startsWith("127.")) || address === "::1";
}

// ---- directives ------------------------------------------------------------------------------------------

class BlockParser {
  constructor(
    readonly file: string,
    readonly diagnostics: Diagnostic[],
  ) {}

  fail(line: number, message: string, hint?: string): void {
    this.diagnostics.push(error(this.file, line, message, hint));
  }

  /** A non-negative integer argument, or undefined (with a diagnostic). */
  integer(
    token: Token | undefined,
    what: string,
    min: number,
    max: number,
    line: number,
  ): number | undefined {
    if (!token) {
      this.fail(line, `${what} is missing`, `give a whole number from ${min} to ${max}`);
      return undefined;
    }
    const n = Number(token.text);
    if (!/^\d+$/.test(token.text) || n < min || n > max) {
      this.fail(
        token.line,
        `${what} "${token.text}" is not a whole number from ${min} to ${max}`,
        `write a whole number from ${min} to ${max}`,
      );
      return undefined;
    }
    return n;
  }

  duration(token: Token | undefined, what: string, line: number): number | undefined {
    const ms = token ? parseDuration(token.text) : undefined;
    if (ms === undefined || ms <= 0) {
      this.fail(
        token?.line ?? line,
        `${what} ${token ? `"${token.text}" ` : ""}is not a duration`,
        "write a number with a unit: 500ms, 2s, 1m",
      );
      return undefined;
    }
    return ms;
  }

  zones(tokens: Token[]): string[] {
    const zones: string[] = [];
    for (const t of tokens) {
      const zone = normalizeZone(t.text);
      if (zone === undefined)
        this.fail(t.line, `"${t.text}" is not a zone name`, "write a domain name such as cluster.local or .");
      else zones.push(zone);
    }
    return zones;
  }

  noBlock(s: Statement, name: string): void {
    if (s.block) this.fail(s.line, `${name} takes no { } block`, "remove the braces and what is inside");
  }

  unknown(s: Statement, where: string, known: string[]): void {
    const name = s.words[0]?.text ?? "";
    this.fail(s.line, `unknown ${where} "${name}"`, `use one of: ${known.join(", ")}`);
  }

  clusterZone(s: Statement, blockZones: string[]): ClusterZoneConfig {
    const zones = s.words.length > 1 ? this.zones(s.words.slice(1)) : blockZones;
    const config: ClusterZoneConfig = {
      zones,
      pods: "disabled",
      ttl: DEFAULT_CLUSTER_TTL,
      fallthrough: [],
      line: s.line,
    };
    const known = ["pods", "ttl", "fallthrough", "endpoint_pod_names", "noendpoints"];
    for (const sub of s.block ?? []) {
      const [name, ...args] = sub.words;
      switch (name?.text) {
        case "pods": {
          const mode = args[0]?.text;
          if (args.length !== 1 || (mode !== "disabled" && mode !== "insecure" && mode !== "verified"))
            this.fail(
              sub.line,
              `pods "${args.map((a) => a.text).join(" ")}" is not a pods mode`,
              "write pods disabled, pods insecure or pods verified",
            );
          else config.pods = mode;
          break;
        }
        case "ttl": {
          const ttl = this.integer(args[0], "ttl", 0, 3600, sub.line);
          if (ttl !== undefined) config.ttl = ttl;
          break;
        }
        case "fallthrough":
          config.fallthrough = args.length ? this.zones(args) : zones;
          break;
        case "endpoint_pod_names":
        case "noendpoints":
          this.fail(
            sub.line,
            `kubernetes option "${name.text}" is not supported by podnet`,
            "remove the line",
          );
          break;
        default:
          this.unknown(sub, "kubernetes option", known);
      }
    }
    return config;
  }

  hosts(s: Statement, blockZones: string[]): HostsConfig {
    const args = s.words.slice(1);
    let file: string | undefined;
    // CoreDNS's order: an optional file first; a word with a "/" is a file (write ./hosts for a local one).
    if (args[0]?.text.includes("/")) file = (args.shift() as Token).text;
    const zones = args.length ? this.zones(args) : blockZones;
    const config: HostsConfig = {
      zones,
      entries: [],
      ttl: DEFAULT_HOSTS_TTL,
      fallthrough: false,
      line: s.line,
    };
    if (file) config.file = file;
    for (const sub of s.block ?? []) {
      const [first, ...rest] = sub.words;
      if (!first) continue;
      if (first.text === "ttl") {
        const ttl = this.integer(rest[0], "ttl", 0, 2_147_483_647, sub.line);
        if (ttl !== undefined) config.ttl = ttl;
      } else if (first.text === "fallthrough") config.fallthrough = true;
      else if (isIP(first.text)) {
        if (!rest.length)
          this.fail(sub.line, `address ${first.text} has no names`, "write ADDRESS NAME [NAME...]");
        const names = this.zones(rest);
        for (const name of names)
          if (!zones.some((zone) => inZone(name, zone)))
            this.fail(
              sub.line,
              `${name} is outside the zones of this hosts block (${zones.join(" ")}), so it would never be answered`,
              "add its zone to the hosts line or to the server block's keys, or remove the name",
            );
        config.entries.push({ address: first.text, names, line: sub.line });
      } else
        this.fail(
          sub.line,
          `"${first.text}" is neither an IP address nor a hosts option`,
          "write ADDRESS NAME [NAME...], ttl SECONDS or fallthrough",
        );
    }
    return config;
  }

  forward(s: Statement): ForwardConfig | undefined {
    const [, fromToken, ...toTokens] = s.words;
    if (!fromToken || !toTokens.length) {
      this.fail(
        s.line,
        "forward needs a zone and at least one upstream",
        "write forward ZONE ADDRESS[:PORT]...",
      );
      return undefined;
    }
    const from = normalizeZone(fromToken.text);
    if (from === undefined)
      this.fail(fromToken.line, `"${fromToken.text}" is not a zone name`, "write forward . 10.0.0.10");
    const to: Upstream[] = [];
    let firstTls: Token | undefined;
    let firstPlain: Token | undefined;
    for (const t of toTokens) {
      const tls = t.text.startsWith("tls://");
      const upstream = tls
        ? parseUpstream(t.text.slice("tls://".length), DEFAULT_TLS_PORT)
        : /^[a-z][a-z0-9+.-]*:\/\//i.test(t.text) && !t.text.startsWith("dns://")
          ? undefined
          : parseUpstream(t.text);
      if (!upstream) {
        this.fail(
          t.line,
          `"${t.text}" is not an upstream address`,
          "write an IP address with an optional port: 10.0.0.10, 10.0.0.10:53, [fd00::10]:53, or tls://10.0.0.10[:853] for DNS over TLS",
        );
        continue;
      }
      if (tls) firstTls ??= t;
      else firstPlain ??= t;
      to.push(upstream);
    }
    // CoreDNS lets plain upstreams sit beside tls:// ones; podnet does not: failover to a plain upstream
    // would send the zone's queries in clear text, which is what choosing TLS ruled out.
    if (firstTls && firstPlain)
      this.fail(
        s.line,
        `forward mixes DNS over TLS (${firstTls.text}) and plain DNS (${firstPlain.text}) upstreams`,
        "forward a zone over one transport: write every upstream as tls://IP[:PORT], or none",
      );
    const transport = firstTls && !firstPlain ? "tls" : "dns";
    const config: ForwardConfig = {
      from: from ?? ".",
      to,
      transport,
      except: [],
      policy: "random",
      healthCheckMs: DEFAULT_HEALTH_CHECK_MS,
      maxFails: DEFAULT_MAX_FAILS,
      timeoutMs: DEFAULT_FORWARD_TIMEOUT_MS,
      forceTcp: false,
      failoverRcodes: [],
      line: s.line,
    };
    if (transport === "tls") config.tls = { line: s.line };
    const known = [
      "policy",
      "health_check",
      "max_fails",
      "timeout",
      "force_tcp",
      "except",
      "failover",
      "tls",
      "tls_servername",
    ];
    let tlsLine: number | undefined;
    let serverNameLine: number | undefined;
    for (const sub of s.block ?? []) {
      const [name, ...args] = sub.words;
      switch (name?.text) {
        case "tls": {
          if (tlsLine !== undefined) {
            this.fail(sub.line, `tls is given twice in this forward (line ${tlsLine})`, "keep one");
            break;
          }
          tlsLine = sub.line;
          // CoreDNS's forms: tls | tls CA | tls CERT KEY | tls CERT KEY CA.
          if (args.length > 3) {
            this.fail(
              sub.line,
              `tls takes at most 3 files, not ${args.length}`,
              "write tls CA, tls CERT KEY or tls CERT KEY CA",
            );
            break;
          }
          const tls: ForwardTlsConfig = { ...config.tls, line: sub.line };
          if (args.length === 1) tls.ca = (args[0] as Token).text;
          if (args.length >= 2) {
            tls.cert = (args[0] as Token).text;
            tls.key = (args[1] as Token).text;
          }
          if (args.length === 3) tls.ca = (args[2] as Token).text;
          config.tls = tls;
          break;
        }
        case "tls_servername": {
          serverNameLine = sub.line;
          const serverName = args[0]?.text.toLowerCase().replace(/\.$/, "");
          if (args.length !== 1 || !serverName || normalizeZone(serverName) === undefined || isIP(serverName))
            this.fail(
              sub.line,
              `tls_servername "${args.map((a) => a.text).join(" ")}" is not one DNS name`,
              "write the name the upstream's certificate holds: tls_servername dns.remote.example",
            );
          else config.tls = { line: sub.line, ...config.tls, serverName };
          break;
        }
        case "policy": {
          const policy = args[0]?.text;
          if (
            args.length !== 1 ||
            (policy !== "random" && policy !== "round_robin" && policy !== "sequential")
          )
            this.fail(
              sub.line,
              `policy "${args.map((a) => a.text).join(" ")}" is not a forward policy`,
              "write policy random, policy round_robin or policy sequential",
            );
          else config.policy = policy;
          break;
        }
        case "health_check": {
          const ms = this.duration(args[0], "health_check", sub.line);
          if (ms !== undefined) config.healthCheckMs = ms;
          break;
        }
        case "max_fails": {
          const n = this.integer(args[0], "max_fails", 0, 1000, sub.line);
          if (n !== undefined) config.maxFails = n;
          break;
        }
        case "timeout": {
          const ms = this.duration(args[0], "timeout", sub.line);
          if (ms !== undefined) config.timeoutMs = ms;
          break;
        }
        case "force_tcp":
          config.forceTcp = true;
          break;
        case "except":
          config.except = this.zones(args);
          break;
        case "failover": {
          const codes: Record<string, number> = { SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 };
          if (!args.length)
            this.fail(sub.line, "failover needs at least one rcode", "write failover SERVFAIL REFUSED");
          for (const a of args) {
            const code = codes[a.text.toUpperCase()];
            if (code === undefined)
              this.fail(
                a.line,
                `failover "${a.text}" is not an rcode podnet fails over on`,
                `use ${Object.keys(codes).join(", ")}`,
              );
            else config.failoverRcodes.push(code);
          }
          break;
        }
        default:
          this.unknown(sub, "forward option", known);
      }
    }
    const tlsOption = tlsLine ?? serverNameLine;
    if (transport !== "tls" && tlsOption !== undefined && !(firstTls && firstPlain))
      this.fail(
        tlsOption,
        `${tlsLine !== undefined ? "tls" : "tls_servername"} applies to DNS over TLS upstreams only, and this forward has none`,
        `write the upstreams as tls://IP[:PORT] (port ${DEFAULT_TLS_PORT} by default), or remove the line`,
      );
    if (transport !== "tls") delete config.tls;
    return config;
  }

  cache(s: Statement): CacheConfig {
    const maxTtl = s.words[1] ? this.integer(s.words[1], "cache TTL", 1, 2_147_483_647, s.line) : undefined;
    const config: CacheConfig = {
      success: { capacity: DEFAULT_CACHE_CAPACITY, maxTtl: maxTtl ?? DEFAULT_CACHE_MAX_TTL, minTtl: 5 },
      denial: { capacity: DEFAULT_CACHE_CAPACITY, maxTtl: maxTtl ?? DEFAULT_DENIAL_MAX_TTL, minTtl: 5 },
      line: s.line,
    };
    if (s.words.length > 2)
      this.fail(
        s.line,
        "cache takes at most one argument (the maximum TTL)",
        "write cache [SECONDS] { ... }",
      );
    for (const sub of s.block ?? []) {
      const [name, ...args] = sub.words;
      if (name?.text !== "success" && name?.text !== "denial") {
        this.unknown(sub, "cache option", ["success", "denial"]);
        continue;
      }
      const limits = config[name.text];
      const capacity = this.integer(args[0], `${name.text} capacity`, 1, 10_000_000, sub.line);
      if (capacity !== undefined) limits.capacity = capacity;
      if (args[1]) {
        const ttl = this.integer(args[1], `${name.text} TTL`, 1, 2_147_483_647, sub.line);
        if (ttl !== undefined) limits.maxTtl = ttl;
      }
      if (args[2]) {
        const min = this.integer(args[2], `${name.text} minimum TTL`, 0, limits.maxTtl, sub.line);
        if (min !== undefined) limits.minTtl = min;
      }
      if (args.length > 3)
        this.fail(
          sub.line,
          `${name.text} takes at most 3 values`,
          `write ${name.text} CAPACITY [TTL [MINTTL]]`,
        );
    }
    for (const limits of [config.success, config.denial])
      limits.minTtl = Math.min(limits.minTtl, limits.maxTtl);
    return config;
  }

  metrics(s: Statement): MetricsConfig | undefined {
    const text = s.words[1]?.text ?? "127.0.0.1:9153";
    // Port 0 (any free port) is allowed here, for tests; upstreams need a real one.
    const where = parseUpstream((text.startsWith(":") ? `127.0.0.1${text}` : text).replace(/:0$/, ":65535"));
    if (where && /:0$/.test(text)) where.port = 0;
    if (!where || s.words.length > 2) {
      this.fail(s.line, `prometheus "${text}" is not ADDRESS:PORT`, "write prometheus 127.0.0.1:9153");
      return undefined;
    }
    if (!isLoopback(where.address)) {
      this.fail(
        s.line,
        `prometheus address ${where.address} is not a loopback address`,
        "metrics are served on loopback only: use 127.0.0.1 or ::1",
      );
      return undefined;
    }
    return { address: where.address, port: where.port, line: s.line };
  }

  /** CoreDNS's `tls CERT KEY [CA] { client_auth MODE }` inside a tls:// block. */
  serverTls(d: Statement): ServerTlsConfig | undefined {
    const args = d.words.slice(1);
    if (args.length < 2 || args.length > 3) {
      this.fail(
        d.line,
        `tls needs a certificate and a key, and takes an optional CA (${args.length} file${args.length === 1 ? "" : "s"} given)`,
        "write tls CERT KEY [CA], e.g. tls dns.pem dns-key.pem ca.pem",
      );
      return undefined;
    }
    const config: ServerTlsConfig = {
      cert: (args[0] as Token).text,
      key: (args[1] as Token).text,
      clientAuth: "nocert",
      line: d.line,
    };
    if (args[2]) config.ca = args[2].text;
    for (const sub of d.block ?? []) {
      const [name, ...rest] = sub.words;
      if (name?.text !== "client_auth") {
        this.unknown(sub, "tls option", ["client_auth"]);
        continue;
      }
      const mode = rest[0]?.text as ClientAuth | undefined;
      if (rest.length !== 1 || !mode || !CLIENT_AUTH_MODES.includes(mode))
        this.fail(
          sub.line,
          `client_auth "${rest.map((a) => a.text).join(" ")}" is not a client_auth mode`,
          `write client_auth ${CLIENT_AUTH_MODES.join(", ")} (require_and_verify: clients need a certificate signed by CA)`,
        );
      else config.clientAuth = mode;
    }
    return config;
  }

  serverBlock(s: Statement): ServerBlockConfig | undefined {
    const zones: string[] = [];
    let port: number | undefined;
    let transport: Transport | undefined;
    for (const key of s.words) {
      const m = /^(?:(dns|tls):\/\/)?([^:]*)(?::(\d+))?$/.exec(key.text);
      const zone = m ? normalizeZone(m[2] as string) : undefined;
      const keyTransport: Transport = m?.[1] === "tls" ? "tls" : "dns";
      const keyPort =
        m?.[3] !== undefined ? Number(m[3]) : keyTransport === "tls" ? DEFAULT_TLS_PORT : DEFAULT_PORT;
      if (!m || zone === undefined || keyPort > 65535) {
        this.fail(
          key.line,
          `"${key.text}" is not a server block key`,
          /^[a-z]+:\/\//i.test(key.text) && !m
            ? "podnet serves dns:// (UDP, TCP) and tls:// (DNS over TLS): write dns://ZONE[:PORT] or tls://ZONE[:PORT]"
            : "write [dns://|tls://]ZONE[:PORT], e.g. cluster.local:53, .:1053 or tls://.:853",
        );
        continue;
      }
      if (transport !== undefined && keyTransport !== transport)
        this.fail(
          key.line,
          "server block keys mix tls:// and plain DNS",
          "write one block per transport: tls://ZONE:PORT keys in one, ZONE:PORT keys in another",
        );
      transport ??= keyTransport;
      if (port !== undefined && keyPort !== port)
        this.fail(
          key.line,
          `server block keys have different ports (${port} and ${keyPort})`,
          "write one block per port",
        );
      port ??= keyPort;
      zones.push(zone);
    }
    if (!s.block) {
      this.fail(
        s.line,
        `"${s.words.map((w) => w.text).join(" ")}" is outside any server block`,
        "put directives inside ZONE[:PORT] { ... }",
      );
      return undefined;
    }
    const block: ServerBlockConfig = {
      zones,
      port: port ?? DEFAULT_PORT,
      transport: transport ?? "dns",
      bind: [],
      hosts: [],
      forwards: [],
      line: s.line,
    };
    const known = ["bind", "tls", "kubernetes", "hosts", "forward", "cache", "prometheus", "errors", "log"];
    for (const d of s.block) {
      const name = d.words[0]?.text ?? "";
      if (
        name !== "kubernetes" &&
        name !== "hosts" &&
        name !== "forward" &&
        name !== "cache" &&
        name !== "tls"
      )
        this.noBlock(d, name);
      const once = (present: unknown) => {
        if (present) this.fail(d.line, `${name} is given twice in this server block`, "keep one");
      };
      switch (name) {
        case "bind":
          if (d.words.length < 2)
            this.fail(d.line, "bind needs at least one address", "write bind 127.0.0.1");
          for (const a of d.words.slice(1)) {
            if (isIP(a.text) === 0)
              this.fail(
                a.line,
                `bind "${a.text}" is not an IP address`,
                "write bind 127.0.0.1 (interface names are not supported)",
              );
            else block.bind.push(a.text);
          }
          break;
        case "tls": {
          once(block.tls);
          if (block.transport !== "tls") {
            this.fail(
              d.line,
              "tls in a server block that serves plain DNS",
              `write the block's key as tls://ZONE[:PORT] (port ${DEFAULT_TLS_PORT} by default) to serve DNS over TLS with this certificate`,
            );
            break;
          }
          const tls = this.serverTls(d);
          if (tls) block.tls = tls;
          break;
        }
        case "kubernetes":
          once(block.clusterZone);
          block.clusterZone = this.clusterZone(d, zones);
          break;
        case "hosts":
          block.hosts.push(this.hosts(d, zones));
          break;
        case "forward": {
          const forward = this.forward(d);
          if (forward) {
            const same = block.forwards.find((f) => f.from === forward.from);
            if (same)
              this.fail(
                d.line,
                `zone ${forward.from} is already forwarded at line ${same.line}`,
                "merge the upstreams into one forward line",
              );
            else block.forwards.push(forward);
          }
          break;
        }
        case "cache":
          once(block.cache);
          block.cache = this.cache(d);
          break;
        case "prometheus": {
          once(block.metrics);
          const metrics = this.metrics(d);
          if (metrics) block.metrics = metrics;
          break;
        }
        case "errors":
        case "log":
          break; // Accepted for Corefile compatibility: podnet logs errors anyway and does not log queries.
        default:
          this.unknown(d, "directive", known);
      }
    }
    if (block.transport === "tls" && !block.tls && !s.block.some((d) => d.words[0]?.text === "tls"))
      this.fail(
        s.line,
        `server block ${s.words.map((w) => w.text).join(" ")} serves DNS over TLS but has no certificate`,
        "add `tls CERT KEY [CA]` inside it (podnet dns certs writes them), or write the key without tls://",
      );
    return block;
  }
}

/** Parses configuration text; `file` names it in diagnostics. */
export function parseDnsConfig(
  text: string,
  file: string,
): { config: DnsServerConfig; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const statements = parseStatements(tokenize(text, file, diagnostics), file, diagnostics);
  const parser = new BlockParser(file, diagnostics);
  const servers: ServerBlockConfig[] = [];
  for (const s of statements) {
    const block = parser.serverBlock(s);
    if (block) servers.push(block);
  }
  if (!servers.length && !diagnostics.length)
    diagnostics.push(error(file, 1, "no server block", "add one, e.g. `.:53 { forward . 10.0.0.10 }`"));
  // One address and port speak one transport (a TLS listener cannot also take plain DNS over TCP).
  const transports = new Map<string, ServerBlockConfig>();
  for (const block of servers) {
    for (const address of block.bind.length ? block.bind : ["default"]) {
      const key = `${block.port}|${address}`;
      const other = transports.get(key);
      if (!other) transports.set(key, block);
      else if (other.transport !== block.transport && block.port !== 0)
        diagnostics.push(
          error(
            file,
            block.line,
            `port ${block.port}${address === "default" ? "" : ` on ${address}`} serves ${block.transport === "tls" ? "DNS over TLS" : "plain DNS"} here and ${other.transport === "tls" ? "DNS over TLS" : "plain DNS"} in the block at line ${other.line}`,
            `give them different ports (DNS over TLS is on ${DEFAULT_TLS_PORT}, plain DNS on ${DEFAULT_PORT})`,
          ),
        );
    }
  }
  // One (zone, port, address) has one owner.
  const owners = new Map<string, ServerBlockConfig>();
  for (const block of servers) {
    for (const zone of block.zones) {
      for (const address of block.bind.length ? block.bind : ["default"]) {
        // Port 0 (any free port) gives each transport its own listener.
        const key = `${zone}|${block.port}|${address}${block.port === 0 ? `|${block.transport}` : ""}`;
        const owner = owners.get(key);
        if (owner && owner !== block)
          diagnostics.push(
            error(
              file,
              block.line,
              `zone ${zone} on port ${block.port} is already served by the block at line ${owner.line}`,
              "merge the two blocks or give one another port or bind address",
            ),
          );
        else owners.set(key, block);
      }
    }
  }
  return { config: { file, servers }, diagnostics };
}

/** Reads and parses a configuration file; throws InvalidInputError listing every problem. */
export function loadDnsConfig(path: string): DnsServerConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new InvalidInputError([
      {
        severity: "error",
        code: "dns-config",
        message: `cannot read the DNS configuration: ${(e as Error).message}`,
        hint: "pass an existing file to --config",
        source: { file: path, line: 1 },
      },
    ]);
  }
  const { config, diagnostics } = parseDnsConfig(text, path);
  if (diagnostics.some((d) => d.severity === "error")) throw new InvalidInputError(diagnostics);
  return config;
}
