/**
 * CNI ADD/DEL latency and 8-way ADD throughput: podnet + podnet-ipam against Debian's reference
 * bridge + host-local, same conditions, same run (calls alternate between the two, so machine noise hits
 * both). Target: podnet's p50 ADD at most 1.5x the reference's. Root only.
 *   npx tsc -p . && node dist/bench/cni.bench.js [--pods N]        (N pods per contender, default 200)
 *
 * Each contender runs in its own "node" network namespace with its own bridge; every pod is a namespace
 * of its own, created before the timed part (one `ip -batch`). A plugin is run as a runtime runs it:
 * `ip netns exec NODE PLUGIN`, CNI_* in a clean environment (PATH and CNI_* only), the configuration on
 * stdin; a call is timed from spawn to exit. Everything carries one random prefix (pnb<hex>-) and is
 * removed at the end, also on failure, SIGINT or SIGTERM: namespaces (which takes the bridges and veths
 * with them) and the temporary directory (plugins, IPAM stores). Nothing runs in the root namespace.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { cpus, release, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { installPlugins } from "../src/cni/install.js";
import { ip, percentile, table } from "./support.js";

const REFERENCE_BIN = "/usr/lib/cni";
const CNI_VERSION = "1.0.0";
const WORKERS = 8;
const VERSION_RUNS = 30;
const CALL_TIMEOUT_MS = 60_000;
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const PATH = process.env.PATH ?? DEFAULT_PATH;

const PREFIX = `pnb${randomBytes(3).toString("hex")}`;

function usage(message: string): never {
  console.error(`cni.bench: ${message}\nusage: node dist/bench/cni.bench.js [--pods N]   (1 to 2000)`);
  process.exit(2);
}

function parseArgs(argv: string[]): { pods: number } {
  let pods = 200;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--pods" || arg?.startsWith("--pods=")) {
      const value = arg === "--pods" ? argv[++i] : arg.slice("--pods=".length);
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1 || n > 2000) usage(`--pods must be a whole number from 1 to 2000`);
      pods = n;
    } else if (arg === "-h" || arg === "--help") usage("help");
    else usage(`unknown argument ${JSON.stringify(arg)}`);
  }
  return { pods };
}

// ---- resources: everything this run creates, and its removal -------------------------------------------

const live = new Set<ChildProcess>();
const namespaces: string[] = [];
let tempDir: string | undefined;
let cleaned = false;

function ourNamespaces(): string[] {
  return ip(["netns", "list"])
    .split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter((name) => name.startsWith(`${PREFIX}-`));
}

/** Creates network namespaces with one `ip -batch` (they are recorded first, so a partial failure is
 * cleaned up too). */
function addNamespaces(names: string[]): void {
  for (const name of names) {
    if (!name.startsWith(`${PREFIX}-`)) throw new Error(`refusing to create namespace ${name}`);
    namespaces.push(name);
  }
  ip(["-batch", "-"], names.map((n) => `netns add ${n}\n`).join(""));
}

/** Kills the children still running (by PID, ours only), deletes our namespaces, removes the temp dir.
 * Synchronous and idempotent: called from `finally` and from signal handlers. Returns what is left. */
function cleanup(): string[] {
  if (cleaned) return [];
  cleaned = true;
  for (const child of live) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, "SIGKILL");
      } catch {}
    }
  }
  const left: string[] = [];
  try {
    const existing = ourNamespaces();
    if (existing.length > 0) {
      try {
        ip(["-force", "-batch", "-"], existing.map((n) => `netns del ${n}\n`).join(""));
      } catch {}
    }
    left.push(...ourNamespaces().map((n) => `netns ${n}`));
  } catch (error) {
    left.push(`(could not list namespaces: ${(error as Error).message})`);
  }
  if (tempDir) {
    rmSync(tempDir, { recursive: true, force: true });
    if (existsSync(tempDir)) left.push(`dir ${tempDir}`);
  }
  return left;
}

const SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;
for (const [signal, number] of Object.entries(SIGNALS)) {
  process.on(signal, () => {
    console.error(`\ncni.bench: ${signal}, cleaning up`);
    const left = cleanup();
    if (left.length > 0) console.error(`cni.bench: could not remove: ${left.join(", ")}`);
    process.exit(128 + number);
  });
}

// ---- running a plugin ------------------------------------------------------------------------------------

interface Call {
  ms: number;
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Runs `plugin` inside the node namespace as a runtime does; `ms` is spawn to exit. */
function runPlugin(node: string, plugin: string, env: Record<string, string>, stdin: string): Promise<Call> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn("ip", ["netns", "exec", node, plugin], {
      env: { PATH, ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    live.add(child);
    let ms = 0;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, "SIGKILL");
    }, CALL_TIMEOUT_MS);
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.stdin.on("error", () => {}); // a plugin may exit without reading stdin
    child.on("exit", () => {
      ms = performance.now() - started;
    });
    child.on("error", (error) => {
      clearTimeout(timer);
      live.delete(child);
      reject(error);
    });
    child.on("close", (exitCode, signal) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({
        ms,
        exitCode,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      });
    });
    child.stdin.end(stdin);
  });
}

// ---- the contenders --------------------------------------------------------------------------------------

interface Contender {
  key: string;
  label: string;
  /** Letter in namespace names. */
  tag: string;
  node: string;
  bridge: string;
  binDir: string;
  plugin: string;
  ipamPlugin: string;
  dataDir: string;
  network: string;
  config: Record<string, unknown>;
}

function contender(
  key: string,
  label: string,
  tag: string,
  binDir: string,
  plugin: string,
  ipamPlugin: string,
  octet: number,
  dir: string,
): Contender {
  const node = `${PREFIX}-${tag}node`;
  const bridge = `${PREFIX}-br`; // 13 characters; each node has its own
  const dataDir = join(dir, `ipam-${key}`);
  const network = "bench";
  return {
    key,
    label,
    tag,
    node,
    bridge,
    binDir,
    plugin,
    ipamPlugin,
    dataDir,
    network,
    config: {
      cniVersion: CNI_VERSION,
      name: network,
      type: plugin,
      bridge,
      mtu: 1500,
      isGateway: true,
      isDefaultGateway: true,
      hairpinMode: true,
      ipMasq: false,
      ipam: {
        type: ipamPlugin,
        ranges: [[{ subnet: `10.${octet}.0.0/16`, gateway: `10.${octet}.0.1` }]],
        dataDir,
      },
    },
  };
}

function cniEnv(c: Contender, command: string, pod?: string): Record<string, string> {
  const env: Record<string, string> = { CNI_COMMAND: command, CNI_PATH: c.binDir };
  if (pod) {
    env.CNI_CONTAINERID = pod;
    env.CNI_NETNS = `/run/netns/${pod}`;
    env.CNI_IFNAME = "eth0";
  }
  return env;
}

function failure(c: Contender, what: string, call: Call): Error {
  const how = call.signal ? `signal ${call.signal}` : `exit code ${call.exitCode}`;
  return new Error(
    `${c.label}: ${what} failed (${how})\nstdout: ${call.stdout.trim()}\nstderr: ${call.stderr.trim()}`,
  );
}

/** ADD of one pod; returns the duration and the pod's IPv4 address. */
async function add(c: Contender, pod: string): Promise<{ ms: number; address: string; result: unknown }> {
  const call = await runPlugin(
    c.node,
    join(c.binDir, c.plugin),
    cniEnv(c, "ADD", pod),
    JSON.stringify(c.config),
  );
  if (call.exitCode !== 0) throw failure(c, `ADD ${pod}`, call);
  const result = JSON.parse(call.stdout) as { ips?: { address?: string }[] };
  const address = result.ips?.[0]?.address;
  if (!address) throw failure(c, `ADD ${pod} (no address in the result)`, call);
  return { ms: call.ms, address, result };
}

/** DEL of one pod, with the ADD result as prevResult, as libcni does at 0.4.0 and later. */
async function del(c: Contender, pod: string, prevResult: unknown): Promise<number> {
  const config = JSON.stringify({ ...c.config, prevResult });
  const call = await runPlugin(c.node, join(c.binDir, c.plugin), cniEnv(c, "DEL", pod), config);
  if (call.exitCode !== 0) throw failure(c, `DEL ${pod}`, call);
  return call.ms;
}

async function version(c: Contender, plugin: string): Promise<number> {
  const call = await runPlugin(
    c.node,
    join(c.binDir, plugin),
    cniEnv(c, "VERSION"),
    JSON.stringify({ cniVersion: CNI_VERSION }),
  );
  if (call.exitCode !== 0) throw failure(c, `VERSION of ${plugin}`, call);
  const info = JSON.parse(call.stdout) as { supportedVersions?: string[] };
  if (!info.supportedVersions?.includes(CNI_VERSION))
    throw failure(c, `VERSION of ${plugin} (does not speak ${CNI_VERSION})`, call);
  return call.ms;
}

/** Runs `count` jobs with at most `workers` at a time; returns the wall time in ms. */
async function pool(count: number, workers: number, job: (index: number) => Promise<void>): Promise<number> {
  const started = performance.now();
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < count) {
      try {
        await job(next++);
      } catch (error) {
        failed = true; // the other workers finish their call and stop
        throw error;
      }
    }
  };
  const settled = await Promise.allSettled(Array.from({ length: Math.min(workers, count) }, worker));
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (rejected) throw rejected.reason;
  return performance.now() - started;
}

// ---- checks and figures ----------------------------------------------------------------------------------

function bridgePorts(c: Contender): number {
  const links = JSON.parse(ip(["-n", c.node, "-j", "link", "show", "master", c.bridge]) || "[]") as unknown[];
  return links.length;
}

/** Address files in the IPAM store (podnet-ipam and host-local both name one file per address). */
function allocations(c: Contender): number {
  const dir = join(c.dataDir, c.network);
  if (!existsSync(dir)) return 0;
  return readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).length;
}

function duplicates(addresses: string[]): string[] {
  const seen = new Set<string>();
  const dups = new Set<string>();
  for (const a of addresses) (seen.has(a) ? dups : seen).add(a);
  return [...dups];
}

function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(`check failed: ${message}`);
}

/** Nearest-rank percentile. */
const mean = (values: number[]) => values.reduce((s, v) => s + v, 0) / values.length;
const ms = (v: number) => `${v.toFixed(1)} ms`;

function referenceVersion(): string {
  try {
    const line = execFileSync("dpkg-query", ["-W", "containernetworking-plugins"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    return line.trim().split("\t")[1] ?? "unknown version";
  } catch {
    return "unknown version";
  }
}

// ---- the benchmark ---------------------------------------------------------------------------------------

interface Figures {
  add: number[];
  del: number[];
  concurrentAdd: number[];
  concurrentMs: number;
  /** ADDs per second of each concurrent block. */
  blockRates: number[];
  versionPlugin: number[];
  versionIpam: number[];
}

/** Starts `podnet cni serve` inside the contender's node namespace (killed by PID in cleanup). */
async function startCniServer(c: Contender): Promise<void> {
  const cli = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
  const child = spawn("ip", ["netns", "exec", c.node, process.execPath, cli, "cni", "serve"], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { PATH },
  });
  live.add(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`podnet cni serve exited (${code}) before serving`)));
  });
}

async function main(): Promise<void> {
  const { pods } = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) usage("needs root (network namespaces)");
  for (const exe of ["bridge", "host-local"])
    if (!existsSync(join(REFERENCE_BIN, exe)))
      usage(`${REFERENCE_BIN}/${exe} is missing (apt install containernetworking-plugins)`);

  tempDir = mkdtempSync(join(tmpdir(), `${PREFIX}-`));
  const podnetBin = join(tempDir, "bin");
  mkdirSync(podnetBin);
  installPlugins(podnetBin);

  const contenders = [
    contender("podnet", "podnet + podnet-ipam", "a", podnetBin, "podnet", "podnet-ipam", 231, tempDir),
    // The same executables; the node runs `podnet cni serve`, so they answer through it (no Node start).
    contender("server", "podnet via node CNI server", "c", podnetBin, "podnet", "podnet-ipam", 233, tempDir),
    contender(
      "reference",
      "reference bridge + host-local",
      "b",
      REFERENCE_BIN,
      "bridge",
      "host-local",
      232,
      tempDir,
    ),
  ];
  const figures = new Map<string, Figures>(
    contenders.map((c) => [
      c.key,
      {
        add: [],
        del: [],
        concurrentAdd: [],
        concurrentMs: 0,
        blockRates: [],
        versionPlugin: [],
        versionIpam: [],
      },
    ]),
  );
  const fig = (c: Contender) => figures.get(c.key) as Figures;
  /** The contenders in alternating order: round 0 podnet first, round 1 reference first, ... */
  const inTurn = (round: number) => (round % 2 === 0 ? contenders : [...contenders].reverse());

  console.log(`CNI benchmark: ${pods} pods per contender, cniVersion ${CNI_VERSION}, prefix ${PREFIX}-`);
  console.log(
    `  node ${process.version}, Linux ${release()}, ${cpus().length} CPUs; reference plugins: Debian containernetworking-plugins ${referenceVersion()}`,
  );
  if (process.env.NODE_EXTRA_CA_CERTS !== undefined) {
    console.log(
      "  note: NODE_EXTRA_CA_CERTS is set in this environment; the plugins run without it (PATH and CNI_* only, as podnet's CniRuntime runs them): with it, every podnet call would pay ~100 ms more at node start",
    );
  }

  // Node namespaces; a warm-up ADD + DEL per contender creates the bridge and warms the caches.
  addNamespaces(contenders.map((c) => c.node));
  for (const c of contenders) ip(["-n", c.node, "link", "set", "lo", "up"]);
  await startCniServer(contenders.find((c) => c.key === "server") as Contender);
  addNamespaces(contenders.map((c) => `${PREFIX}-${c.tag}warm`));
  for (const c of contenders) {
    const pod = `${PREFIX}-${c.tag}warm`;
    const { result } = await add(c, pod);
    await del(c, pod, result);
  }

  // The process floor: VERSION of every plugin, alternating.
  process.stdout.write(`  VERSION x${VERSION_RUNS} per plugin ...`);
  for (let round = 0; round < VERSION_RUNS; round++) {
    for (const c of inTurn(round)) {
      fig(c).versionPlugin.push(await version(c, c.plugin));
      fig(c).versionIpam.push(await version(c, c.ipamPlugin));
    }
  }

  // Sequential: ADD every pod, then DEL every pod, the contenders alternating call by call.
  const seqPod = (c: Contender, i: number) => `${PREFIX}-${c.tag}s${i}`;
  addNamespaces(contenders.flatMap((c) => Array.from({ length: pods }, (_, i) => seqPod(c, i))));
  process.stdout.write(` sequential ADD x${pods} ...`);
  const seqResults = new Map<string, { address: string; result: unknown }[]>(
    contenders.map((c) => [c.key, []]),
  );
  for (let i = 0; i < pods; i++) {
    for (const c of inTurn(i)) {
      const r = await add(c, seqPod(c, i));
      fig(c).add.push(r.ms);
      seqResults.get(c.key)?.push(r);
    }
  }
  for (const c of contenders) {
    const addresses = (seqResults.get(c.key) ?? []).map((r) => r.address);
    check(duplicates(addresses).length === 0, `${c.label}: duplicate addresses ${duplicates(addresses)}`);
    check(bridgePorts(c) === pods, `${c.label}: ${bridgePorts(c)} bridge ports after ${pods} ADDs`);
    check(allocations(c) === pods, `${c.label}: ${allocations(c)} IPAM allocations after ${pods} ADDs`);
  }
  process.stdout.write(` DEL x${pods} ...`);
  for (let i = 0; i < pods; i++) {
    for (const c of inTurn(i)) {
      const prev = seqResults.get(c.key)?.[i]?.result;
      fig(c).del.push(await del(c, seqPod(c, i), prev));
    }
  }
  for (const c of contenders) {
    check(bridgePorts(c) === 0, `${c.label}: ${bridgePorts(c)} bridge ports left after DEL`);
    check(allocations(c) === 0, `${c.label}: ${allocations(c)} IPAM allocations left after DEL`);
  }

  // Concurrent: 8 ADD workers over fresh pods, in blocks of about 50 pods per contender in the order
  // A B B A A B ..., so drift and passing noise weigh on both alike.
  const conPod = (c: Contender, i: number) => `${PREFIX}-${c.tag}c${i}`;
  addNamespaces(contenders.flatMap((c) => Array.from({ length: pods }, (_, i) => conPod(c, i))));
  process.stdout.write(` ${WORKERS}-way ADD x${pods} ...`);
  const blockCount = Math.max(1, Math.min(8, Math.round(pods / 50)));
  const blocks = Array.from({ length: blockCount }, (_, b): [number, number] => [
    Math.floor((b * pods) / blockCount),
    Math.floor(((b + 1) * pods) / blockCount),
  ]);
  const conResults = new Map<string, { address: string; result: unknown }[]>(
    contenders.map((c) => [c.key, []]),
  );
  for (const [b, [from, to]] of blocks.entries()) {
    for (const c of inTurn(b)) {
      if (to <= from) continue;
      const results = conResults.get(c.key) ?? [];
      const wall = await pool(to - from, WORKERS, async (k) => {
        const r = await add(c, conPod(c, from + k));
        fig(c).concurrentAdd.push(r.ms);
        results[from + k] = r;
      });
      fig(c).concurrentMs += wall;
      fig(c).blockRates.push(((to - from) / wall) * 1000);
    }
  }
  const duplicateCounts = new Map<string, number>();
  for (const c of contenders) {
    const addresses = (conResults.get(c.key) ?? []).map((r) => r.address);
    check(addresses.length === pods, `${c.label}: ${addresses.length} results for ${pods} concurrent ADDs`);
    duplicateCounts.set(c.key, duplicates(addresses).length);
    check(duplicates(addresses).length === 0, `${c.label}: duplicate addresses ${duplicates(addresses)}`);
    check(
      bridgePorts(c) === pods,
      `${c.label}: ${bridgePorts(c)} bridge ports after ${pods} concurrent ADDs`,
    );
    check(
      allocations(c) === pods,
      `${c.label}: ${allocations(c)} IPAM allocations after ${pods} concurrent ADDs`,
    );
  }
  // Release them (not timed), 8-way too.
  for (const c of contenders) {
    await pool(pods, WORKERS, async (i) => {
      await del(c, conPod(c, i), conResults.get(c.key)?.[i]?.result);
    });
    check(allocations(c) === 0, `${c.label}: ${allocations(c)} IPAM allocations left after concurrent DEL`);
  }
  process.stdout.write(" done\n\n");

  // ---- report ----
  const rows = contenders.map((c) => {
    const f = fig(c);
    return [
      c.label,
      ms(percentile(f.add, 50)),
      ms(percentile(f.add, 99)),
      ms(mean(f.add)),
      ms(percentile(f.del, 50)),
      ms(percentile(f.del, 99)),
      ms(mean(f.del)),
      `${((pods / f.concurrentMs) * 1000).toFixed(1)}`,
      ms(percentile(f.versionPlugin, 50)),
      ms(percentile(f.versionIpam, 50)),
    ];
  });
  console.log(`CNI ADD/DEL, ${pods} sequential pods, cniVersion ${CNI_VERSION}`);
  console.log(
    table(
      [
        "contender",
        "ADD p50",
        "ADD p99",
        "ADD mean",
        "DEL p50",
        "DEL p99",
        "DEL mean",
        `${WORKERS}-way ADD/s`,
        "VERSION p50",
        "IPAM VERSION p50",
      ],
      rows,
    ),
  );
  const [podnet, server, reference] = contenders.map(fig) as [Figures, Figures, Figures];
  console.log(
    "\n  VERSION p50 = one `ip netns exec NODE PLUGIN` call that only prints its versions: the process floor of",
  );
  console.log(
    "  every call (main plugin; IPAM plugin alone — podnet runs podnet-ipam in-process, bridge execs host-local).",
  );
  for (const [c, f] of [
    [contenders[0], podnet],
    [contenders[1], server],
    [contenders[2], reference],
  ] as const) {
    console.log(
      `  ${c?.label}: ADD p50 ${ms(percentile(f.add, 50))} = floor ${ms(percentile(f.versionPlugin, 50))} + ${ms(percentile(f.add, 50) - percentile(f.versionPlugin, 50))} of work; ` +
        `${WORKERS}-way ADD latency p50 ${ms(percentile(f.concurrentAdd, 50))}, p99 ${ms(percentile(f.concurrentAdd, 99))}; ` +
        `duplicate addresses: ${duplicateCounts.get(c?.key ?? "")}; ` +
        `ADD/s per block: ${f.blockRates.map((r) => r.toFixed(1)).join(", ")}`,
    );
  }
  const serverRatio = percentile(server.add, 50) / percentile(reference.add, 50);
  console.log(
    `\n  p50 ADD via the node's CNI server/reference = ${serverRatio.toFixed(2)}x (target <= 1.50x): ${serverRatio <= 1.5 ? "MET" : "NOT MET"}`,
  );
  console.log(
    `  p50 DEL via the node's CNI server/reference = ${(percentile(server.del, 50) / percentile(reference.del, 50)).toFixed(2)}x; ` +
      `${WORKERS}-way ADD/s via the server/reference = ${(pods / server.concurrentMs / (pods / reference.concurrentMs)).toFixed(2)}x`,
  );
  const ratio = percentile(podnet.add, 50) / percentile(reference.add, 50);
  const throughputRatio = pods / podnet.concurrentMs / (pods / reference.concurrentMs);
  console.log(`  p50 ADD podnet without a server (a Node process per call)/reference = ${ratio.toFixed(2)}x`);
  console.log(
    `  p50 DEL podnet/reference = ${(percentile(podnet.del, 50) / percentile(reference.del, 50)).toFixed(2)}x; ` +
      `${WORKERS}-way ADD/s podnet/reference = ${throughputRatio.toFixed(2)}x`,
  );
  if (ratio > 1.5) {
    const floorRatio = percentile(podnet.versionPlugin, 50) / percentile(reference.add, 50);
    console.log(
      `  podnet's process floor alone (VERSION p50) is ${floorRatio.toFixed(2)}x the reference's whole ADD p50.`,
    );
  }
}

let exitCode = 0;
try {
  await main();
} catch (error) {
  console.error(`\ncni.bench: ${(error as Error).message}`);
  exitCode = 1;
} finally {
  const left = cleanup();
  if (left.length > 0) {
    console.error(`cni.bench: could not remove: ${left.join(", ")}`);
    exitCode = 1;
  } else {
    console.log(`  cleanup: all ${PREFIX}-* namespaces and the temporary directory removed`);
  }
}
process.exit(exitCode);
