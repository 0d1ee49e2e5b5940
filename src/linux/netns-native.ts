/**
 * Sockets and child processes inside network namespaces, from one long-running Node process.
 *
 * Node cannot call setns(2), and `ip netns exec` costs a process per use; the lab agent holds sockets in
 * hundreds of namespaces (a responder per pod port, the CNI server per node) and the CLI probes from a
 * pod's namespace. The addon native/netns.c (built to dist/native/netns.node by scripts/build-native.sh)
 * enters a namespace on the main thread, creates the socket there and returns: a socket stays in the
 * namespace it was created in for its whole life, so Node then adopts the file descriptor and uses it
 * like any other.
 *
 * Only what runs synchronously between entering and leaving is in the namespace: socket creation,
 * child_process.spawn (it forks on the calling thread, so the child inherits the namespace) and
 * /proc/sys/net writes with fs.writeFileSync. Anything asynchronous (DNS lookups, Node's own deferred
 * connect) runs later in the original namespace, which is why connectTcp creates its socket natively.
 */
import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { closeSync, openSync, writeSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer, isIP, type Server, Socket, type SocketConstructorOpts } from "node:net";
import { constants as osConstants } from "node:os";
import { fileURLToPath } from "node:url";

export type IpFamily = 4 | 6;

/** What native/netns.c exports. */
interface NetnsAddon {
  setns(fd: number): void;
  openSocket(
    netnsFd: number,
    family: IpFamily | 0,
    type: "tcp" | "udp" | "unix",
    port: number,
    address: string,
    listen: boolean,
  ): number;
  spawnSync(
    argv: string[],
    envp: string[],
    stdin: string,
    timeoutMs: number,
  ): { status: number | null; signal: number | null; timedOut: boolean; stdout: string; stderr: string };
}

/** A failed step inside a namespace; `code` is the errno name (EADDRINUSE, ENOENT, ...) when there is one. */
export class NetnsError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = "NetnsError";
  }
}

// dist/src/linux/netns-native.js -> dist/native/netns.node
const ADDON_PATH = fileURLToPath(new URL("../../native/netns.node", import.meta.url));

let addon: NetnsAddon | undefined;
/** The namespace this process started in (main thread), opened once: where every withNetns returns. */
let originalNetnsFd = -1;
/** The namespace fd the main thread is in inside withNetns (nested calls return to the outer one). */
let enteredNetnsFd: number | undefined;

// Loaded on first use, so that modules importing this one (and their unit tests) work without the build.
function loadAddon(): NetnsAddon {
  if (addon) return addon;
  try {
    addon = createRequire(import.meta.url)(ADDON_PATH) as NetnsAddon;
  } catch (e) {
    throw new NetnsError(
      `podnet's netns addon is missing or broken (${ADDON_PATH}): run npm run build (needs gcc and Node's headers). ${(e as Error).message}`,
      "ENOADDON",
    );
  }
  originalNetnsFd = openSync("/proc/thread-self/ns/net", "r");
  return addon;
}

function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown }).code;
  return typeof code === "string" ? code : undefined;
}

function openNetns(netnsPath: string): number {
  try {
    return openSync(netnsPath, "r");
  } catch (e) {
    throw new NetnsError(`open netns ${netnsPath}: ${(e as Error).message}`, errorCode(e));
  }
}

/**
 * Runs `fn` with the main thread in the network namespace at `netnsPath` and returns its result; always
 * returns to the namespace it was called in, also when fn throws. fn must be synchronous.
 */
export function withNetns<T>(netnsPath: string, fn: () => T): T {
  const native = loadAddon();
  const target = openNetns(netnsPath);
  const previous = enteredNetnsFd;
  try {
    try {
      native.setns(target);
    } catch (e) {
      throw new NetnsError(`enter netns ${netnsPath}: ${(e as Error).message}`, errorCode(e));
    }
    enteredNetnsFd = target;
    let result: T;
    try {
      result = fn();
    } finally {
      try {
        native.setns(previous ?? originalNetnsFd);
      } catch (e) {
        // Staying here would move everything this process does next into the pod: not recoverable.
        writeSync(2, `podnet: could not leave netns ${netnsPath}: ${(e as Error).message}\n`);
        process.abort();
      }
      enteredNetnsFd = previous;
    }
    if (result instanceof Promise)
      throw new TypeError("withNetns: fn must be synchronous (its asynchronous part ran outside the netns)");
    return result;
  } finally {
    closeSync(target);
  }
}

/** child_process.spawn with the child in the network namespace at `netnsPath` (no `ip netns exec`). */
export function spawnInNetns(
  netnsPath: string,
  command: string,
  args: readonly string[] = [],
  options: SpawnOptions = {},
): ChildProcess {
  return withNetns(netnsPath, () => spawn(command, args, options));
}

/**
 * The primitive: a non-blocking, close-on-exec socket created in the namespace at `netnsPath`. port -1
 * leaves an inet socket unbound; a unix socket is always bound to the abstract `address` (no "@").
 * `listen` binds and listens in one step (backlog 4096), so a taken port fails here.
 */
export function openNetnsSocket(
  netnsPath: string,
  family: IpFamily | 0,
  type: "tcp" | "udp" | "unix",
  port: number,
  address: string,
  listen: boolean,
): number {
  const native = loadAddon();
  const netnsFd = openNetns(netnsPath);
  try {
    return native.openSocket(netnsFd, family, type, port, address, listen);
  } catch (e) {
    throw new NetnsError(`${(e as Error).message} (${netnsPath})`, errorCode(e));
  } finally {
    closeSync(netnsFd);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Already adopted and closed by Node.
  }
}

/** Makes `server` listen on an already listening socket; closes the fd when Node cannot adopt it. */
function listenOnFd(server: Server, fd: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => {
      closeQuietly(fd);
      reject(e);
    };
    server.once("error", onError);
    // backlog again: Node calls listen(2) once more on the fd, with 511 unless told.
    server.listen({ fd, backlog: 4096 }, () => {
      server.off("error", onError);
      resolve(server);
    });
  });
}

/**
 * A TCP server listening on `port` (0 = any free port) of all addresses of `family` in the namespace.
 * Pass `server` to listen one created with your own options and handlers.
 */
export async function listenTcp(
  netnsPath: string,
  port: number,
  family: IpFamily = 4,
  server: Server = createServer(),
): Promise<Server> {
  return listenOnFd(server, openNetnsSocket(netnsPath, family, "tcp", port, "", true));
}

/**
 * A TCP server on the abstract unix socket `@name` of the namespace (abstract names are per network
 * namespace): e.g. a node's CNI server, `listenUnixAbstract(node, "podnet-cni", createServer(...))`.
 * Bound with the full-length address, as Node's own listen("\0name") and socat's unix-tightsocklen=0.
 */
export async function listenUnixAbstract(
  netnsPath: string,
  name: string,
  server: Server = createServer(),
): Promise<Server> {
  return listenOnFd(server, openNetnsSocket(netnsPath, 0, "unix", -1, name, true));
}

/** A UDP socket bound to `port` (0 = any free port) of all addresses of `family` in the namespace. */
export async function bindUdp(netnsPath: string, port: number, family: IpFamily = 4): Promise<UdpSocket> {
  const fd = openNetnsSocket(netnsPath, family, "udp", port, "", false);
  const socket = createSocket(family === 6 ? "udp6" : "udp4");
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => {
      closeQuietly(fd);
      reject(e);
    };
    socket.once("error", onError);
    try {
      socket.bind({ fd }, () => {
        socket.off("error", onError);
        resolve(socket);
      });
    } catch (e) {
      onError(e as Error);
    }
  });
}

/** A UDP socket on a free port in the namespace, for send and receive (probes). */
export async function udpSocket(netnsPath: string, family: IpFamily = 4): Promise<UdpSocket> {
  return bindUdp(netnsPath, 0, family);
}

export interface ConnectOptions {
  /** Give up (destroy the socket, reject with code ETIMEDOUT) after this long. */
  timeoutMs: number;
  /** Source address to bind before connecting (an address of the namespace). */
  localAddress?: string;
}

/**
 * A TCP connection from inside the namespace to `host` (an IP address: a name would be resolved outside
 * the namespace) and `port`. Rejects with the connect error (code ECONNREFUSED, EHOSTUNREACH, ...) or
 * ETIMEDOUT.
 */
export async function connectTcp(
  netnsPath: string,
  host: string,
  port: number,
  options: ConnectOptions,
): Promise<Socket> {
  const family = isIP(host);
  if (family === 0) throw new TypeError(`connectTcp: host must be an IP address, got "${host}"`);
  const local = options.localAddress ?? "";
  const fd = openNetnsSocket(netnsPath, family as IpFamily, "tcp", local ? 0 : -1, local, false);
  let socket: Socket;
  try {
    // manualStart: Node would otherwise start reading the not yet connected socket at once (an
    // unconnected TCP socket polls as hung up, which could end the stream before connect); after
    // connect Node starts reading by itself. Not in @types/node, but in net.Socket since Node 0.x.
    socket = new Socket({ fd, manualStart: true } as SocketConstructorOpts);
  } catch (e) {
    closeQuietly(fd);
    throw e;
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new NetnsError(`connect ${host} port ${port}: no answer within ${options.timeoutMs} ms`, "ETIMEDOUT"),
      );
    }, options.timeoutMs);
    const onError = (e: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(e);
    };
    socket.once("error", onError);
    // The socket already exists (and is bound when localAddress is set): Node's connect uses it as is.
    socket.connect({ host, port }, () => {
      clearTimeout(timer);
      socket.off("error", onError);
      resolve(socket);
    });
  });
}

/** What a command run with `spawnSyncLight` did. */
export interface LightSpawnResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to completion with posix_spawn (vfork-style) in the calling thread's namespace (wrap it
 * in withNetns for another). Node's own spawn forks the whole process: ~3 ms a call at 50 MB of RSS and
 * ~5-7 ms at 100 MB here, which made a node agent serving 1,000 CNI ADDs spend ~10 s forking; this
 * costs the same at any size. Blocks until the command exits: for short commands (ip, nft).
 */
export function spawnSyncLight(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): LightSpawnResult {
  const env = options.env ?? process.env;
  const envp = Object.entries(env)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  const r = loadAddon().spawnSync([command, ...args], envp, options.input ?? "", options.timeoutMs ?? 30_000);
  const signal =
    r.signal === null
      ? null
      : ((Object.entries(osConstants.signals).find(([, n]) => n === r.signal)?.[0] ??
          "SIGKILL") as NodeJS.Signals);
  return { status: r.status, signal, timedOut: r.timedOut, stdout: r.stdout, stderr: r.stderr };
}
