/**
 * The node's CNI server: the same plugin code as the executables, kept running in a node's network
 * namespace so that a CNI call does not pay for starting Node (~35-55 ms here, 3x the reference plugins'
 * whole ADD). The installed executables try it first and fall back to running the plugin themselves.
 *
 * It listens on an abstract unix socket, which the kernel scopes to the network namespace: a launcher
 * run inside node-1's namespace reaches node-1's server and no other, with no file to leave behind.
 *
 * Protocol (one request per connection; the client half-closes after sending):
 *   request:  `podnet-cni/1 <plugin>\n` + `CNI_KEY=value\n`... + `\n` + the configuration (stdin)
 *   response: `<exit code>\n` + what the plugin prints on stdout
 */
import { createServer, type Server } from "node:net";
import { preferSynchronousExec } from "../linux/exec.js";
import { podnetHandlers } from "./bridge/plugin.js";
import { ipamHandlers } from "./ipam/plugin.js";
import { type PluginHandlers, runPlugin } from "./skel.js";
import { CNI_SERVER_SOCKET } from "./spec.js";

const PROTOCOL = "podnet-cni/1";

export const HANDLERS: Record<string, PluginHandlers> = {
  podnet: podnetHandlers,
  "podnet-ipam": ipamHandlers,
};

/** The request a launcher sends (the inverse of parseRequest): only CNI_* variables cross. */
export function formatRequest(
  plugin: string,
  env: Record<string, string | undefined>,
  stdin: string,
): string {
  const vars = Object.entries(env)
    .filter(([k, v]) => k.startsWith("CNI_") && v !== undefined)
    .map(([k, v]) => `${k}=${v}\n`)
    .join("");
  return `${PROTOCOL} ${plugin}\n${vars}\n${stdin}`;
}

/** Splits a reply into exit code and stdout; undefined when it is not one. */
export function parseReply(text: string): { exitCode: number; stdout: string } | undefined {
  const nl = text.indexOf("\n");
  const code = Number(text.slice(0, nl));
  if (nl < 0 || !Number.isInteger(code)) return undefined;
  return { exitCode: code, stdout: text.slice(nl + 1) };
}

/** Splits a request into plugin name, CNI_* environment and stdin. Exported for tests. */
export function parseRequest(text: string): { plugin: string; env: NodeJS.ProcessEnv; stdin: string } {
  const end = text.indexOf("\n\n");
  if (end < 0) throw new Error("malformed request: no blank line after the environment");
  const [first = "", ...envLines] = text.slice(0, end).split("\n");
  const [protocol, plugin = ""] = first.split(" ");
  if (protocol !== PROTOCOL)
    throw new Error(`malformed request: expected "${PROTOCOL} <plugin>", got "${first}"`);
  const env: NodeJS.ProcessEnv = {};
  for (const line of envLines) {
    const eq = line.indexOf("=");
    const key = line.slice(0, eq);
    // Only the CNI protocol's variables cross: the server's own environment stays as it is.
    if (eq > 0 && key.startsWith("CNI_")) env[key] = line.slice(eq + 1);
  }
  return { plugin, env, stdin: text.slice(end + 2) };
}

export interface CniServerOptions {
  socket?: string;
  log?: (line: string) => void;
}

/** Answers one request (the text a launcher sent); the reply, or undefined when it is not a CNI request. */
export async function answerCniRequest(
  text: string,
  log: (line: string) => void,
): Promise<string | undefined> {
  try {
    const req = parseRequest(text);
    const handlers = HANDLERS[req.plugin];
    if (!handlers) throw new Error(`unknown plugin "${req.plugin}"`);
    const started = performance.now();
    const outcome = await runPlugin(handlers, { env: req.env, stdin: req.stdin, log });
    log(
      `${req.plugin} ${req.env.CNI_COMMAND ?? "?"} ${req.env.CNI_CONTAINERID ?? ""}: exit ${outcome.exitCode} in ${(performance.now() - started).toFixed(1)} ms`,
    );
    return `${outcome.exitCode}\n${outcome.stdout}`;
  } catch (e) {
    log(`bad request: ${(e as Error).message}`);
    return undefined;
  }
}

/**
 * Serves CNI requests on a listening server. `wrap` runs each request's work in a context: the lab
 * agent serves every node's socket from one process and runs each node's calls in that node's namespace.
 */
export function serveCniRequests(
  server: Server,
  log: (line: string) => void,
  wrap: <T>(fn: () => T) => T = (fn) => fn(),
): void {
  // allowHalfOpen: the client ends its side after the request and still reads the reply.
  server.on("connection", (conn) => {
    const chunks: Buffer[] = [];
    conn.on("data", (c: Buffer) => chunks.push(c));
    conn.on("error", () => conn.destroy());
    conn.on("end", async () => {
      const reply = await wrap(() => answerCniRequest(Buffer.concat(chunks).toString("utf8"), log));
      // Not a CNI answer: the launcher falls back to running the plugin itself.
      if (reply === undefined) conn.destroy();
      else conn.end(reply);
    });
  });
}

/** Starts the server in the calling process's network namespace; resolves once it listens. */
export function startCniServer(options: CniServerOptions = {}): Promise<Server> {
  const log = options.log ?? (() => {});
  // Blocking exec starts `ip` sooner (~4 ms a call); requests then take turns, which costs concurrent
  // callers less than it saves each call (measured: bench/cni.bench.ts).
  preferSynchronousExec();
  const server = createServer({ allowHalfOpen: true });
  serveCniRequests(server, log);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(`\0${options.socket ?? CNI_SERVER_SOCKET}`, () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}
