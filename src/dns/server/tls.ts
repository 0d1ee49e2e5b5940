/**
 * DNS over TLS (RFC 7858): the certificates of `tls://` server blocks and of `forward` to tls://
 * upstreams, loaded with file:line errors; the client side's connection to one upstream (one TLS
 * connection kept open, queries pipelined over it, reconnected when it closes); and the words for
 * handshake failures, so that log lines say what was rejected and why.
 *
 * The framing inside TLS is DNS over TCP's (a 2-byte length before each message): the server's TCP
 * path serves TLS connections unchanged (server.ts), and this client frames as exchangeTcp does.
 */
import { randomInt, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Socket } from "node:net";
import { createSecureContext, type TLSSocket, type TlsOptions, connect as tlsConnect } from "node:tls";
import { InvalidInputError } from "../../api/diagnostics.js";
import { type ClientAuth, type ForwardTlsConfig, resolveConfigPath, type ServerTlsConfig } from "./config.js";
import type { SocketFactory } from "./sockets.js";
import { FLAG_QR, HEADER_SIZE, questionText } from "./wire.js";

/** The ALPN protocol id of DNS over TLS (IANA, RFC 7858). */
export const DOT_ALPN = "dot";
/** A client connection with nothing in flight is closed after this long (the server's idle limit is 10 s). */
export const CLIENT_IDLE_MS = 8000;

function configError(file: string, line: number, message: string, hint: string): InvalidInputError {
  return new InvalidInputError([
    { severity: "error", code: "dns-config", message, hint, source: { file, line } },
  ]);
}

/** A PEM file named in the configuration, read now; a problem is an error at the directive's line. */
function readPem(configFile: string, line: number, path: string, what: string): Buffer {
  const full = resolveConfigPath(configFile, path);
  let pem: Buffer;
  try {
    pem = readFileSync(full);
  } catch (e) {
    throw configError(
      configFile,
      line,
      `cannot read the ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      "give an existing PEM file (relative paths start at the configuration file's directory); `podnet dns certs` writes them",
    );
  }
  if (!pem.toString("latin1").includes("-----BEGIN "))
    throw configError(
      configFile,
      line,
      `the ${what} ${path} is not PEM`,
      "give a PEM file (text starting with -----BEGIN ...)",
    );
  if (what !== "private key")
    try {
      new X509Certificate(pem);
    } catch (e) {
      throw configError(
        configFile,
        line,
        `the ${what} ${path} holds no readable certificate: ${(e as Error).message}`,
        "give a PEM certificate",
      );
    }
  return pem;
}

/** Checks that cert and key belong together (OpenSSL says "key values mismatch" otherwise). */
function checkPair(configFile: string, line: number, options: TlsOptions, certPath: string, keyPath: string) {
  try {
    createSecureContext(options);
  } catch (e) {
    const message = (e as Error).message;
    throw configError(
      configFile,
      line,
      /mismatch/i.test(message)
        ? `the key ${keyPath} is not the key of the certificate ${certPath}`
        : `the certificate ${certPath} or the key ${keyPath} cannot be used: ${message}`,
      "give the certificate with its own key (NAME.pem with NAME-key.pem)",
    );
  }
}

/** What a DoT listener needs: node:tls server options and how to judge client certificates afterwards. */
export interface ServerTls {
  options: TlsOptions;
  clientAuth: ClientAuth;
  /** The CA as written in the configuration, for log lines. */
  caLabel: string;
}

/**
 * Options for tls.createServer from a `tls CERT KEY [CA] { client_auth MODE }` directive (Go's
 * ClientAuthType semantics). A client certificate is requested for every mode but nocert, and judged
 * once the handshake completes (serverTlsCheck), before a byte of the connection is read: OpenSSL has
 * no require/verify_if_given modes, and Node's own rejectUnauthorized drops a bad client certificate
 * without telling the server why (the log line could only say "socket hang up").
 */
export function loadServerTls(config: ServerTlsConfig, configFile: string): ServerTls {
  const cert = readPem(configFile, config.line, config.cert, "certificate");
  const key = readPem(configFile, config.line, config.key, "private key");
  const ca = config.ca ? readPem(configFile, config.line, config.ca, "CA certificate") : undefined;
  const options: TlsOptions = {
    cert,
    key,
    minVersion: "TLSv1.2",
    ALPNProtocols: [DOT_ALPN],
    requestCert: config.clientAuth !== "nocert",
    rejectUnauthorized: false,
  };
  if (ca) options.ca = ca;
  checkPair(configFile, config.line, options, config.cert, config.key);
  return { options, clientAuth: config.clientAuth, caLabel: config.ca ?? "the system CAs" };
}

/**
 * After a handshake: undefined when the client may go on, else why not. require: some certificate;
 * verify_if_given: a given certificate must verify against the CA; require_and_verify: both.
 */
export function serverTlsCheck(socket: TLSSocket, tls: ServerTls): string | undefined {
  const mode = tls.clientAuth;
  if (mode === "nocert" || mode === "request") return undefined;
  const given = Object.keys(socket.getPeerCertificate() ?? {}).length > 0;
  if (!given) return mode === "verify_if_given" ? undefined : "client certificate required";
  if (mode !== "require" && !socket.authorized)
    return `client certificate rejected: ${verifyText(socket.authorizationError)} (CA ${tls.caLabel})`;
  return undefined;
}

/** OpenSSL's verify codes in words, as Node's client-side errors give them. */
function verifyText(error: unknown): string {
  const code =
    error instanceof Error ? ((error as Error & { code?: string }).code ?? error.message) : String(error);
  const words: Record<string, string> = {
    UNABLE_TO_VERIFY_LEAF_SIGNATURE: "unable to verify the first certificate",
    UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "unable to get local issuer certificate",
    SELF_SIGNED_CERT_IN_CHAIN: "self-signed certificate in certificate chain",
    DEPTH_ZERO_SELF_SIGNED_CERT: "self-signed certificate",
    CERT_HAS_EXPIRED: "certificate has expired",
    CERT_NOT_YET_VALID: "certificate is not yet valid",
    INVALID_PURPOSE: "unsupported certificate purpose (not issued for client use)",
  };
  return words[code] ?? code;
}

/** A failed server-side handshake in words. */
export function serverHandshakeReason(error: Error & { code?: string }, tls: ServerTls): string {
  const code = error.code ?? "";
  if (
    code === "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE" ||
    /did not return a certificate/i.test(error.message)
  )
    return "client certificate required";
  if (/CERTIFICATE_VERIFY_FAILED|certificate verify failed/i.test(`${code} ${error.message}`))
    return `client certificate rejected: certificate verify failed (CA ${tls.caLabel})`;
  if (code === "ECONNRESET" || /socket disconnected|ECONNRESET/i.test(error.message))
    return "the client closed the connection during the handshake (does it trust this server's certificate and name?)";
  if (code === "ERR_SSL_WRONG_VERSION_NUMBER" || /wrong version number|http request/i.test(error.message))
    return "not TLS (plain DNS sent to a DNS-over-TLS port?)";
  return opensslText(error);
}

/** OpenSSL's reason without its "error:0A000086:SSL routines::" prefix. */
function opensslText(error: Error): string {
  return /SSL routines:[^:]*:([^:]+)/.exec(error.message)?.[1]?.trim() || error.message;
}

/** What a forwarder needs to connect to tls:// upstreams. */
export interface ClientTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** The name the upstream's certificate must hold (and SNI); without it, its IP address. */
  serverName?: string;
  /** The CA as written in the configuration, for log lines. */
  caLabel: string;
}

/** The files of a forward's `tls [CERT KEY] [CA]` and its `tls_servername`, read now. */
export function loadClientTls(config: ForwardTlsConfig, configFile: string): ClientTls {
  const tls: ClientTls = { caLabel: config.ca ?? "the system CAs" };
  if (config.ca) tls.ca = readPem(configFile, config.line, config.ca, "CA certificate");
  if (config.cert && config.key) {
    tls.cert = readPem(configFile, config.line, config.cert, "certificate");
    tls.key = readPem(configFile, config.line, config.key, "private key");
    checkPair(configFile, config.line, { cert: tls.cert, key: tls.key }, config.cert, config.key);
  }
  if (config.serverName) tls.serverName = config.serverName;
  return tls;
}

/** Node's codes for a server certificate that does not verify (chain, dates, name). */
const CERTIFICATE_CODES = new Set([
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "INVALID_CA",
  "INVALID_PURPOSE",
  "PATH_LENGTH_EXCEEDED",
]);

/** A failure of a tls:// upstream, with the reason a log line gives (each distinct one logged once). */
export class TlsUpstreamError extends Error {
  constructor(
    message: string,
    readonly code: string,
    /** Set when the TLS layer (not the network) failed: what the log line says. */
    readonly tlsReason?: string,
  ) {
    super(message);
  }
}

/** A client-side TLS failure in words, with what was expected (name, CA). */
export function clientTlsReason(error: Error & { code?: string }, tls: ClientTls, address: string): string {
  const code = error.code ?? "";
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID")
    return `certificate rejected: ${error.message} (${tls.serverName ? `tls_servername ${tls.serverName}` : `no tls_servername: verified against the address ${address}`})`;
  if (CERTIFICATE_CODES.has(code)) return `certificate rejected: ${error.message} (CA ${tls.caLabel})`;
  const text = opensslText(error);
  if (/alert certificate required/i.test(error.message))
    return `the upstream requires a client certificate (${text}): give one with tls CERT KEY CA`;
  if (/alert (unknown ca|bad certificate|certificate unknown|decrypt error)/i.test(error.message))
    return `the upstream rejected the client certificate (${text})`;
  if (/no application protocol/i.test(error.message))
    return `the upstream does not speak DNS over TLS (ALPN "${DOT_ALPN}" refused)`;
  if (/wrong version number|packet length too long|unexpected eof/i.test(error.message))
    return `the upstream does not speak TLS on this port (${text})`;
  return text;
}

function isTlsLayerError(error: Error & { code?: string }): boolean {
  const code = error.code ?? "";
  return (
    CERTIFICATE_CODES.has(code) || code.startsWith("ERR_SSL") || /SSL routines|alert/i.test(error.message)
  );
}

/** A query sent upstream, waiting for its answer (UDP/TCP pools and TLS connections alike). */
export interface Pending {
  question: string;
  resolve: (response: Buffer) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** One open TLS connection and the queries in flight on it. */
interface Connection {
  socket: TLSSocket;
  pending: Map<number, Pending>;
  /** Answers received on it: a connection that has answered may since have been closed as idle. */
  answered: number;
}

/**
 * The client of one tls:// upstream: one TLS connection, opened on first use and kept; queries are
 * pipelined on it with their own ids (RFC 7766 §6.2.1.1) and matched by id and question. When it
 * closes (idle, server restart), the next query opens a new one; a query lost because the server had
 * just closed an idle connection is sent once more on a new one. No answer is read from a connection
 * whose certificate did not verify: the handshake fails and nothing is sent.
 */
export class DotClient {
  /** The connection new queries go to (being opened, or open). */
  private connection: Promise<Connection> | undefined;
  private readonly open = new Set<Connection>();
  private closed = false;

  constructor(
    readonly address: string,
    readonly port: number,
    /** tls://ADDRESS:PORT, for messages. */
    readonly name: string,
    private readonly tls: ClientTls,
    private readonly sockets: SocketFactory,
    /** Called for each completed handshake (a new connection). */
    private readonly onConnect: () => void = () => {},
  ) {}

  private connect(timeoutMs: number): Promise<Connection> {
    // Assigned before the first await inside resolves; the reader compares against it.
    let connecting: Promise<Connection> | undefined;
    connecting = (async (): Promise<Connection> => {
      const raw: Socket = await this.sockets.tcpConnect(this.address, this.port, timeoutMs);
      const socket = tlsConnect({
        socket: raw,
        // Verified against tls_servername (also sent as SNI), else against the address (IP SANs).
        ...(this.tls.serverName ? { servername: this.tls.serverName } : { host: this.address }),
        ...(this.tls.ca ? { ca: this.tls.ca } : {}),
        ...(this.tls.cert && this.tls.key ? { cert: this.tls.cert, key: this.tls.key } : {}),
        ALPNProtocols: [DOT_ALPN],
        minVersion: "TLSv1.2",
        rejectUnauthorized: true,
      });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          socket.destroy();
          reject(new TlsUpstreamError(`${this.name}: no TLS handshake within ${timeoutMs} ms`, "ETIMEDOUT"));
        }, timeoutMs);
        socket.once("secureConnect", () => {
          clearTimeout(timer);
          resolve();
        });
        socket.once("error", (e: Error & { code?: string }) => {
          clearTimeout(timer);
          socket.destroy();
          reject(this.failure(e));
        });
      });
      // Belt and braces: rejectUnauthorized already failed the handshake of an unverified peer.
      if (!socket.authorized) {
        socket.destroy();
        const reason = `certificate rejected: ${String(socket.authorizationError)} (CA ${this.tls.caLabel})`;
        throw new TlsUpstreamError(`${this.name}: ${reason}`, "ECERT", reason);
      }
      if (this.closed) {
        socket.destroy();
        throw new TlsUpstreamError(`${this.name}: forwarder closed`, "ECANCELED");
      }
      this.onConnect();
      const connection: Connection = { socket, pending: new Map(), answered: 0 };
      this.open.add(connection);
      this.read(connection, connecting as Promise<Connection>);
      return connection;
    })();
    this.connection = connecting;
    connecting.catch(() => {
      if (this.connection === connecting) this.connection = undefined;
    });
    return connecting;
  }

  private failure(e: Error & { code?: string }): TlsUpstreamError {
    if (e instanceof TlsUpstreamError) return e;
    if (!isTlsLayerError(e)) return new TlsUpstreamError(`${this.name}: ${e.message}`, e.code ?? "EIO");
    const reason = clientTlsReason(e, this.tls, this.address);
    return new TlsUpstreamError(`${this.name}: ${reason}`, e.code ?? "ETLS", reason);
  }

  /** Reads answers off the connection; when it ends, what is in flight on it fails. */
  private read(connection: Connection, promise: Promise<Connection>): void {
    const { socket, pending } = connection;
    let buffered: Buffer = Buffer.alloc(0);
    let lastError: TlsUpstreamError | undefined;
    const retire = () => {
      if (this.connection === promise) this.connection = undefined;
    };
    socket.setTimeout(CLIENT_IDLE_MS, () => {
      if (pending.size > 0) return;
      retire(); // new queries open a new connection from now on
      socket.end();
    });
    socket.on("data", (chunk: Buffer) => {
      buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
      while (buffered.length >= 2) {
        const length = buffered.readUInt16BE(0);
        if (buffered.length < 2 + length) break;
        const msg = Buffer.from(buffered.subarray(2, 2 + length));
        buffered = buffered.subarray(2 + length);
        if (msg.length < HEADER_SIZE || !(msg.readUInt16BE(2) & FLAG_QR)) continue;
        const id = msg.readUInt16BE(0);
        const waiting = pending.get(id);
        // An answer to another question with the same id is not ours.
        if (!waiting || questionText(msg) !== waiting.question) continue;
        pending.delete(id);
        clearTimeout(waiting.timer);
        connection.answered++;
        waiting.resolve(msg);
      }
    });
    socket.on("error", (e: Error & { code?: string }) => {
      lastError = this.failure(e);
    });
    socket.on("close", () => {
      retire();
      this.open.delete(connection);
      let error = lastError;
      if (!error && connection.answered > 0)
        error = new TlsUpstreamError(`${this.name}: connection closed by the upstream`, "ECONNRESET_IDLE");
      else if (!error) {
        // Closed after the handshake before any answer: a server judging client certificates after
        // the handshake (client_auth require, verify_if_given) does exactly this.
        const reason = this.tls.cert
          ? "the upstream closed the connection before answering (does it accept this client certificate?)"
          : "the upstream closed the connection before answering (does it require a client certificate? give one with tls CERT KEY CA)";
        error = new TlsUpstreamError(`${this.name}: ${reason}`, "ECONNRESET", reason);
      }
      failAll(pending, error);
    });
  }

  /** One query (any id; the answer carries the same), within timeoutMs including a new handshake. */
  async exchange(query: Buffer, timeoutMs: number): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    try {
      return await this.exchangeOnce(query, timeoutMs);
    } catch (e) {
      // The server closed a connection that had served queries (its idle limit) as this one was sent:
      // once more on a new connection.
      const remaining = deadline - Date.now();
      if ((e as TlsUpstreamError).code !== "ECONNRESET_IDLE" || remaining <= 0 || this.closed) throw e;
      return this.exchangeOnce(query, remaining);
    }
  }

  private async exchangeOnce(query: Buffer, timeoutMs: number): Promise<Buffer> {
    if (this.closed) throw new TlsUpstreamError(`${this.name}: forwarder closed`, "ECANCELED");
    const started = Date.now();
    const question = questionText(query);
    if (question === undefined) throw new TlsUpstreamError("not a single-question query", "EINVAL");
    const connection = await (this.connection ?? this.connect(timeoutMs));
    const { pending, socket } = connection;
    if (pending.size > 60_000)
      throw new TlsUpstreamError(`${this.name}: too many queries in flight`, "EBUSY");
    let id = randomInt(0, 65536);
    while (pending.has(id)) id = randomInt(0, 65536);
    const remaining = Math.max(1, timeoutMs - (Date.now() - started));
    const answer = new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new TlsUpstreamError(`${this.name}: no answer within ${timeoutMs} ms`, "ETIMEDOUT"));
      }, remaining);
      pending.set(id, { question, resolve, reject, timer });
    });
    const frame = Buffer.allocUnsafe(2 + query.length);
    frame.writeUInt16BE(query.length, 0);
    query.copy(frame, 2);
    frame.writeUInt16BE(id, 2);
    socket.write(frame);
    const response = await answer;
    response.writeUInt16BE(query.readUInt16BE(0), 0);
    return response;
  }

  close(): void {
    this.closed = true;
    const error = new TlsUpstreamError(`${this.name}: forwarder closed`, "ECANCELED");
    for (const connection of this.open) {
      failAll(connection.pending, error);
      connection.socket.destroy();
    }
    this.open.clear();
    this.connection = undefined;
  }
}

function failAll(pending: Map<number, Pending>, error: Error): void {
  for (const [id, waiting] of pending) {
    pending.delete(id);
    clearTimeout(waiting.timer);
    waiting.reject(error);
  }
}
