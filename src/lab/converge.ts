/**
 * converge: make the kernel match a lab's desired state. Reads what exists (namespaces by prefix, the
 * pods the store says are attached), then removes what is no longer wanted, creates what is missing and
 * re-applies every infrastructure namespace's (idempotent) configuration. Pods already attached are
 * left alone, so re-running it after a crash disturbs no connection.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import type { DesiredState, Pod } from "../api/types.js";
import { installPlugins } from "../cni/install.js";
import { CniRuntime } from "../cni/runtime/index.js";
import type { NetworkConfigList, Result } from "../cni/spec.js";
import { type IpLink, type IpRoute, ipBatchForce, ipJson } from "../linux/ip.js";
import { withNetns } from "../linux/netns-native.js";
import { ensureSysctl } from "../linux/sysctl.js";
import type { AddressPlan, ClusterPlan } from "../plan/types.js";
import { agentRequest } from "./agent.js";
import { podResolvConf } from "./cluster-dns.js";
import { type CniExecMode, execInNode, viaNodeAgent } from "./cni-exec.js";
import {
  applyNamespace,
  applyRootLines,
  deleteNamespaces,
  listNamespaces,
  writeNetnsResolvConf,
} from "./kernel.js";
import { labDir, labPrefix, netnsNames, netnsPath, PEERING_LINK_PREFIX, podContainerId } from "./names.js";
import { planServiceRoutes } from "./service-routes.js";
import type { AppliedPod, LabState } from "./store.js";
import { writeLabState } from "./store.js";
import {
  type ClusterTopology,
  canonicalCidr,
  type NamespacePlan,
  nodeConfList,
  PROBE_SYSCTLS,
  planTopology,
  ROUTER_ROUTE_PROTO,
} from "./topology.js";

export type Progress = (phase: string, detail: string, ms: number) => void;

export interface ConvergeReport {
  phases: { phase: string; detail: string; ms: number }[];
  podsAdded: number;
  podsRemoved: number;
  podsKept: number;
  namespacesCreated: number;
  namespacesDeleted: number;
  /** Pods that could not be attached, with why (the rest of the lab is up). */
  failures: { pod: string; error: string }[];
}

const CNI_CONCURRENCY = 8;

/** The pod as the lab attaches it: where it runs and the addresses the plan gave it. */
export function wantedPod(lab: string, pod: Pod, cluster: ClusterPlan): AppliedPod | undefined {
  const planned = cluster.pods.find((p) => p.namespace === pod.meta.namespace && p.name === pod.meta.name);
  if (!planned) return undefined;
  const ports = pod.containers.flatMap((c) =>
    c.ports.map((p) => ({ port: p.containerPort, protocol: p.protocol })),
  );
  return {
    cluster: cluster.name,
    namespace: pod.meta.namespace,
    name: pod.meta.name,
    node: planned.node,
    netns: netnsPath(
      planned.hostNetwork
        ? netnsNames.node(lab, cluster.name, planned.node)
        : netnsNames.pod(lab, cluster.name, pod.meta.namespace, pod.meta.name),
    ),
    containerID: podContainerId(cluster.name, pod.meta.namespace, pod.meta.name),
    ips: planned.ips,
    hostNetwork: planned.hostNetwork,
    ports,
  };
}

export function podKey(p: { cluster: string; namespace: string; name: string }): string {
  return `${p.cluster}/${p.namespace}/${p.name}`;
}

function samePlacement(a: AppliedPod, b: AppliedPod): boolean {
  return (
    a.node === b.node &&
    a.netns === b.netns &&
    a.ips.join() === b.ips.join() &&
    a.hostNetwork === b.hostNetwork
  );
}

interface NodeCni {
  runtime: CniRuntime;
  list: NetworkConfigList;
}

/** The CNI runtime and network configuration of every node (one runtime per node: it runs plugins there). */
function nodeRuntimes(lab: string, plan: AddressPlan, mode: CniExecMode): Map<string, NodeCni> {
  const dir = labDir(lab);
  const binDir = `${dir}/cni/bin`;
  installPlugins(binDir);
  const out = new Map<string, NodeCni>();
  for (const cluster of plan.clusters) {
    for (const node of cluster.nodes) {
      const nodeDir = `${dir}/nodes/${cluster.name}.${node.name}`;
      mkdirSync(nodeDir, { recursive: true });
      const list = nodeConfList(cluster, node.name, `${nodeDir}/ipam`) as unknown as NetworkConfigList;
      // What a node's runtime would read from /etc/cni/net.d: kept for `podnet cni` and for people.
      writeFileSync(`${nodeDir}/10-podnet.conflist`, `${JSON.stringify(list, null, 2)}\n`);
      const runtime = new CniRuntime({
        binDirs: [binDir, "/usr/lib/cni"],
        cacheDir: `${nodeDir}/cache`,
        pluginNetns: netnsPath(netnsNames.node(lab, cluster.name, node.name)),
        execPlugin: mode === "exec" ? execInNode : viaNodeAgent,
      });
      out.set(`${cluster.name}/${node.name}`, { runtime, list });
    }
  }
  return out;
}

/**
 * Removes from a router what an earlier plan put there and this one does not: peering links (by name
 * prefix) and routes of protocol ROUTER_ROUTE_PROTO. Read from the kernel, so a crash between plans
 * leaves nothing behind. Returns how many it removed.
 */
async function pruneRouter(ns: NamespacePlan): Promise<number> {
  if (!ns.router) return 0;
  const netns = netnsPath(ns.name);
  const links = await ipJson<IpLink[]>(["link", "show"], { netns });
  const wantedLinks = new Set(ns.router.peeringLinks);
  // The link name is the part before "@" (the veth's peer index).
  const lines = links
    .map((l) => l.ifname.split("@")[0] ?? "")
    .filter((n) => n.startsWith(PEERING_LINK_PREFIX) && !wantedLinks.has(n))
    .map((n) => `link del ${n}`);
  const wantedRoutes = new Set(ns.router.routeDsts);
  for (const family of ["-4", "-6"]) {
    const routes = await ipJson<IpRoute[]>([family, "route", "show", "proto", String(ROUTER_ROUTE_PROTO)], {
      netns,
    });
    for (const r of routes) {
      const dst = canonicalCidr(r.dst);
      if (!wantedRoutes.has(dst)) lines.push(`route del ${dst} proto ${ROUTER_ROUTE_PROTO}`);
    }
  }
  // A deleted link takes its routes along: "No such process"/"Cannot find device" mean already gone.
  const failures = (await ipBatchForce(lines, { netns })).filter(
    (f) => !/No such process|Cannot find device|No such device/.test(f.reason),
  );
  if (failures.length)
    throw new Error(`${ns.name}: ${failures.map((f) => `"${f.line}" failed: ${f.reason}`).join("; ")}`);
  return lines.length;
}

async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** How long a deleted pod's open connections may take to finish (the lab's terminationGracePeriod). */
const TERMINATION_GRACE_MS = 1000;

export async function converge(
  lab: string,
  desired: DesiredState,
  plan: AddressPlan,
  state: LabState,
  ensureAgent: () => Promise<void>,
  progress: Progress = () => {},
  cniMode: CniExecMode = "agent",
): Promise<{ state: LabState; report: ConvergeReport }> {
  const report: ConvergeReport = {
    phases: [],
    podsAdded: 0,
    podsRemoved: 0,
    podsKept: 0,
    namespacesCreated: 0,
    namespacesDeleted: 0,
    failures: [],
  };
  let t0 = performance.now();
  const phase = (name: string, detail: string) => {
    const ms = performance.now() - t0;
    report.phases.push({ phase: name, detail, ms });
    progress(name, detail, ms);
    t0 = performance.now();
  };

  const existing = new Set(listNamespaces(labPrefix(lab)));
  const mtuOf = (name: string) =>
    plan.clusters.find((c) => c.name === name)?.fabric.underlayMTU ?? Number.POSITIVE_INFINITY;
  const topologies: ClusterTopology[] = plan.clusters.map((c) =>
    planTopology(lab, c, planServiceRoutes(desired, c), plan.peerings ?? [], mtuOf),
  );
  const infra = topologies.flatMap((t) => t.namespaces);
  const wantedInfra = new Set(infra.map((n) => n.name));

  const wanted = new Map<string, AppliedPod>();
  for (const pod of desired.pods) {
    const cluster = plan.clusters.find((c) => c.name === pod.meta.cluster);
    const w = cluster && wantedPod(lab, pod, cluster);
    if (w) wanted.set(podKey(w), w);
  }
  const runtimes = nodeRuntimes(lab, plan, cniMode);
  const previous = state.plan;
  const oldRuntimes = previous ? nodeRuntimes(lab, previous, cniMode) : runtimes;

  // 1. Pods that go (deleted, moved, re-addressed, or their namespace vanished): CNI DEL, then the namespace.
  const kept: AppliedPod[] = [];
  const leaving: AppliedPod[] = [];
  for (const p of state.pods) {
    const w = wanted.get(podKey(p));
    const present = p.hostNetwork || existing.has(p.netns.slice("/run/netns/".length));
    if (w && samePlacement(w, p) && present) kept.push(p);
    else leaving.push(p);
  }
  if (leaving.length > 0 && state.plan) {
    // Endpoints go before their pods do (Kubernetes takes a terminating pod out of its EndpointSlices
    // first): the node agent drops them from every node's proxy while the pods still answer.
    writeLabState({ ...state, pods: kept });
    await agentRequest(lab, "node", { op: "sync" }).catch(() => undefined); // no agent: nothing proxied
    // Then the pods' servers stop as on SIGTERM: connections that got in before may finish (up to 1 s).
    await agentRequest(lab, "workloads", {
      op: "terminate",
      pods: leaving.map((p) => `${p.cluster}/${p.namespace}/${p.name}`),
      graceMs: TERMINATION_GRACE_MS,
    }).catch(() => undefined);
  }
  await pool(leaving, CNI_CONCURRENCY, async (p) => {
    if (p.hostNetwork) return;
    const cni = oldRuntimes.get(`${p.cluster}/${p.node}`);
    const nodeThere = existing.has(netnsNames.node(lab, p.cluster, p.node));
    if (cni && nodeThere) {
      try {
        await cni.runtime.del(cni.list, { containerID: p.containerID, ifname: "eth0", netns: p.netns });
      } catch (e) {
        report.failures.push({ pod: podKey(p), error: `CNI DEL: ${(e as Error).message}` });
      }
    }
  });
  const goneNs = [
    ...leaving.filter((p) => !p.hostNetwork).map((p) => p.netns.slice("/run/netns/".length)),
    ...[...existing].filter((n) => !wantedInfra.has(n) && !n.includes(".pod.")),
  ].filter((n) => existing.has(n));
  // Pod namespaces nobody records (a crash between creating and recording): gone too.
  const keptNs = new Set(kept.map((p) => p.netns.slice("/run/netns/".length)));
  const wantedNs = new Set([...wanted.values()].map((p) => p.netns.slice("/run/netns/".length)));
  for (const n of existing) if (n.includes(".pod.") && !keptNs.has(n) && !wantedNs.has(n)) goneNs.push(n);
  const undeleted = await deleteNamespaces([...new Set(goneNs)]);
  for (const n of new Set(goneNs)) if (!undeleted.includes(n)) existing.delete(n);
  report.podsRemoved = leaving.length;
  report.namespacesDeleted = new Set(goneNs).size - undeleted.length;
  if (leaving.length || goneNs.length)
    phase("remove", `${leaving.length} pods, ${new Set(goneNs).size} namespaces`);

  // 2. Namespaces and the links between them: one batch in the root namespace.
  const keptKeys = new Set(kept.map(podKey));
  const adding = [...wanted.values()].filter((p) => !keptKeys.has(podKey(p)));
  const newNs = [
    ...infra.map((n) => n.name).filter((n) => !existing.has(n)),
    ...adding
      .filter((p) => !p.hostNetwork)
      .map((p) => p.netns.slice("/run/netns/".length))
      .filter((n) => !existing.has(n)),
  ];
  await applyRootLines([...newNs.map((n) => `netns add ${n}`), ...topologies.flatMap((t) => t.links)]);
  report.namespacesCreated = newNs.length;
  phase("namespaces", `${newNs.length} created, ${existing.size} already there`);

  // 3. Underlay, nodes and external hosts: addresses, routes, fabric, masquerade.
  await pool(infra, 4, (ns) => applyNamespace(ns));
  // What routers hold and the plan no longer wants: removed peerings' links, stale routes.
  const pruned = (await Promise.all(infra.map(pruneRouter))).reduce((a, b) => a + b, 0);
  phase(
    "network",
    `${infra.length} infrastructure namespaces configured${pruned ? `, ${pruned} stale router links/routes removed` : ""}`,
  );

  // 4. The agent serves the nodes' CNI calls; it reads the node list from the store.
  const externals: AppliedPod[] = desired.externalHosts.flatMap((h) => {
    const address = plan.clusters
      .find((c) => c.name === h.meta.cluster)
      ?.externalHosts.find((x) => x.name === h.meta.name)?.address;
    if (!address || h.ports.length === 0) return [];
    return [
      {
        cluster: h.meta.cluster,
        namespace: "external",
        name: h.meta.name,
        node: "",
        netns: netnsPath(netnsNames.external(lab, h.meta.cluster, h.meta.name)),
        containerID: "",
        ips: [address],
        hostNetwork: true,
        ports: h.ports.map((p) => ({ port: p.port, protocol: p.protocol })),
      },
    ];
  });
  const next: LabState = { ...state, plan, pods: kept, externals };
  writeLabState(next);
  await ensureAgent();
  await agentRequest(lab, "node", { op: "sync" });
  phase("agents", "node agents serve CNI in every node");

  // 5. CNI ADD for each new pod, run in its node as a container runtime would.
  const attached: AppliedPod[] = [];
  await pool(adding, CNI_CONCURRENCY, async (p) => {
    if (p.hostNetwork) {
      attached.push(p);
      return;
    }
    const cni = runtimes.get(`${p.cluster}/${p.node}`);
    if (!cni) throw new Error(`no CNI runtime for node ${p.node}`);
    try {
      const result: Result = await cni.runtime.add(cni.list, {
        containerID: p.containerID,
        netns: p.netns,
        ifname: "eth0",
        args: {
          K8S_POD_NAMESPACE: p.namespace,
          K8S_POD_NAME: p.name,
          K8S_POD_INFRA_CONTAINER_ID: p.containerID,
        },
        capabilityArgs: { ips: p.ips },
      });
      for (const [key, value] of Object.entries(PROBE_SYSCTLS))
        withNetns(p.netns, () => ensureSysctl(key, value));
      const cluster = plan.clusters.find((c) => c.name === p.cluster);
      if (cluster)
        writeNetnsResolvConf(p.netns.slice("/run/netns/".length), podResolvConf(p.namespace, cluster));
      const got = (result.ips ?? []).map((i) => i.address.split("/")[0] ?? "");
      attached.push({ ...p, ips: got.length ? got : p.ips });
    } catch (e) {
      report.failures.push({ pod: podKey(p), error: (e as Error).message });
    }
  });
  report.podsAdded = attached.length;
  report.podsKept = kept.length;
  next.pods = [...kept, ...attached];
  writeLabState(next);
  phase("pods", `${attached.length} attached by CNI, ${kept.length} kept`);

  // 6. Responders on every pod's declared ports.
  const synced = await agentRequest<{ status: { sockets: number } }>(lab, "workloads", { op: "sync" });
  phase("workloads", `${synced.status.sockets} responder sockets`);

  // 7. New pods answer now: the node agent makes them endpoints (a pod is not one before it runs).
  if (attached.length > 0) {
    await agentRequest(lab, "node", { op: "sync" });
    phase("endpoints", `${attached.length} pods published to the service proxy`);
  }
  return { state: next, report };
}
