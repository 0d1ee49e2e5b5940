/**
 * A lab's operations, as the CLI calls them: up, apply, delete, label, status, down. Each takes the
 * lab's lock, reads the store, loads the new desired state (nothing changes when the manifests have
 * errors), converges the kernel to it and writes the store back.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type Diagnostic, hasErrors, InvalidInputError } from "../api/diagnostics.js";
import { loadManifestSources } from "../api/index.js";
import type { Source } from "../api/source.js";
import type { DesiredState } from "../api/types.js";
import { withLock } from "../linux/lockfile.js";
import { useNetnsSwitcher } from "../linux/netns-context.js";
import { withNetns } from "../linux/netns-native.js";
import { planAddresses } from "../plan/index.js";
import type { AddressPlan } from "../plan/types.js";
import { deriveEndpoints } from "../proxy/index.js";
import {
  AGENT_ROLES,
  type AgentRole,
  type AgentStatus,
  agentRequest,
  agentSocketPath,
  attachedOnly,
  runningAgentPid,
} from "./agent.js";
import type { CniExecMode } from "./cni-exec.js";
import { type ConvergeReport, converge, type Progress } from "./converge.js";
import { ensureLabDnsCertificates } from "./dns-certs.js";
import { deleteNamespaces, listNamespaces, netnsEtcDir } from "./kernel.js";
import { labDir, labNameProblem, labPrefix, netnsNames } from "./names.js";
import {
  clusterDnsSource,
  emptyLabState,
  type LabState,
  mergeObjects,
  objectsOf,
  readLabState,
  type StoredObject,
  storeSource,
} from "./store.js";

// The lab starts commands right inside its namespaces (no `ip -n`, no nsenter): see netns-context.ts.
useNetnsSwitcher(withNetns);

export class LabError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LabError";
  }
}

export interface LabOptions {
  lab: string;
  /** How pods' CNI calls run: through the node agent (default) or by executing the installed plugins. */
  cni?: CniExecMode;
  progress?: Progress;
  verbose?: boolean;
  /**
   * Plan errors to build the lab despite (reported as warnings), by code: only ALLOWABLE_PLAN_ERRORS.
   * Kept in the store, so later apply/delete on the lab keep allowing them.
   */
  allow?: string[];
}

/** Plan errors a lab may be built despite, to observe what they do: the service-range black hole. */
export const ALLOWABLE_PLAN_ERRORS = ["service-range-alias"];

function checkLabName(lab: string): void {
  const problem = labNameProblem(lab);
  if (problem) throw new LabError(problem);
}

function lockPath(lab: string): string {
  return `${labDir(lab)}/lock`;
}

function withLabLock<T>(lab: string, fn: () => Promise<T>): Promise<T> {
  mkdirSync(labDir(lab), { recursive: true });
  // A big lab takes a while to converge: wait for another command's turn rather than fail.
  return withLock(lockPath(lab), fn, 600_000);
}

/** Loads the store's objects together with new sources; throws InvalidInputError on any error. */
function loadDesired(
  lab: string,
  objects: readonly StoredObject[],
  sources: readonly Source[],
  verbose = false,
): { desired: DesiredState; diagnostics: Diagnostic[] } {
  // The lab's DNS pod and Service follow the clusters of the stored and the incoming objects together.
  const incoming = objectsOf(sources, []);
  const all = [
    ...(objects.length ? [storeSource(lab, objects, false)] : []),
    ...sources,
    clusterDnsSource(lab, [...objects, ...incoming]),
  ];
  const loaded = loadManifestSources(all, { verbose });
  if (hasErrors(loaded.diagnostics)) throw new InvalidInputError(loaded.diagnostics);
  return { desired: loaded.state, diagnostics: loaded.diagnostics };
}

function planFor(
  desired: DesiredState,
  previous: AddressPlan | undefined,
  allow: readonly string[] = [],
): AddressPlan {
  const plan = planAddresses(desired, { previous });
  plan.diagnostics = plan.diagnostics.map((d) => {
    if (d.severity !== "error" || !d.code || !ALLOWABLE_PLAN_ERRORS.includes(d.code)) return d;
    if (allow.includes(d.code))
      return { ...d, severity: "warning", message: `${d.message} (allowed: --allow ${d.code})` };
    return { ...d, hint: `${d.hint ?? ""}; or build the lab anyway to observe it: --allow ${d.code}` };
  });
  if (hasErrors(plan.diagnostics)) throw new InvalidInputError(plan.diagnostics);
  return plan;
}

/** Starts the lab's agents that are not running; resolves when all answer. */
export async function ensureAgents(lab: string): Promise<void> {
  await Promise.all(AGENT_ROLES.map((role) => ensureAgent(lab, role)));
}

async function ensureAgent(lab: string, role: AgentRole): Promise<void> {
  if (runningAgentPid(lab, role) !== undefined) {
    try {
      await agentRequest(lab, role, { op: "ping" }, 5_000);
      return;
    } catch {}
  }
  const main = fileURLToPath(new URL("../cli/main.js", import.meta.url));
  const log = openSync(`${labDir(lab)}/${role}.log`, "a");
  const child = spawn(process.execPath, [main, "lab", "agent", "--name", lab, "--role", role], {
    detached: true,
    stdio: ["ignore", log, log],
    // The agents make no TLS connection: extra CA certificates would only slow their start.
    env: { ...process.env, NODE_EXTRA_CA_CERTS: undefined },
  });
  child.unref();
  const deadline = Date.now() + 20_000;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      if (existsSync(agentSocketPath(lab, role))) {
        await agentRequest(lab, role, { op: "ping" }, 2_000);
        return;
      }
    } catch (e) {
      lastError = e;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  // The log's last lines say why (the lab's directory, and the log with it, may go with a later down).
  let tail = "";
  try {
    tail = readFileSync(`${labDir(lab)}/${role}.log`, "utf8")
      .trimEnd()
      .split("\n")
      .slice(-5)
      .join("\n  ");
  } catch {}
  throw new LabError(
    `the lab's ${role} agent did not start (see ${labDir(lab)}/${role}.log)${lastError ? `: ${(lastError as Error).message}` : ""}${tail ? `\n  ${tail}` : ""}`,
  );
}

export interface ChangeResult {
  report: ConvergeReport;
  state: LabState;
  diagnostics: Diagnostic[];
}

/** Applies a change of the stored objects and converges. */
async function change(
  options: LabOptions,
  edit: (state: LabState) => { objects: StoredObject[]; sources: Source[] },
  requireExisting: boolean,
): Promise<ChangeResult> {
  checkLabName(options.lab);
  const lab = options.lab;
  return withLabLock(lab, async () => {
    const state = readLabState(lab) ?? emptyLabState(lab);
    if (requireExisting && !readLabState(lab))
      throw new LabError(`lab "${lab}" does not exist; start it with: podnet lab up --name ${lab} -f FILE`);
    const { objects, sources } = edit(state);
    const { desired, diagnostics } = loadDesired(lab, objects, sources, options.verbose);
    for (const code of options.allow ?? [])
      if (!ALLOWABLE_PLAN_ERRORS.includes(code))
        throw new LabError(
          `--allow ${code}: only these plan errors can be allowed: ${ALLOWABLE_PLAN_ERRORS.join(", ")}`,
        );
    const allow = [...new Set([...(state.allow ?? []), ...(options.allow ?? [])])];
    const plan = planFor(desired, state.plan, allow);
    await ensureLabDnsCertificates(lab, desired.clusters); // DNS over TLS between clusters (dns-certs.ts)
    const merged = sources.length ? mergeObjects(objects, { applied: objectsOf(sources, []) }) : objects;
    const result = await converge(
      lab,
      desired,
      plan,
      { ...state, objects: merged, ...(allow.length ? { allow } : {}) },
      () => ensureAgents(lab),
      options.progress,
      options.cni,
    );
    return { report: result.report, state: result.state, diagnostics: [...diagnostics, ...plan.diagnostics] };
  });
}

/** `up -f`: create the lab, or apply the files to it; without files, re-adopt and converge what is stored. */
export function labUp(options: LabOptions, sources: Source[]): Promise<ChangeResult> {
  return change(
    options,
    (state) => {
      if (sources.length === 0 && state.objects.length === 0)
        throw new LabError(`lab "${options.lab}" has no manifests yet: podnet lab up -f FILE`);
      return keepOthers(state, sources);
    },
    false,
  );
}

function keepOthers(state: LabState, sources: Source[]): { objects: StoredObject[]; sources: Source[] } {
  const incoming = objectsOf(sources, []);
  return { objects: mergeObjects(state.objects, { deleted: incoming.map((o) => o.key) }), sources };
}

/** `apply -f`: add or replace objects in a running lab. */
export function labApply(options: LabOptions, sources: Source[]): Promise<ChangeResult> {
  return change(options, (state) => keepOthers(state, sources), true);
}

/** `delete -f`: remove the objects the files name (kind, namespace, name) from a running lab. */
export function labDelete(options: LabOptions, sources: Source[]): Promise<ChangeResult> {
  return change(
    options,
    (state) => {
      const diags: Diagnostic[] = [];
      const named = objectsOf(sources, diags);
      if (hasErrors(diags)) throw new InvalidInputError(diags);
      const keys = new Set(named.map((o) => o.key));
      const missing = named.filter((o) => !state.objects.some((s) => s.key === o.key));
      if (missing.length)
        throw new LabError(
          `not in lab "${options.lab}": ${missing.map((o) => `${o.key} (${o.from})`).join(", ")}; nothing was deleted`,
        );
      return { objects: state.objects.filter((o) => !keys.has(o.key)), sources: [] };
    },
    true,
  );
}

export interface LabelChange {
  kind: string;
  name: string;
  namespace?: string;
  /** key=value sets, key- removes. */
  changes: string[];
  overwrite: boolean;
}

/** `label KIND NAME k=v k2-`: change the labels of a stored object (a Deployment's pods follow its template). */
export function labLabel(options: LabOptions, label: LabelChange): Promise<ChangeResult> {
  return change(
    options,
    (state) => {
      const kind = normalizeKind(label.kind);
      const match = state.objects.filter((o) => {
        const v = o.value as { kind?: string; metadata?: { name?: string; namespace?: string } };
        const namespaced =
          kind !== "Namespace" && kind !== "Node" && kind !== "Cluster" && kind !== "ExternalHost";
        return (
          v.kind === kind &&
          v.metadata?.name === label.name &&
          (!namespaced || (v.metadata?.namespace ?? "default") === (label.namespace ?? "default"))
        );
      });
      if (match.length === 0)
        throw new LabError(
          `${kind} ${label.namespace ? `${label.namespace}/` : ""}${label.name} is not in lab "${options.lab}"; see: podnet lab status --name ${options.lab}`,
        );
      const objects = state.objects.map((o) => {
        if (!match.includes(o)) return o;
        const value = structuredClone(o.value) as { metadata: { labels?: Record<string, string> } };
        const labels = { ...(value.metadata.labels ?? {}) };
        for (const c of label.changes) {
          if (c.endsWith("-") && !c.includes("=")) {
            delete labels[c.slice(0, -1)];
            continue;
          }
          const eq = c.indexOf("=");
          if (eq <= 0) throw new LabError(`label "${c}": expected key=value or key-`);
          const k = c.slice(0, eq);
          if (labels[k] !== undefined && labels[k] !== c.slice(eq + 1) && !label.overwrite)
            throw new LabError(
              `${kind} ${label.name} already has label ${k}=${labels[k]}; add --overwrite to change it`,
            );
          labels[k] = c.slice(eq + 1);
        }
        value.metadata.labels = labels;
        return { ...o, value: value as Record<string, unknown> };
      });
      return { objects, sources: [] };
    },
    true,
  );
}

const KIND_ALIASES: Record<string, string> = {
  pod: "Pod",
  pods: "Pod",
  po: "Pod",
  deployment: "Deployment",
  deployments: "Deployment",
  deploy: "Deployment",
  namespace: "Namespace",
  namespaces: "Namespace",
  ns: "Namespace",
  service: "Service",
  services: "Service",
  svc: "Service",
  node: "Node",
  nodes: "Node",
  no: "Node",
  statefulset: "StatefulSet",
  statefulsets: "StatefulSet",
  sts: "StatefulSet",
};

export function normalizeKind(kind: string): string {
  return KIND_ALIASES[kind.toLowerCase()] ?? kind;
}

/** `down`: stop the agent, delete every namespace with the lab's prefix, remove the lab's directory. */
export async function labDown(options: {
  lab: string;
}): Promise<{ namespaces: number; agentStopped: boolean }> {
  checkLabName(options.lab);
  const lab = options.lab;
  let agentStopped = false;
  await Promise.all(
    AGENT_ROLES.map(async (role) => {
      const pid = runningAgentPid(lab, role);
      if (pid === undefined) return;
      try {
        await agentRequest(lab, role, { op: "stop" }, 5_000);
      } catch {}
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline && processAlive(pid)) await new Promise((r) => setTimeout(r, 20));
      // Only the PID the lab recorded, and only if its command line still names this lab and role.
      if (processAlive(pid) && runningAgentPid(lab, role) === pid) process.kill(pid, "SIGKILL");
      agentStopped = true;
    }),
  );
  const names = listNamespaces(labPrefix(lab));
  const failed = await deleteNamespaces(names);
  if (failed.length) throw new LabError(`could not delete namespaces: ${failed.join(", ")}`);
  // Pods' resolv.conf files whose namespace went some other way (a crash between the two).
  for (const n of existsSync("/etc/netns") ? readdirSync("/etc/netns") : [])
    if (n.startsWith(labPrefix(lab))) rmSync(netnsEtcDir(n), { recursive: true, force: true });
  rmSync(labDir(lab), { recursive: true, force: true });
  return { namespaces: names.length, agentStopped };
}

/** Whether `pid` still runs. A zombie does not: it waits for its parent (init, once the command that
 * started the agent has exited) to collect it, which can take seconds. */
function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

export interface LabStatus {
  lab: string;
  exists: boolean;
  agents: ({ role: AgentRole; problem?: string } & Partial<AgentStatus>)[];
  state?: LabState;
  namespacesPresent: number;
  missing: string[];
}

export async function labStatus(options: { lab: string }): Promise<LabStatus> {
  checkLabName(options.lab);
  const lab = options.lab;
  const state = readLabState(lab);
  const present = new Set(listNamespaces(labPrefix(lab)));
  const status: LabStatus = {
    lab,
    exists: state !== undefined,
    namespacesPresent: present.size,
    missing: [],
    agents: [],
  };
  if (!state) return status;
  status.state = state;
  for (const p of state.pods) {
    const name = p.netns.slice("/run/netns/".length);
    if (!present.has(name)) status.missing.push(`${p.namespace}/${p.name}`);
  }
  for (const role of AGENT_ROLES) {
    if (runningAgentPid(lab, role) === undefined) {
      status.agents.push({ role, problem: `not running (podnet lab up --name ${lab} restarts it)` });
      continue;
    }
    try {
      const r = await agentRequest<{ status: AgentStatus }>(lab, role, { op: "status" }, 5_000);
      status.agents.push({ role, ...r.status });
    } catch (e) {
      status.agents.push({ role, problem: `not answering: ${(e as Error).message}` });
    }
  }
  return status;
}

export interface ServiceView {
  cluster: string;
  namespace: string;
  name: string;
  type: string;
  clusterIPs: string[];
  ports: string[];
  loadBalancerIPs: string[];
  externalIPs: string[];
  /** `ip:port` of each ready endpoint, per service port name ("" for an unnamed port). */
  endpoints: { pod?: string; ip: string; node?: string; ready: boolean; ports: Record<string, number> }[];
  /** Nodes whose rules the node agent has applied (all of them for a healthy lab). */
  programmedNodes: string[];
  proxied: boolean;
}

/** `services`: each Service with its VIPs, ports and endpoints, and the nodes programmed for it. */
export async function labServices(options: { lab: string }): Promise<ServiceView[]> {
  checkLabName(options.lab);
  const lab = options.lab;
  const state = readLabState(lab);
  if (!state) throw new LabError(`lab "${lab}" does not exist`);
  // The endpoints the node agent programs: attached pods only.
  const desired = attachedOnly(
    loadManifestSources(state.objects.length ? [storeSource(lab, state.objects)] : []).state,
    state,
  );
  let proxied: string[] = [];
  try {
    proxied = (await agentRequest<{ status: AgentStatus }>(lab, "node", { op: "status" }, 5_000)).status
      .proxied;
  } catch {}
  const views: ServiceView[] = [];
  for (const cluster of state.plan?.clusters ?? []) {
    const endpoints = deriveEndpoints(desired, cluster);
    const programmed = cluster.nodes
      .filter((n) => proxied.includes(`/run/netns/${netnsNames.node(lab, cluster.name, n.name)}`))
      .map((n) => n.name);
    for (const svc of cluster.services) {
      const eps =
        endpoints.find((e) => e.namespace === svc.namespace && e.name === svc.name)?.endpoints ?? [];
      views.push({
        cluster: cluster.name,
        namespace: svc.namespace,
        name: svc.name,
        type: svc.type,
        clusterIPs: svc.clusterIPs,
        ports: svc.ports.map(
          (p) =>
            `${p.name ? `${p.name}:` : ""}${p.port}${p.nodePort ? `:${p.nodePort}` : ""}/${p.protocol}→${p.targetPort}`,
        ),
        loadBalancerIPs: svc.loadBalancerIPs,
        externalIPs: svc.externalIPs,
        endpoints: eps.map((e) => ({ pod: e.pod, ip: e.ip, node: e.node, ready: e.ready, ports: e.ports })),
        programmedNodes: programmed,
        // Headless and ExternalName services are not proxied (no ClusterIP).
        proxied: svc.clusterIPs.length > 0,
      });
    }
  }
  return views;
}
