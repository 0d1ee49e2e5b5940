/**
 * The lab's figures (issue 4): `labUp` and `labDown` in-process, as `podnet lab up/down` run them, for
 * 3 nodes x 30 pods and 50 nodes x 1,000 pods (a Cluster with `spec.nodes` and one Deployment whose pods
 * declare containerPort 8080); the wall time of up and down and each phase converge reports. Root only.
 *   npm run bench:lab      (or: node dist/bench/lab.bench.js [--quick] [--pods N --nodes M])
 *   --quick: the 30-pod size only and 1 s iperf3 runs; --pods/--nodes: the big size.
 *
 * - The floor beside each size: as many namespaces as the lab made (pods + nodes + underlay + external
 *   hosts) and one veth pair per pod and node, made by ONE `ip -batch -` process (`netns add NAME`, then
 *   `link add X type veth peer name eth0 netns NAME`), removed by one batch of `netns del`: the kernel's
 *   cost of the same objects with no configuration, CNI or agents. Timed spawn to exit.
 * - Memory after up: VmRSS of the lab's two long-running processes (node and workloads agents, from
 *   /proc/PID/status) and this process's peak RSS (it ran `labUp`, as the CLI would).
 * - Pod-to-pod TCP throughput with Debian's iperf3 (3 s, 1 s with --quick): same node, across nodes
 *   routed, across nodes VXLAN (two small 2-node labs whose pods declare no port 5201, so the lab's
 *   responder leaves it free), and a bare veth pair between two namespaces of our own (addresses on both
 *   ends, no bridge, MTU 1500) as the limit. The server runs in the server pod's namespace (`-s -1`).
 * The kernel tears namespaces down asynchronously after `netns del` returns: a lab built at once after a
 * down would pay for that cleanup too, so the bench waits 5 s after every down (lab or floor).
 *
 * Targets (issue 4, for 1,000 pods): up <= 2x the floor and <= 15 s, down <= 3 s, the lab's processes
 * <= 2 GiB. They are printed beside the figures (met / not met); the run fails only if a pod fails.
 * Everything carries one random prefix (labs b<hex>-*, namespaces and links pnb<hex>*) and is removed in
 * `finally`, also on failure, SIGINT or SIGTERM: the labs by `labDown` (which stops their agents by PID),
 * our namespaces by `netns del`, the iperf3 servers we spawned by PID. Nothing listens in the root namespace.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { AGENT_ROLES, runningAgentPid } from "../src/lab/agent.js";
import { deleteNamespaces, listNamespaces } from "../src/lab/kernel.js";
import { type ChangeResult, labDown, labUp } from "../src/lab/lab.js";
import { labDir, labPrefix } from "../src/lab/names.js";
import type { AppliedPod } from "../src/lab/store.js";
import { ip, mib, sleep, table } from "./support.js";

const HEX = randomBytes(3).toString("hex");
/** Our own namespaces are `${PREFIX}-...`, our root-namespace veth ends `${PREFIX}v<n>`. */
const PREFIX = `pnb${HEX}`;
const IPERF = "/usr/bin/iperf3";
const IPERF_PORT = 5201;
const SETTLE_MS = 5_000;
const GIB = 1024 ** 3;
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const PATH = process.env.PATH ?? DEFAULT_PATH;

// ---- arguments -------------------------------------------------------------------------------------------

interface Options {
  quick: boolean;
  pods: number;
  nodes: number;
}

function usage(message: string): never {
  console.error(
    `lab.bench: ${message}\nusage: node dist/bench/lab.bench.js [--quick] [--pods N --nodes M]   (big size, default 1000 pods on 50 nodes)`,
  );
  process.exit(2);
}

function parseArgs(argv: string[]): Options {
  const options: Options = { quick: false, pods: 1000, nodes: 50 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    const [flag, inline] = arg.startsWith("--") && arg.includes("=") ? arg.split("=", 2) : [arg, undefined];
    if (flag === "--quick") options.quick = true;
    else if (flag === "--pods" || flag === "--nodes") {
      const n = Number(inline ?? argv[++i]);
      if (!Number.isInteger(n) || n < 1 || n > 20_000)
        usage(`${flag} must be a whole number from 1 to 20000`);
      if (flag === "--pods") options.pods = n;
      else options.nodes = n;
    } else if (flag === "-h" || flag === "--help") usage("help");
    else usage(`unknown argument ${JSON.stringify(arg)}`);
  }
  if (options.nodes > 250) usage("--nodes must be at most 250 (one /24 pod block per node in a /16)");
  return options;
}

// ---- resources: everything this run creates, and its removal -------------------------------------------

const labs = new Set<string>();
const servers = new Set<ChildProcess>();
let cleaning: Promise<string[]> | undefined;
/** The exit code once a signal came: the run's own errors after it are its consequence, not news. */
let interrupted: number | undefined;

function ourNamespaces(): string[] {
  return listNamespaces(`${PREFIX}-`);
}

function ourRootLinks(): string[] {
  const links = JSON.parse(ip(["-j", "link", "show"]) || "[]") as { ifname?: string }[];
  return links.map((l) => l.ifname ?? "").filter((n) => n.startsWith(`${PREFIX}v`));
}

function deleteOurNamespaces(): void {
  const names = ourNamespaces();
  if (names.length > 0) ip(["-force", "-batch", "-"], names.map((n) => `netns del ${n}\n`).join(""));
}

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function killServers(): void {
  for (const child of servers) {
    if (child.pid !== undefined && alive(child)) {
      try {
        process.kill(child.pid, "SIGKILL");
      } catch {}
    }
  }
  servers.clear();
}

/** The lab's agents this process started that have not yet written their PID file (an up interrupted
 * while they start): our children whose command line names the lab. */
function startingAgents(lab: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${entry}/status`, "utf8"))?.[1];
      if (Number(ppid) !== process.pid) continue;
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      const i = cmdline.indexOf("--name");
      if (cmdline.includes("agent") && cmdline[i + 1] === lab) pids.push(Number(entry));
    } catch {}
  }
  return pids;
}

/** Takes one lab down; whatever `labDown` could not remove (an interrupted up) goes by name and PID. */
async function removeLab(lab: string): Promise<string[]> {
  try {
    await labDown({ lab });
  } catch {}
  for (const pid of startingAgents(lab)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
  for (const role of AGENT_ROLES) {
    const pid = runningAgentPid(lab, role); // only a process whose command line names this lab and role
    if (pid !== undefined) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
  }
  await deleteNamespaces(listNamespaces(labPrefix(lab)));
  rmSync(labDir(lab), { recursive: true, force: true });
  const left = listNamespaces(labPrefix(lab)).map((n) => `netns ${n}`);
  if (existsSync(labDir(lab))) left.push(`dir ${labDir(lab)}`);
  for (const role of AGENT_ROLES) {
    const pid = runningAgentPid(lab, role);
    if (pid !== undefined) left.push(`${role} agent ${pid}`);
  }
  for (const pid of startingAgents(lab)) left.push(`agent ${pid}`);
  if (left.length === 0) labs.delete(lab);
  return left;
}

/** Removes everything of ours still there; runs once (later callers get the same answer). */
function cleanup(): Promise<string[]> {
  cleaning ??= (async () => {
    const left: string[] = [];
    killServers();
    for (const lab of [...labs]) left.push(...(await removeLab(lab)));
    try {
      deleteOurNamespaces();
      const links = ourRootLinks();
      for (const link of links) {
        try {
          ip(["link", "del", link]);
        } catch {}
      }
      left.push(...ourNamespaces().map((n) => `netns ${n}`), ...ourRootLinks().map((l) => `link ${l}`));
    } catch (error) {
      left.push(`(could not list namespaces or links: ${(error as Error).message})`);
    }
    return left;
  })();
  return cleaning;
}

const SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;
for (const [signal, number] of Object.entries(SIGNALS)) {
  process.on(signal, () => {
    if (interrupted !== undefined) return;
    interrupted = 128 + number;
    console.error(`\nlab.bench: ${signal}, cleaning up`);
    void cleanup().then((left) => {
      if (left.length > 0) console.error(`lab.bench: could not remove: ${left.join(", ")}`);
      process.exit(128 + number);
    });
  });
}

// ---- helpers ---------------------------------------------------------------------------------------------

const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const verdict = (ok: boolean) => (ok ? "met" : "NOT MET");

/** Whether the kernel is still tearing down deleted namespaces: a kworker runs the netns workqueue. */
function netnsCleanupRunning(): boolean {
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      // "kworker/u8:4+netns" while it runs the netns workqueue (not the idle rescuer "kworker/R-netns").
      if (readFileSync(`/proc/${pid}/comm`, "utf8").includes("+netns")) return true;
    } catch {}
  }
  return false;
}

/**
 * Waits until the kernel has finished the teardown of what a `down` deleted (it runs in a kworker for
 * seconds to minutes after `ip netns del` returned), and at least SETTLE_MS: otherwise the next run
 * measures that teardown too (seen: a floor of 8.6 s instead of 1 s, pods 18 s instead of 7.4 s).
 */
async function settle(): Promise<void> {
  await sleep(SETTLE_MS);
  let quiet = 0;
  for (let waited = 0; waited < 300_000 && quiet < 10; waited += 200) {
    quiet = netnsCleanupRunning() ? 0 : quiet + 1;
    await sleep(200);
  }
}

/** A /proc/PID/status field in bytes (VmRSS, VmHWM). */
function procStatusBytes(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

// ---- manifests -------------------------------------------------------------------------------------------

function sizeManifest(nodes: number, pods: number): string {
  return `apiVersion: podnet.dev/v1alpha1
kind: Cluster
metadata: {name: c}
spec:
  nodeCIDR: 172.29.0.0/24
  podCIDRs: [10.90.0.0/16]
  serviceCIDRs: [10.91.0.0/16]
  nodeCIDRMaskSize: 24
  nodes: ${nodes}
  fabric: {mode: routed}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: ${pods}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: x, ports: [{containerPort: 8080}]}]
`;
}

/** Two nodes; s1 and c1 on n1, c2 on n2. No pod declares port 5201 (the responder leaves it to iperf3). */
function throughputManifest(mode: "routed" | "vxlan"): string {
  const pod = (name: string, node: string) => `---
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: default, labels: {app: ${name}}}
spec:
  nodeName: ${node}
  containers: [{name: main, image: x, ports: [{containerPort: 8080}]}]
`;
  return `apiVersion: podnet.dev/v1alpha1
kind: Cluster
metadata: {name: c}
spec:
  nodeCIDR: 172.29.1.0/24
  podCIDRs: [10.92.0.0/16]
  serviceCIDRs: [10.93.0.0/16]
  nodeCIDRMaskSize: 24
  fabric: {mode: ${mode}}
---
apiVersion: v1
kind: Node
metadata: {name: n1}
---
apiVersion: v1
kind: Node
metadata: {name: n2}
${pod("s1", "n1")}${pod("c1", "n1")}${pod("c2", "n2")}`;
}

// ---- a lab: up, memory, down -----------------------------------------------------------------------------

async function up(lab: string, file: string, text: string): Promise<{ result: ChangeResult; ms: number }> {
  labs.add(lab);
  const t0 = performance.now();
  const result = await labUp({ lab }, [{ file, text }]);
  const ms = performance.now() - t0;
  if (result.report.failures.length > 0) {
    const shown = result.report.failures.slice(0, 5).map((f) => `  ${f.pod}: ${f.error}`);
    throw new Error(
      `lab ${lab}: ${result.report.failures.length} pods failed to attach\n${shown.join("\n")}`,
    );
  }
  return { result, ms };
}

async function down(lab: string): Promise<number> {
  const t0 = performance.now();
  await labDown({ lab });
  const ms = performance.now() - t0;
  labs.delete(lab);
  return ms;
}

interface Memory {
  agents: { role: string; pid: number; rss: number; hwm: number }[];
  cliPeak: number;
  total: number;
}

function memory(lab: string): Memory {
  const agents = AGENT_ROLES.map((role) => {
    const pid = runningAgentPid(lab, role);
    if (pid === undefined) throw new Error(`lab ${lab}: the ${role} agent is not running after up`);
    return { role, pid, rss: procStatusBytes(pid, "VmRSS"), hwm: procStatusBytes(pid, "VmHWM") };
  });
  const cliPeak = process.resourceUsage().maxRSS * 1024;
  return { agents, cliPeak, total: agents.reduce((s, a) => s + a.rss, 0) + cliPeak };
}

// ---- the floor -------------------------------------------------------------------------------------------

async function floor(namespaces: number, veths: number): Promise<{ upMs: number; downMs: number }> {
  const names = Array.from({ length: namespaces }, (_, i) => `${PREFIX}-f${i}`);
  const lines = [
    ...names.map((n) => `netns add ${n}`),
    ...names.slice(0, veths).map((n, i) => `link add ${PREFIX}v${i} type veth peer name eth0 netns ${n}`),
  ];
  let t0 = performance.now();
  ip(["-batch", "-"], `${lines.join("\n")}\n`);
  const upMs = performance.now() - t0;
  t0 = performance.now();
  ip(["-batch", "-"], names.map((n) => `netns del ${n}\n`).join(""));
  const downMs = performance.now() - t0;
  return { upMs, downMs };
}

// ---- throughput ------------------------------------------------------------------------------------------

const nsName = (path: string) => path.slice("/run/netns/".length);

async function listening(ns: string): Promise<boolean> {
  const out = execFileSync("ip", ["netns", "exec", ns, "ss", "-Hltn", `sport = :${IPERF_PORT}`], {
    encoding: "utf8",
    env: { PATH },
  });
  return out.trim().length > 0;
}

/** The median of three iperf3 runs: one run of one stream varies by up to 2x here (2 CPUs shared). */
async function iperf(serverNs: string, clientNs: string, serverIp: string, seconds: number): Promise<number> {
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) runs.push(await iperfOnce(serverNs, clientNs, serverIp, seconds));
  return runs.sort((a, b) => a - b)[1] as number;
}

/** iperf3 from `clientNs` to a server in `serverNs` at `serverIp`; Gbit/s received, the first second
 * (TCP's slow start) left out. */
async function iperfOnce(
  serverNs: string,
  clientNs: string,
  serverIp: string,
  seconds: number,
): Promise<number> {
  // `ip netns exec` execs iperf3 itself: the PID we hold is the server's.
  const server = spawn("ip", ["netns", "exec", serverNs, IPERF, "-s", "-1", "-p", String(IPERF_PORT)], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { PATH },
  });
  servers.add(server);
  let serverErr = "";
  server.stderr?.on("data", (b: Buffer) => {
    serverErr += b.toString();
  });
  const exited = new Promise<void>((resolve) => server.once("close", () => resolve()));
  try {
    const deadline = Date.now() + 10_000;
    while (!(await listening(serverNs))) {
      if (!alive(server)) throw new Error(`iperf3 server in ${serverNs} exited: ${serverErr.trim()}`);
      if (Date.now() > deadline) throw new Error(`iperf3 server in ${serverNs} did not listen within 10 s`);
      await sleep(50);
    }
    const out = execFileSync(
      "ip",
      [
        "netns",
        "exec",
        clientNs,
        IPERF,
        "-c",
        serverIp,
        "-p",
        String(IPERF_PORT),
        "-t",
        String(seconds),
        "-O",
        "1",
        "-J",
      ],
      { encoding: "utf8", env: { PATH }, timeout: (seconds + 20) * 1000, maxBuffer: 16 * 1024 * 1024 },
    );
    const json = JSON.parse(out) as { end?: { sum_received?: { bits_per_second?: number } }; error?: string };
    const bps = json.end?.sum_received?.bits_per_second;
    if (bps === undefined) throw new Error(`iperf3 ${clientNs} -> ${serverIp}: ${json.error ?? "no result"}`);
    await Promise.race([exited, sleep(5_000)]);
    return bps / 1e9;
  } finally {
    if (server.pid !== undefined && alive(server)) {
      try {
        process.kill(server.pid, "SIGKILL");
      } catch {}
    }
    servers.delete(server);
  }
}

async function bareVeth(seconds: number): Promise<number> {
  const a = `${PREFIX}-va`;
  const b = `${PREFIX}-vb`;
  ip(
    ["-batch", "-"],
    [
      `netns add ${a}`,
      `netns add ${b}`,
      `link add veth0 netns ${a} type veth peer name veth0 netns ${b}`,
      "",
    ].join("\n"),
  );
  try {
    for (const [ns, addr] of [
      [a, "10.254.0.1/24"],
      [b, "10.254.0.2/24"],
    ] as const) {
      ip(["-n", ns, "-batch", "-"], `link set lo up\naddr add ${addr} dev veth0\nlink set veth0 up\n`);
    }
    return await iperf(a, b, "10.254.0.1", seconds);
  } finally {
    ip(["-batch", "-"], `netns del ${a}\nnetns del ${b}\n`);
  }
}

async function throughputLab(mode: "routed" | "vxlan", seconds: number, rows: string[][]): Promise<void> {
  const lab = `b${HEX}-${mode}`;
  const { result } = await up(lab, `${mode}.yaml`, throughputManifest(mode));
  try {
    const pod = (name: string): AppliedPod => {
      const p = result.state.pods.find((x) => x.name === name);
      if (!p?.ips[0]) throw new Error(`lab ${lab}: pod ${name} is not attached`);
      return p;
    };
    const [s1, c1, c2] = [pod("s1"), pod("c1"), pod("c2")];
    const mtu = result.state.plan?.clusters[0]?.fabric.podMTU;
    const g1 = await iperf(nsName(s1.netns), nsName(c1.netns), s1.ips[0] as string, seconds);
    rows.push([
      `same node (${mode} lab)`,
      `${c1.name}@${c1.node} -> ${s1.name}@${s1.node}`,
      `${mtu}`,
      g1.toFixed(2),
    ]);
    const g = await iperf(nsName(s1.netns), nsName(c2.netns), s1.ips[0] as string, seconds);
    rows.push([
      `across nodes, ${mode}`,
      `${c2.name}@${c2.node} -> ${s1.name}@${s1.node}`,
      `${mtu}`,
      g.toFixed(2),
    ]);
  } finally {
    await down(lab);
  }
}

// ---- the benchmark ---------------------------------------------------------------------------------------

interface SizeFigures {
  label: string;
  pods: number;
  nodes: number;
  upMs: number;
  phases: { phase: string; detail: string; ms: number }[];
  downMs: number;
  namespaces: number;
  veths: number;
  floorUpMs: number;
  floorDownMs: number;
  memory: Memory;
}

async function size(name: string, nodes: number, pods: number): Promise<SizeFigures> {
  const label = `${nodes} nodes x ${pods.toLocaleString("en-US")} pods`;
  const lab = `b${HEX}-${name}`;
  process.stdout.write(`  ${label}: up ...`);
  const { result, ms: upMs } = await up(lab, `${lab}.yaml`, sizeManifest(nodes, pods));
  const namespaces = listNamespaces(labPrefix(lab)).length;
  const nodeCount = (result.state.plan?.clusters ?? []).reduce((s, c) => s + c.nodes.length, 0);
  const veths = result.state.pods.filter((p) => !p.hostNetwork).length + nodeCount;
  // The manifest's pods, and the cluster DNS pod the lab adds (the floor makes its namespace and veth too).
  const expected = pods + (result.state.plan?.clusters.length ?? 0);
  if (result.state.pods.length !== expected)
    throw new Error(`lab ${lab}: ${result.state.pods.length} pods attached, expected ${expected}`);
  const mem = memory(lab);
  process.stdout.write(` ${secs(upMs)}; down ...`);
  const downMs = await down(lab);
  process.stdout.write(` ${secs(downMs)}; settle; floor ...`);
  await settle();
  const fl = await floor(namespaces, veths);
  process.stdout.write(` ${secs(fl.upMs)}; settle\n`);
  await settle();
  return {
    label,
    pods,
    nodes,
    upMs,
    phases: result.report.phases,
    downMs,
    namespaces,
    veths,
    floorUpMs: fl.upMs,
    floorDownMs: fl.downMs,
    memory: mem,
  };
}

function report(sizes: SizeFigures[]): void {
  const phaseNames = [...new Set(sizes.flatMap((s) => s.phases.map((p) => p.phase)))];
  const col = (f: (s: SizeFigures) => string) => sizes.map(f);
  const rows: string[][] = [
    ["namespaces / veth pairs", ...col((s) => `${s.namespaces} / ${s.veths}`)],
    ["up (wall)", ...col((s) => secs(s.upMs))],
    ...phaseNames.map((name) => [
      `  phase ${name}`,
      ...col((s) => {
        const p = s.phases.find((x) => x.phase === name);
        return p ? secs(p.ms) : "-";
      }),
    ]),
    ["  load + plan + lock (rest)", ...col((s) => secs(s.upMs - s.phases.reduce((sum, p) => sum + p.ms, 0)))],
    ["down (wall)", ...col((s) => secs(s.downMs))],
    ["floor up (one ip -batch)", ...col((s) => secs(s.floorUpMs))],
    ["floor down (one netns del batch)", ...col((s) => secs(s.floorDownMs))],
    ["up / floor up", ...col((s) => `${(s.upMs / s.floorUpMs).toFixed(2)}x`)],
    ["down / floor down", ...col((s) => `${(s.downMs / s.floorDownMs).toFixed(2)}x`)],
  ];
  console.log(`\nUp and down, routed fabric, one Deployment (containerPort 8080)`);
  console.log(table(["", ...col((s) => s.label)], rows));
  console.log("\n  phase details:");
  for (const s of sizes)
    for (const p of s.phases) console.log(`    ${s.label}: ${p.phase}: ${p.detail} (${secs(p.ms)})`);

  const memRows: string[][] = [
    ...AGENT_ROLES.map((role) => [
      `${role} agent VmRSS (peak VmHWM)`,
      ...col((s) => {
        const a = s.memory.agents.find((x) => x.role === role);
        return a ? `${mib(a.rss)} (${mib(a.hwm)})` : "-";
      }),
    ]),
    ["the CLI that ran up (peak RSS)", ...col((s) => mib(s.memory.cliPeak))],
    ["sum", ...col((s) => mib(s.memory.total))],
  ];
  console.log(`\nMemory of the lab's processes after up`);
  console.log(table(["", ...col((s) => s.label)], memRows));

  const big = sizes[sizes.length - 1] as SizeFigures;
  const ratio = big.upMs / big.floorUpMs;
  console.log(`\nTargets (issue 4, for 1,000 pods), measured at ${big.label}:`);
  console.log(
    table(
      ["target", "measured", "verdict"],
      [
        ["up <= 2x the floor", `${ratio.toFixed(2)}x`, verdict(ratio <= 2)],
        ["up <= 15 s", secs(big.upMs), verdict(big.upMs <= 15_000)],
        ["down <= 3 s", secs(big.downMs), verdict(big.downMs <= 3_000)],
        ["lab processes <= 2 GiB", mib(big.memory.total), verdict(big.memory.total <= 2 * GIB)],
      ],
    ),
  );
  if (big.pods !== 1000) console.log(`  (the targets are for 1,000 pods; this size has ${big.pods})`);
}

async function throughput(seconds: number): Promise<void> {
  console.log(`\nPod-to-pod TCP throughput, iperf3 -t ${seconds} -O 1 (one stream), median of 3 runs`);
  if (!existsSync(IPERF)) {
    console.log(`  skipped: ${IPERF} is missing (apt-get install iperf3)`);
    return;
  }
  const rows: string[][] = [];
  process.stdout.write("  bare veth ...");
  const bare = await bareVeth(seconds);
  rows.push(["bare veth pair (limit)", "ns b -> ns a, no bridge", "1500", bare.toFixed(2)]);
  process.stdout.write(" routed lab ...");
  await throughputLab("routed", seconds, rows);
  await settle();
  process.stdout.write(" vxlan lab ...");
  await throughputLab("vxlan", seconds, rows);
  process.stdout.write(" done\n");
  console.log(table(["path", "client -> server", "pod MTU", "Gbit/s"], rows));
  for (const r of rows.slice(1))
    console.log(`  ${r[0]}: ${((Number(r[3]) / bare) * 100).toFixed(0)}% of the bare veth pair`);
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) usage("needs root (network namespaces)");
  console.log(
    `podnet lab benchmark: prefix b${HEX}- (labs) / ${PREFIX}- (own namespaces); node ${process.version}, Linux ${release()}, ${cpus().length} CPUs, ${mib(totalmem())} RAM`,
  );
  const sizes: SizeFigures[] = [];
  await settle(); // what earlier runs deleted may still be torn down
  sizes.push(await size("small", 3, 30));
  if (!options.quick) sizes.push(await size("big", options.nodes, options.pods));
  report(sizes);
  await throughput(options.quick ? 1 : 3);
}

let exitCode = 0;
try {
  await main();
} catch (error) {
  if (interrupted === undefined) console.error(`\nlab.bench: ${(error as Error).message}`);
  exitCode = 1;
} finally {
  const left = await cleanup();
  if (left.length > 0) {
    console.error(`lab.bench: could not remove: ${left.join(", ")}`);
    exitCode = 1;
  } else {
    console.log(
      `\n  cleanup: labs b${HEX}-*, namespaces and links ${PREFIX}* and the iperf3 servers removed`,
    );
  }
}
process.exit(interrupted ?? exitCode);
