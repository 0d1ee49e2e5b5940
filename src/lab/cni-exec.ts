/**
 * How the lab's CNI runtime runs plugins in a node. Two executors, both real CNI calls with the same
 * environment and configuration a container runtime passes:
 * - `execInNode`: starts the installed executable inside the node's namespace, as a runtime does. For
 *   podnet's plugins that executable is a launcher that relays the call to the node agent's CNI server.
 * - `viaNodeAgent` (default): for podnet's own plugins, sends the call straight to that server (the
 *   abstract socket inside the node's namespace), skipping the launcher's sh and socat; other plugins
 *   (the reference ones in /usr/lib/cni) are executed. Same plugin code, same answer, ~3 fewer processes
 *   per call: what makes 1,000 pods fit in seconds.
 */

import { createConnection } from "node:net";
import { basename } from "node:path";
import type { ExecOutput, ExecPlugin, ExecRequest } from "../cni/runtime/index.js";
import { formatRequest, HANDLERS, parseReply } from "../cni/server.js";
import { CNI_SERVER_SOCKET } from "../cni/spec.js";
import { spawnInNetns, withNetns } from "../linux/netns-native.js";

export type CniExecMode = "agent" | "exec";

export const execInNode: ExecPlugin = (req) =>
  new Promise((resolve, reject) => {
    const child = spawnInNetns(req.netns ?? "/proc/self/ns/net", req.path, [], {
      env: req.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on("data", (b: Buffer) => out.push(b));
    child.stderr?.on("data", (b: Buffer) => err.push(b));
    child.stdin?.on("error", () => {});
    child.on("error", reject);
    child.on("close", (exitCode: number | null, signal: string | null) =>
      resolve({
        exitCode,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      }),
    );
    child.stdin?.end(req.stdin);
  });

function callNodeAgent(req: ExecRequest, plugin: string): Promise<ExecOutput> {
  return new Promise((resolve, reject) => {
    // A unix socket made while this thread is in the node's namespace reaches that namespace's
    // abstract socket (net.createConnection creates and connects it synchronously).
    const conn = withNetns(req.netns ?? "/proc/self/ns/net", () =>
      createConnection({ path: `\0${CNI_SERVER_SOCKET}`, allowHalfOpen: true }),
    );
    const chunks: Buffer[] = [];
    conn.on("data", (c: Buffer) => chunks.push(c));
    conn.on("error", (e) => reject(new Error(`node agent's CNI server in ${req.netns}: ${e.message}`)));
    conn.on("end", () => {
      const reply = parseReply(Buffer.concat(chunks).toString("utf8"));
      if (!reply) reject(new Error(`node agent's CNI server in ${req.netns} gave no answer to ${plugin}`));
      else resolve({ exitCode: reply.exitCode, signal: null, stdout: reply.stdout, stderr: "" });
    });
    conn.end(formatRequest(plugin, req.env, req.stdin));
  });
}

export const viaNodeAgent: ExecPlugin = (req) => {
  const plugin = basename(req.path);
  if (!(plugin in HANDLERS) || req.path.startsWith("/usr/lib/cni/")) return execInNode(req);
  return callNodeAgent(req, plugin);
};
