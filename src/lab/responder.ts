/**
 * The built-in workload responder: what a lab pod "runs". Like the Kubernetes e2e suites' serve-hostname,
 * every declared container port of a pod, TCP and UDP, answers with the pod's name and the client
 * address it saw, so a probe shows which pod answered and whether the source address survived (no NAT
 * between pods; SNAT where the model says so).
 *
 * Wire format (one line of text, "\n"-terminated; `<client>` is `IP:port`, `[IPv6]:port` for IPv6,
 * IPv4 clients never shown as ::ffff:a.b.c.d):
 *   TCP  on connect the responder writes `<namespace>/<pod> <client>\n` at once, then echoes every line
 *        it receives as `echo <line>\n` until the client closes (a long-lived connection can be checked
 *        later; a client that sends nothing just reads the first line).
 *   UDP  every datagram is answered with `<namespace>/<pod> <client>\n` (the payload is ignored).
 *
 * One ResponderHost serves every pod of a lab from one process: the sockets are created inside each
 * pod's network namespace (src/linux/netns-native.ts) and held here, so 1000 pods cost sockets, not
 * processes. SCTP ports are skipped (this kernel has no SCTP sockets).
 */
import type { Socket as UdpSocket } from "node:dgram";
import { createServer, type Server, type Socket } from "node:net";
import { bindUdp, type IpFamily, listenTcp } from "../linux/netns-native.js";

export type PortProtocol = "TCP" | "UDP" | "SCTP";

export interface ResponderPod {
  /** Identifies the pod in this host (e.g. its UID or namespace/name). */
  key: string;
  namespace: string;
  name: string;
  /** The pod's network namespace, e.g. /run/netns/<name>. */
  netnsPath: string;
  /** Declared container ports; duplicates are served once. */
  ports: { port: number; protocol: PortProtocol }[];
  /** Address families to listen on; default [4]. */
  families?: IpFamily[];
}

/** One open socket of a pod. */
export interface ResponderEndpoint {
  family: IpFamily;
  protocol: "TCP" | "UDP";
  port: number;
}

export interface ResponderOpenResult {
  /** Everything open for the pod after the call (also what was already open). */
  listening: ResponderEndpoint[];
  /** Ports not served, each as `<protocol>/<port>[ IPv6]: <why>` (SCTP, port taken, ...). */
  skipped: string[];
}

export interface ResponderHostOptions {
  /** Errors on open sockets (a failed accept, ...); the socket stays open. Default: ignored. */
  log?: (line: string) => void;
}

/** The first line of every answer: `<namespace>/<pod> <client>`. */
export function responderGreeting(
  identity: string,
  address: string | undefined,
  port: number | undefined,
): string {
  return `${identity} ${formatClient(address ?? "?", port ?? 0)}\n`;
}

/** `IP:port`, `[IPv6]:port`; IPv4-mapped IPv6 addresses shown as IPv4. */
export function formatClient(address: string, port: number): string {
  const ip = address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** Longest line echoed; longer input is echoed in pieces (keeps a connection's buffer small). */
const MAX_LINE = 4096;

interface OpenSocket {
  endpoint: ResponderEndpoint;
  /** Stops accepting; open connections get up to `graceMs` to end by themselves, then are destroyed. */
  close(graceMs?: number): Promise<void>;
}

interface PodState {
  netnsPath: string;
  identity: string;
  /** By endpointKey. */
  sockets: Map<string, OpenSocket>;
}

function endpointKey(e: ResponderEndpoint): string {
  return `${e.family}/${e.protocol}/${e.port}`;
}

/** `TCP/8080`, `UDP/53 IPv6`. */
function describeEndpoint(e: ResponderEndpoint): string {
  return `${e.protocol}/${e.port}${e.family === 6 ? " IPv6" : ""}`;
}

function serveTcpConnection(identity: string, conn: Socket, connections: Set<Socket>): void {
  connections.add(conn);
  conn.on("close", () => connections.delete(conn));
  conn.on("error", () => conn.destroy());
  conn.setNoDelay(true);
  conn.write(responderGreeting(identity, conn.remoteAddress, conn.remotePort));
  conn.setEncoding("utf8");
  let pending = "";
  conn.on("data", (chunk: string) => {
    pending += chunk;
    for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
      conn.write(`echo ${pending.slice(0, nl).replace(/\r$/, "")}\n`);
      pending = pending.slice(nl + 1);
    }
    if (pending.length > MAX_LINE) {
      conn.write(`echo ${pending}\n`);
      pending = "";
    }
  });
}

async function openTcp(
  pod: PodState,
  endpoint: ResponderEndpoint,
  log: (line: string) => void,
): Promise<OpenSocket> {
  const connections = new Set<Socket>();
  const server: Server = createServer((conn) => serveTcpConnection(pod.identity, conn, connections));
  await listenTcp(pod.netnsPath, endpoint.port, endpoint.family, server);
  server.on("error", (e) => log(`${pod.identity} tcp/${endpoint.port}: ${e.message}`));
  return {
    endpoint,
    close: (graceMs = 0) =>
      new Promise<void>((resolve) => {
        // server.close waits for open connections: after the grace period a deleted pod's go with it.
        server.close(() => resolve());
        const end = () => {
          for (const conn of connections) conn.destroy();
        };
        if (graceMs <= 0 || connections.size === 0) end();
        else {
          const timer = setTimeout(end, graceMs);
          server.once("close", () => clearTimeout(timer));
        }
      }),
  };
}

async function openUdp(
  pod: PodState,
  endpoint: ResponderEndpoint,
  log: (line: string) => void,
): Promise<OpenSocket> {
  const socket: UdpSocket = await bindUdp(pod.netnsPath, endpoint.port, endpoint.family);
  socket.on("message", (_payload, from) => {
    socket.send(responderGreeting(pod.identity, from.address, from.port), from.port, from.address, (e) => {
      if (e) log(`${pod.identity} udp/${endpoint.port}: reply to ${from.address}: ${e.message}`);
    });
  });
  socket.on("error", (e) => log(`${pod.identity} udp/${endpoint.port}: ${e.message}`));
  return { endpoint, close: () => new Promise<void>((resolve) => socket.close(() => resolve())) };
}

/** The responders of many pods in one process; open() is idempotent per pod key. */
export class ResponderHost {
  private readonly pods = new Map<string, PodState>();
  /** Calls for one key run one after another (open and close of a pod never interleave). */
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly log: (line: string) => void;

  constructor(options: ResponderHostOptions = {}) {
    this.log = options.log ?? (() => {});
  }

  /**
   * Serves `pod`'s ports: opens what is missing, closes what is no longer declared, and reopens
   * everything when the pod's namespace or name changed. Throws only when the namespace cannot be
   * entered; a port that cannot be opened is returned in `skipped`.
   */
  open(pod: ResponderPod): Promise<ResponderOpenResult> {
    return this.serially(pod.key, () => this.reconcile(pod));
  }

  /**
   * Closes every socket of the pod (its ports are free again when this resolves). With `graceMs`, as a
   * server's graceful shutdown on SIGTERM: no new connections, open ones may finish within that time.
   */
  close(key: string, graceMs = 0): Promise<void> {
    return this.serially(key, async () => {
      const state = this.pods.get(key);
      if (!state) return;
      this.pods.delete(key);
      await Promise.all([...state.sockets.values()].map((s) => s.close(graceMs)));
    });
  }

  keys(): string[] {
    return [...this.pods.keys()];
  }

  /** What is open for the pod, sorted by family, protocol and port. */
  listening(key: string): ResponderEndpoint[] {
    const sockets = this.pods.get(key)?.sockets.values() ?? [];
    return [...sockets]
      .map((s) => s.endpoint)
      .sort((a, b) => a.family - b.family || a.protocol.localeCompare(b.protocol) || a.port - b.port);
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.keys().map((key) => this.close(key)));
  }

  private async reconcile(pod: ResponderPod): Promise<ResponderOpenResult> {
    const identity = `${pod.namespace}/${pod.name}`;
    let state = this.pods.get(pod.key);
    if (state && (state.netnsPath !== pod.netnsPath || state.identity !== identity)) {
      await Promise.all([...state.sockets.values()].map((s) => s.close()));
      state = undefined;
    }
    if (!state) {
      state = { netnsPath: pod.netnsPath, identity, sockets: new Map() };
      this.pods.set(pod.key, state);
    }

    const skipped: string[] = [];
    const wanted = new Map<string, ResponderEndpoint>();
    for (const { port, protocol } of pod.ports) {
      if (protocol === "SCTP") {
        skipped.push(`SCTP/${port}: not served, this kernel has no SCTP sockets`);
        continue;
      }
      for (const family of pod.families ?? [4]) {
        const endpoint = { family, protocol, port };
        wanted.set(endpointKey(endpoint), endpoint);
      }
    }

    const current = state.sockets;
    const gone = [...current].filter(([key]) => !wanted.has(key));
    for (const [key] of gone) current.delete(key);
    await Promise.all(gone.map(([, s]) => s.close()));

    const missing = [...wanted].filter(([key]) => !current.has(key));
    const opened = await Promise.allSettled(
      missing.map(([, endpoint]) =>
        endpoint.protocol === "TCP" ? openTcp(state, endpoint, this.log) : openUdp(state, endpoint, this.log),
      ),
    );
    // No namespace (or no addon): nothing of this pod can be served; say so rather than skip each port.
    const fatal = opened.find(
      (o): o is PromiseRejectedResult =>
        o.status === "rejected" &&
        ["ENOENT", "ENOADDON"].includes((o.reason as { code?: string }).code ?? ""),
    );
    if (fatal) {
      await Promise.all(opened.flatMap((o) => (o.status === "fulfilled" ? [o.value.close()] : [])));
      if (current.size === 0) this.pods.delete(pod.key);
      throw fatal.reason;
    }
    for (const [i, outcome] of opened.entries()) {
      const [key, endpoint] = missing[i] as [string, ResponderEndpoint];
      if (outcome.status === "fulfilled") current.set(key, outcome.value);
      else skipped.push(`${describeEndpoint(endpoint)}: ${(outcome.reason as Error).message}`);
    }
    return { listening: this.listening(pod.key), skipped };
  }

  private serially<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(key) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const settled = next.then(
      () => {},
      () => {},
    );
    this.queues.set(key, settled);
    void settled.then(() => {
      if (this.queues.get(key) === settled) this.queues.delete(key);
    });
    return next;
  }
}
