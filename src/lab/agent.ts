/**
 * The lab's long-running processes, started detached by `podnet lab up`, one per role:
 * - `node`: the node agent of every node. It is each node's CNI server: it listens on the abstract
 *   socket `podnet-cni` inside each node's namespace (abstract sockets are per namespace), so the
 *   installed plugin executables that the CNI runtime runs in a node hand their call to it, and it runs
 *   the plugin code in that node's namespace.
 * - `workloads`: the pods' (and external hosts') processes: a responder socket per declared port inside
 *   each one's namespace. Kept apart from the node agent as containers are from the kubelet: killing
 *   the agent (even kill -9) drops no connection to a pod.
 * Each answers a control socket in the lab's directory (JSON lines): ping, sync (re-read the store and
 * open/close what changed), status, stop. Namespaces, links, routes and rules are the kernel's: the next
 * `up` starts what is not running, which re-opens what the store lists.
 */
import { existsSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { createConnection, createServer, type Server } from "node:net";
import { type DesiredState, loadManifestSources } from "../api/index.js";
import { serveCniRequests } from "../cni/server.js";
import { CNI_SERVER_SOCKET } from "../cni/spec.js";
import { run, useAsyncSpawner } from "../linux/exec.js";
import { runInNetnsContext, useNetnsSwitcher } from "../linux/netns-context.js";
import { listenUnixAbstract, withNetns } from "../linux/netns-native.js";
import { nftApply } from "../linux/nft.js";
import { SpawnPool } from "../linux/spawn-pool.js";
import { LabPolicySync } from "../policy/sync.js";
import {
  clusterEndpoints,
  conntrackDeleteArgs,
  type ProxyChange,
  ProxyPlanner,
  type ProxyRuleset,
  planProxyUpdate,
  proxyInputFor,
  proxySyncScript,
} from "../proxy/index.js";
import { isClusterDnsPod } from "./cluster-dns.js";
import { ClusterDnsHost } from "./dns-host.js";
import { labDir, netnsNames, netnsPath } from "./names.js";
import { ResponderHost } from "./responder.js";
import { type LabState, readLabState, storeSource } from "./store.js";

export type AgentRole = "node" | "workloads";
export const AGENT_ROLES: readonly AgentRole[] = ["node", "workloads"];

export function agentSocketPath(lab: string, role: AgentRole): string {
  return `${labDir(lab)}/${role}.sock`;
}

export function agentPidPath(lab: string, role: AgentRole): string {
  return `${labDir(lab)}/${role}.pid`;
}

export interface AgentStatus {
  pid: number;
  nodes: string[];
  /** Node namespaces whose service proxy ruleset is applied (node agent). */
  proxied: string[];
  pods: number;
  sockets: number;
  skipped: string[];
  /** Clusters whose DNS server runs in their DNS pod (workloads agent). */
  dns: string[];
  rssBytes: number;
}

type Request =
  | { op: "ping" }
  | { op: "sync" }
  | { op: "status" }
  | { op: "stop" }
  /** Workloads: stop these pods' servers gracefully (`cluster/namespace/name` keys), as on SIGTERM. */
  | { op: "terminate"; pods: string[]; graceMs: number };

/** Runs the agent until told to stop. */
export async function runAgent(lab: string, role: AgentRole, log: (line: string) => void): Promise<void> {
  useNetnsSwitcher(withNetns);
  if (role === "node") {
    // CNI calls start ip/nft from two spawning threads with posix_spawn: a Node fork costs ~5 ms of this
    // thread at the agent's size, which serialised 1,000 ADDs behind it.
    const pool = new SpawnPool(2);
    useAsyncSpawner((req) => pool.run(req));
  }
  const responders = new ResponderHost();
  const cniServers = new Map<string, Server>();
  const proxyRulesets = new Map<string, ProxyRuleset>();
  // One planner per node: it remembers each Service's share of the node's tables and replans what changed.
  const proxyPlanners = new Map<string, ProxyPlanner>();
  const policySync = new LabPolicySync(lab, log);
  const clusterDns = new ClusterDnsHost(log);
  let skipped: string[] = [];

  async function sync(): Promise<AgentStatus> {
    const state = readLabState(lab);
    const wantedNodes = new Set<string>();
    for (const cluster of state?.plan?.clusters ?? []) {
      for (const node of cluster.nodes) wantedNodes.add(netnsNames.node(lab, cluster.name, node.name));
    }
    for (const [ns, server] of cniServers) {
      if (!wantedNodes.has(ns)) {
        server.close();
        cniServers.delete(ns);
      }
    }
    if (role === "node" && state?.plan) {
      // The store, loaded once for both: the proxy sees attached pods only, policies every planned pod (a
      // pod's policies are in place before it runs).
      const desired = loadStore(state);
      await syncServiceProxy(state, attachedOnly(desired, state));
      await policySync.sync(state, desired);
    }
    for (const ns of wantedNodes) {
      if (role !== "node") break;
      if (cniServers.has(ns) || !existsSync(netnsPath(ns))) continue;
      const path = netnsPath(ns);
      // allowHalfOpen: the launcher half-closes after its request and then reads the reply.
      const server = await listenUnixAbstract(path, CNI_SERVER_SOCKET, createServer({ allowHalfOpen: true }));
      serveCniRequests(server, log, (fn) => runInNetnsContext(path, fn));
      cniServers.set(ns, server);
    }
    const wantedPods = new Map(
      [...(state?.pods ?? []), ...(state?.externals ?? [])].map((p) => [
        `${p.cluster}/${p.namespace}/${p.name}`,
        p,
      ]),
    );
    if (role !== "workloads") wantedPods.clear();
    // The DNS pods' port 53 belongs to the cluster DNS server, not to a responder.
    for (const [key, pod] of wantedPods) if (isClusterDnsPod(pod)) wantedPods.delete(key);
    for (const key of responders.keys()) if (!wantedPods.has(key)) await responders.close(key);
    skipped = [];
    for (const [key, pod] of wantedPods) {
      if (!existsSync(pod.netns)) continue;
      const result = await responders.open({
        key,
        namespace: pod.namespace,
        name: pod.name,
        netnsPath: pod.netns,
        ports: pod.ports,
        // A dual-stack pod answers on both families, as a server bound to the wildcard address would.
        families: pod.ips.some((ip) => ip.includes(":"))
          ? pod.ips.some((ip) => !ip.includes(":"))
            ? [4, 6]
            : [6]
          : [4],
      });
      for (const s of (result as { skipped?: string[] } | undefined)?.skipped ?? [])
        skipped.push(`${key}: ${s}`);
    }
    if (role === "workloads" && state?.plan) {
      await clusterDns.sync(state, attachedOnly(loadStore(state), state));
    }
    return status();
  }

  /** The desired state the store holds (with the lab's own DNS objects). */
  function loadStore(state: LabState): DesiredState {
    return loadManifestSources(state.objects.length ? [storeSource(lab, state.objects)] : []).state;
  }

  /** kube-proxy's job in every node: the node's ruleset, applied as a diff of the last one applied. */
  async function syncServiceProxy(state: LabState, desired: DesiredState): Promise<void> {
    const jobs: { ns: string; change: ProxyChange }[] = [];
    for (const cluster of state.plan?.clusters ?? []) {
      const derived = clusterEndpoints(desired, cluster); // once per cluster, not per node
      for (const node of cluster.nodes) {
        const ns = netnsPath(netnsNames.node(lab, cluster.name, node.name));
        if (!existsSync(ns)) continue;
        const input = proxyInputFor(desired, cluster, node.name, derived);
        const planner = proxyPlanners.get(ns) ?? new ProxyPlanner();
        proxyPlanners.set(ns, planner);
        jobs.push({ ns, change: planner.change(input) });
      }
    }
    await Promise.all(
      jobs.map(async ({ ns, change }) => {
        const next = change.ruleset;
        const previous = proxyRulesets.get(ns);
        // After a restart there is no previous: replace the tables in one transaction (conntrack keeps
        // established connections going). The planner's own transaction (computed from the changed
        // Services alone) starts from its previous plan: used when that is what the node has.
        const update = !previous
          ? undefined
          : change.update && change.previous === previous
            ? change.update
            : planProxyUpdate(previous, next);
        const text = update ? update.text : proxySyncScript(next);
        try {
          if (text.trim()) await nftApply(text, { netns: ns });
          proxyRulesets.set(ns, next);
        } catch (e) {
          proxyRulesets.delete(ns);
          log(`service proxy in ${ns}: ${(e as Error).message}`);
          throw e;
        }
        // After the rules: a UDP client that keeps its source port would otherwise keep reaching the
        // endpoint that went away until its conntrack entry expires. Exit code 1 = nothing to delete.
        for (const flow of update?.staleUdp ?? []) {
          await run("conntrack", conntrackDeleteArgs(flow), { netns: ns, allowFailure: true }).catch((e) =>
            log(`conntrack in ${ns}: ${(e as Error).message}`),
          );
        }
      }),
    );
  }

  function status(): AgentStatus {
    let sockets = 0;
    for (const key of responders.keys()) sockets += responders.listening(key).length;
    return {
      pid: process.pid,
      nodes: [...cniServers.keys()],
      proxied: [...proxyRulesets.keys()],
      pods: responders.keys().length,
      sockets,
      skipped,
      dns: clusterDns.clusters(),
      rssBytes: process.memoryUsage.rss(),
    };
  }

  const sockPath = agentSocketPath(lab, role);
  if (existsSync(sockPath)) unlinkSync(sockPath);
  let queue: Promise<unknown> = Promise.resolve();
  const control = createServer((conn) => {
    let buf = "";
    conn.on("error", () => conn.destroy());
    conn.on("data", (chunk) => {
      buf += chunk;
      let nl = buf.indexOf("\n");
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        nl = buf.indexOf("\n");
        // One request at a time: a sync must not interleave with another.
        queue = queue.then(async () => {
          let reply: unknown;
          try {
            const req = JSON.parse(line) as Request;
            if (req.op === "ping") reply = { ok: true, pid: process.pid };
            else if (req.op === "sync") reply = { ok: true, status: await sync() };
            else if (req.op === "status") reply = { ok: true, status: status() };
            else if (req.op === "terminate") {
              await Promise.all(req.pods.map((key) => responders.close(key, req.graceMs)));
              reply = { ok: true, status: status() };
            } else if (req.op === "stop") {
              conn.end(`${JSON.stringify({ ok: true })}\n`);
              shutdown();
              return;
            } else reply = { ok: false, error: `unknown op in ${line}` };
          } catch (e) {
            reply = { ok: false, error: (e as Error).message };
            log(`control: ${(e as Error).message}`);
          }
          if (!conn.destroyed) conn.write(`${JSON.stringify(reply)}\n`);
        });
      }
    });
  });

  function shutdown(): void {
    void responders.closeAll();
    void clusterDns.stopAll();
    for (const s of cniServers.values()) s.close();
    control.close();
    try {
      unlinkSync(sockPath);
      if (readFileSync(agentPidPath(lab, role), "utf8").trim() === String(process.pid))
        unlinkSync(agentPidPath(lab, role));
    } catch {}
    log("stopped");
    setImmediate(() => process.exit(0));
  }
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);

  await new Promise<void>((resolve, reject) => {
    control.once("error", reject);
    control.listen(sockPath, () => resolve());
  });
  writeFileSync(agentPidPath(lab, role), `${process.pid}\n`);
  log(`${role} agent ${process.pid} for lab ${lab} listening on ${sockPath}`);
  await sync();
}

/**
 * The desired state with only the pods the lab has attached (or hostNetwork pods): a pod whose namespace
 * is not wired yet, or is being torn down, is no endpoint — as in Kubernetes, where a pod gets into an
 * EndpointSlice once it runs and leaves it when it starts terminating.
 */
export function attachedOnly(desired: DesiredState, state: LabState): DesiredState {
  const attached = new Set(state.pods.map((p) => `${p.cluster}/${p.namespace}/${p.name}`));
  return {
    ...desired,
    pods: desired.pods.filter((p) => attached.has(`${p.meta.cluster}/${p.meta.namespace}/${p.meta.name}`)),
  };
}

/** Sends one request to a lab's agent; rejects when none answers within `timeoutMs`. */
export function agentRequest<T = unknown>(
  lab: string,
  role: AgentRole,
  req: Request,
  timeoutMs = 60_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(agentSocketPath(lab, role));
    let buf = "";
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`the ${role} agent of lab ${lab} did not answer ${req.op} within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    conn.on("data", (c) => {
      buf += c;
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      clearTimeout(timer);
      conn.end();
      const reply = JSON.parse(buf.slice(0, nl)) as { ok: boolean; error?: string } & T;
      if (reply.ok) resolve(reply);
      else reject(new Error(`agent: ${reply.error}`));
    });
    conn.write(`${JSON.stringify(req)}\n`);
  });
}

/** The PID of the lab's agent when one runs (and is really ours: its command line names the lab). */
export function runningAgentPid(lab: string, role: AgentRole): number | undefined {
  try {
    const pid = Number(readFileSync(agentPidPath(lab, role), "utf8").trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    const i = cmdline.indexOf("--name");
    const r = cmdline.indexOf("--role");
    return cmdline.includes("agent") && cmdline[i + 1] === lab && cmdline[r + 1] === role ? pid : undefined;
  } catch {
    return undefined;
  }
}
