/**
 * The service proxy's figures (issue 5): nftables layouts for N ClusterIP Services × 3 endpoints, loaded
 * with `ip netns exec NS nft -f FILE` into a node namespace of our own, side by side:
 *
 *   kube-proxy shape   as kube-proxy's nftables mode writes it: a `service-ips` verdict map → a chain per
 *                      service → `numgen random mod 3 vmap { … }` (an anonymous map per service) → a
 *                      chain per endpoint (hairpin mark, dnat); loaded in one transaction, capped at 120 s
 *   per-service chains podnet's semantics with a chain per service and no anonymous map: numgen compare
 *                      rules (`numgen random mod 3 0 dnat …`), the alternative layout we measured
 *   podnet slot maps   planProxyRules' layout: per-service state only in named map elements (README)
 *
 * (a)/(b) cold load of 1,000 and 10,000 services; (c) at 10,000: +1 service and −1 endpoint as one small
 * transaction (podnet: planProxyUpdate; per-service chains: add/flush chain + rules + element); (d) TCP
 * connect latency p50/p99 from a client namespace through the node's rules to a Node TCP server in a
 * server namespace (bound to its own addresses), to the first and the last service, at 1 and at 10,000.
 *
 * (e) at 10,000 the node agent's way, a ProxyPlanner re-plan of one changed Service (+1 service, −1
 * endpoint, a changed port): its compute time and compute + nft transaction, p50/p90 over 21 runs each,
 * beside a fresh re-plan + whole-table diff.
 *
 *   npm run bench:proxy       (root; about 2-3 minutes, most of it the kube-proxy shape at 10,000)
 *   node dist/bench/proxy.bench.js podnet    (only the layouts named: podnet, chains, kube)
 *
 * Everything carries one random prefix (namespaces pnp<hex>-*, a temp directory) and is removed in
 * `finally`, also on SIGINT/SIGTERM; the server and nft processes we start are killed by PID. Traffic stays
 * between our namespaces; nothing listens in the root namespace.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, release, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connectTcp } from "../src/linux/netns-native.js";
import { type ProxyUpdate, planProxyUpdate } from "../src/proxy/diff.js";
import type { NftChain, NftTable } from "../src/proxy/nft-model.js";
import { renderTable } from "../src/proxy/nft-model.js";
import { type ProxyInput, ProxyPlanner, type ProxyRuleset, planProxyRules } from "../src/proxy/plan.js";
import {
  SYNTHETIC,
  syntheticProxyInput,
  syntheticVip,
  withChangedPort,
  withExtraService,
  withoutLastEndpoint,
} from "../src/proxy/synthetic.js";
import { percentile, table } from "./support.js";

const HEX = randomBytes(3).toString("hex");
const PREFIX = `pnp${HEX}`;
/** Two identical client — node — server topologies: SMALL keeps the 1-service ruleset while BIG holds the
 * 1,000 or 10,000 one, so that latency samples of both can be taken in turn (this VM's speed drifts). */
interface Topology {
  node: string;
  client: string;
  server: string;
}
const topology = (tag: string): Topology => ({
  node: `${PREFIX}-${tag}-node`,
  client: `${PREFIX}-${tag}-client`,
  server: `${PREFIX}-${tag}-server`,
});
const SMALL = topology("s");
const BIG = topology("b");
const TABLE = "podnet-proxy";
const KP_TABLE = "kube-proxy";
const SERVER_IPS = ["10.244.0.2", "10.244.0.3", "10.244.0.4"];
const CLIENT_IP = "172.31.0.100";
const LOAD_CAP_MS = 120_000;
const SIZES = [1_000, 10_000] as const;
const CONNECTS = 1000;
const WARMUP = 100;
const REPEATS = 5;
/** After a big table is deleted the kernel frees it in the background: let that pass before measuring. */
const SETTLE_MS = 3000;

const started: ChildProcess[] = [];
let workDir = "";

// ---- plumbing -------------------------------------------------------------------------------------------

function sh(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", input, timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr || r.error?.message}`);
  return r.stdout;
}

function inNs(ns: string, cmd: string, args: string[], input?: string): string {
  return sh("ip", ["netns", "exec", ns, cmd, ...args], input);
}

function ipBatchIn(ns: string, lines: string[]): void {
  sh("ip", ["-n", ns, "-batch", "-"], `${lines.join("\n")}\n`);
}

interface Timed {
  ms: number;
  timedOut: boolean;
}

/** `ip netns exec NS nft -f FILE`, timed from spawn to exit; killed (by PID) after `capMs`. */
function nftFile(ns: string, text: string, name: string, capMs = LOAD_CAP_MS): Promise<Timed> {
  const file = join(workDir, name);
  writeFileSync(file, text);
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn("ip", ["netns", "exec", ns, "nft", "-f", file], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    started.push(child);
    let stderr = "";
    let timedOut = false;
    child.stderr?.on("data", (d) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
    }, capMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      const ms = performance.now() - start;
      if (timedOut) resolve({ ms, timedOut });
      else if (code === 0) resolve({ ms, timedOut });
      else reject(new Error(`nft -f ${name} in ${ns}: exit ${code}: ${stderr.slice(0, 2000)}`));
    });
  });
}

function deleteTable(t: Topology, name: string): void {
  spawnSync("ip", ["netns", "exec", t.node, "nft", "delete", "table", "ip", name], { encoding: "utf8" });
}

function cleanup(): void {
  for (const c of started)
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(c.pid, "SIGKILL");
      } catch {}
    }
  for (const t of [SMALL, BIG]) for (const ns of Object.values(t)) spawnSync("ip", ["netns", "del", ns]);
  if (workDir) rmSync(workDir, { recursive: true, force: true });
}

// ---- topology: client — node (rules) — server ------------------------------------------------------------

const SERVER = `
const net = require("node:net");
let ready = 0;
for (const addr of process.argv.slice(1)) {
  net.createServer((s) => { s.on("error", () => {}); s.end(); }).listen({ port: ${SYNTHETIC.targetPort}, host: addr, backlog: 4096 }, () => {
    if (++ready === process.argv.length - 1) console.log("ready");
  });
}`;

async function buildTopology(t: Topology): Promise<void> {
  for (const ns of Object.values(t)) sh("ip", ["netns", "add", ns]);
  // Links made inside the node namespace, peers moved straight into theirs: none in the root namespace.
  ipBatchIn(t.node, [
    `link add vc type veth peer name eth0 netns /run/netns/${t.client}`,
    `link add vs type veth peer name eth0 netns /run/netns/${t.server}`,
    "link set lo up",
    `addr add ${SYNTHETIC.nodeAddress}/24 dev vc`,
    "addr add 10.244.0.1/24 dev vs",
    "link set vc up",
    "link set vs up",
  ]);
  inNs(t.node, "sysctl", ["-qw", "net.ipv4.ip_forward=1"]);
  ipBatchIn(t.client, [
    "link set lo up",
    `addr add ${CLIENT_IP}/24 dev eth0`,
    "link set eth0 up",
    `route add default via ${SYNTHETIC.nodeAddress}`,
  ]);
  ipBatchIn(t.server, [
    "link set lo up",
    ...SERVER_IPS.map((ip) => `addr add ${ip}/24 dev eth0`),
    "link set eth0 up",
    "route add default via 10.244.0.1",
  ]);
  const server = spawn("ip", ["netns", "exec", t.server, process.execPath, "-e", SERVER, ...SERVER_IPS], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  started.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
    server.stdout?.once("data", () => resolve());
  });
}

// ---- the three layouts -------------------------------------------------------------------------------------

/** First and last service point at the server's three addresses; the rest at addresses nobody has. */
function input(n: number): ProxyInput {
  return syntheticProxyInput({
    services: n,
    endpointsPerService: 3,
    endpointIps: (i) => (i === 0 || i === n - 1 ? SERVER_IPS : fakeIps(i)),
  });
}

function fakeIps(i: number): string[] {
  return [0, 1, 2].map((j) => {
    const k = i * 3 + j;
    return `10.${245 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`;
  });
}

/** kube-proxy's nftables mode (pkg/proxy/nftables), ClusterIP services only, as one transaction. */
function kubeProxyRuleset(n: number): string {
  const t = `ip ${KP_TABLE}`;
  const pod = SYNTHETIC.podCIDRs[0];
  const lines = [
    `add table ${t} { comment "rules for kube-proxy" ; }`,
    `add set ${t} cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }`,
    `add set ${t} nodeport-ips { type ipv4_addr ; }`,
    `add map ${t} no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; }`,
    `add map ${t} no-endpoint-nodeports { type inet_proto . inet_service : verdict ; }`,
    `add map ${t} firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }`,
    `add map ${t} service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }`,
    `add map ${t} service-nodeports { type inet_proto . inet_service : verdict ; }`,
  ];
  const base: [string, string, string, number, string[]][] = [
    ["filter-prerouting", "filter", "prerouting", -110, ["ct state new jump firewall-check"]],
    [
      "filter-input",
      "filter",
      "input",
      -110,
      ["ct state new jump nodeport-endpoints-check", "ct state new jump service-endpoints-check"],
    ],
    [
      "filter-forward",
      "filter",
      "forward",
      -110,
      ["ct state new jump service-endpoints-check", "ct state new jump cluster-ips-check"],
    ],
    [
      "filter-output",
      "filter",
      "output",
      -110,
      ["ct state new jump service-endpoints-check", "ct state new jump cluster-ips-check"],
    ],
    ["filter-output-post-dnat", "filter", "output", -90, ["ct state new jump cluster-ips-check"]],
    ["nat-prerouting", "nat", "prerouting", -100, ["jump services"]],
    ["nat-output", "nat", "output", -100, ["jump services"]],
    ["nat-postrouting", "nat", "postrouting", 100, ["jump masquerading"]],
  ];
  const regular: [string, string[]][] = [
    ["cluster-ips-check", [`ip daddr @cluster-ips reject`, `ip daddr { ${SYNTHETIC.serviceCIDRs[0]} } drop`]],
    ["firewall-check", ["ip daddr . meta l4proto . th dport vmap @firewall-ips"]],
    ["mark-for-masquerade", ["meta mark set meta mark | 0x4000"]],
    [
      "masquerading",
      ["meta mark & 0x4000 == 0 return", "meta mark set meta mark ^ 0x4000", "masquerade fully-random"],
    ],
    [
      "nodeport-endpoints-check",
      ["ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports"],
    ],
    ["service-endpoints-check", ["ip daddr . meta l4proto . th dport vmap @no-endpoint-services"]],
    [
      "services",
      [
        "ip daddr . meta l4proto . th dport vmap @service-ips",
        "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports",
      ],
    ],
  ];
  for (const [name] of regular) lines.push(`add chain ${t} ${name}`);
  for (const [name, type, hook, prio] of base)
    lines.push(`add chain ${t} ${name} { type ${type} hook ${hook} priority ${prio} ; }`);
  for (const [name, , , , rules] of base) for (const r of rules) lines.push(`add rule ${t} ${name} ${r}`);
  for (const [name, rules] of regular) for (const r of rules) lines.push(`add rule ${t} ${name} ${r}`);
  const vips: string[] = [];
  const services: string[] = [];
  for (let i = 0; i < n; i++) {
    const vip = syntheticVip(i);
    const ips = i === 0 || i === n - 1 ? SERVER_IPS : fakeIps(i);
    const hash = randomBytesFor(i);
    const svc = `service-${hash}-bench/svc-${i}/tcp/http`;
    const eps = ips.map(
      (ip) => `endpoint-${hash}${ip.replaceAll(".", "")}-bench/svc-${i}/tcp/http__${ip}/8080`,
    );
    lines.push(`add chain ${t} ${svc}`);
    for (const e of eps) lines.push(`add chain ${t} ${e}`);
    lines.push(
      `add rule ${t} ${svc} ip daddr ${vip} tcp dport 80 ip saddr != ${pod} jump mark-for-masquerade`,
    );
    lines.push(
      `add rule ${t} ${svc} numgen random mod ${eps.length} vmap { ${eps.map((e, j) => `${j} : goto ${e}`).join(" , ")} }`,
    );
    ips.forEach((ip, j) => {
      lines.push(`add rule ${t} ${eps[j]} ip saddr ${ip} jump mark-for-masquerade`);
      lines.push(`add rule ${t} ${eps[j]} meta l4proto tcp dnat to ${ip}:${SYNTHETIC.targetPort}`);
    });
    vips.push(vip);
    services.push(`${vip} . tcp . 80 : goto ${svc}`);
  }
  for (let i = 0; i < n; i += 5000) {
    lines.push(`add element ${t} cluster-ips { ${vips.slice(i, i + 5000).join(" , ")} }`);
    lines.push(`add element ${t} service-ips { ${services.slice(i, i + 5000).join(" , ")} }`);
  }
  return `${lines.join("\n")}\n`;
}

/** kube-proxy names chains with a base32 hash of the service port; any 8 stable characters do here. */
function randomBytesFor(i: number): string {
  return (((i + 1) * 2654435761) >>> 0).toString(36).toUpperCase().padStart(8, "0").slice(0, 8);
}

/**
 * podnet's semantics with a chain per service instead of slot maps: the services map jumps to `svc-<i>`,
 * whose rules pick an endpoint with numgen compares (no anonymous map: rule j matches 1 in n-j).
 */
function perServiceChains(r: ProxyRuleset): { table: NftTable; chainOf: (vip: string) => NftChain } {
  const table = r.tables[0] as NftTable;
  const backends = new Map<string, string[]>();
  for (const e of table.sets.find((s) => s.name === "tcp-backends")?.elements ?? []) {
    const [address, port] = e.key.split(" . ");
    const entry = `${address} . tcp . ${port}`;
    const list = backends.get(entry) ?? [];
    list.push((e.value as string).replace(" . ", ":"));
    backends.set(entry, list);
  }
  const chains: NftChain[] = [];
  const byVip = new Map<string, NftChain>();
  const sets = table.sets.map((s) => {
    if (s.name === "tcp-backends") return { ...s, elements: [] };
    if (s.name !== "services") return s;
    return {
      ...s,
      elements: s.elements.map((e, i) => {
        const targets = backends.get(e.key) ?? [];
        const chain = { name: `svc-${i}`, rules: chainRules(targets) };
        chains.push(chain);
        byVip.set(e.key.split(" . ")[0] as string, chain);
        return { ...e, value: `goto ${chain.name}` };
      }),
    };
  });
  const kept = table.chains.filter((c) => !/^(local-)?endpoints-\d+$/.test(c.name));
  return {
    table: { ...table, sets, chains: [...kept, ...chains] },
    chainOf: (vip) => byVip.get(vip) as NftChain,
  };
}

function chainRules(targets: string[]): string[] {
  return targets.map((t, j) =>
    j < targets.length - 1
      ? `meta l4proto tcp numgen random mod ${targets.length - j} 0 dnat ip to ${t}`
      : `meta l4proto tcp dnat ip to ${t}`,
  );
}

// ---- measurements ---------------------------------------------------------------------------------------------

interface Latency {
  p50: number;
  p99: number;
}

/** TCP connect latency to each target, taking one sample of each in turn. */
async function connectLatencies(targets: { from: Topology; vip: string }[]): Promise<Latency[]> {
  const samples: number[][] = targets.map(() => []);
  for (let i = 0; i < WARMUP + CONNECTS; i++) {
    // Each round starts at another target: no target always goes first.
    for (let j = 0; j < targets.length; j++) {
      const k = (i + j) % targets.length;
      const t = targets[k] as { from: Topology; vip: string };
      const start = performance.now();
      const socket = await connectTcp(`/run/netns/${t.from.client}`, t.vip, SYNTHETIC.port, {
        timeoutMs: 3000,
      });
      const ms = performance.now() - start;
      socket.destroy();
      if (i >= WARMUP) samples[k]?.push(ms);
    }
  }
  return samples.map((list) => {
    list.sort((a, b) => a - b);
    const at = (q: number) => list[Math.min(list.length - 1, Math.floor(q * list.length))] as number;
    return { p50: at(0.5), p99: at(0.99) };
  });
}

type Layout = "kube" | "chains" | "podnet";
const LAYOUTS: Layout[] = ["kube", "chains", "podnet"];
const TITLES: Record<Layout, string> = {
  kube: "kube-proxy shape",
  chains: "per-service chains",
  podnet: "podnet slot maps",
};

interface Figures {
  load: Map<number, Timed>;
  latency: Map<string, Latency>;
  addService?: { ms: number; commands: number };
  removeEndpoint?: { ms: number; commands: number };
}

/** Applies `forward` (timed) and `back` (untimed) REPEATS times; the median forward time. */
async function repeatChange(forward: string[], back: string[]): Promise<{ ms: number; commands: number }> {
  const times: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    times.push((await nftFile(BIG.node, `${forward.join("\n")}\n`, "change.nft")).ms);
    await nftFile(BIG.node, `${back.join("\n")}\n`, "change-back.nft");
  }
  return { ms: median(times), commands: forward.length };
}

function rulesetText(layout: Layout, n: number, r: ProxyRuleset): string {
  if (layout === "kube") return kubeProxyRuleset(n);
  if (layout === "chains") return renderTable(perServiceChains(r).table);
  return r.text;
}

/** The pure part at 10,000 (podnet): planning and rendering the ruleset, and re-planning + diffing one change. */
const pure = { planMs: 0, changeMs: 0, incrementalMs: 0 };

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

function planned(
  layout: Layout,
  n: number,
): { proxyInput: ProxyInput; ruleset?: ProxyRuleset; text: string } {
  const proxyInput = input(n);
  const ruleset = layout === "kube" ? undefined : planProxyRules(proxyInput);
  if (layout === "podnet" && n === 10_000) {
    const times: number[] = [];
    for (let i = 0; i < REPEATS; i++) {
      const start = performance.now();
      planProxyRules(proxyInput);
      times.push(performance.now() - start);
    }
    pure.planMs = median(times);
  }
  return {
    proxyInput,
    ...(ruleset ? { ruleset } : {}),
    text: rulesetText(layout, n, ruleset as ProxyRuleset),
  };
}

async function load(t: Topology, layout: Layout, n: number, text: string): Promise<Timed> {
  process.stderr.write(`  ${TITLES[layout]}: loading ${n} services (${(text.length / 1e6).toFixed(1)} MB)… `);
  const timed = await nftFile(t.node, text, `${layout}-${n}.nft`);
  process.stderr.write(timed.timedOut ? "> 120 s, killed\n" : `${(timed.ms / 1000).toFixed(2)} s\n`);
  return timed;
}

async function measureLayout(layout: Layout): Promise<Figures> {
  const figures: Figures = { load: new Map(), latency: new Map() };
  const table = layout === "kube" ? KP_TABLE : TABLE;
  // SMALL keeps 1 service for the whole layout; BIG gets 1,000, then 10,000.
  figures.load.set(1, await load(SMALL, layout, 1, planned(layout, 1).text));
  for (const n of SIZES) {
    const { proxyInput, ruleset, text } = planned(layout, n);
    const timed = await load(BIG, layout, n, text);
    figures.load.set(n, timed);
    if (timed.timedOut) {
      deleteTable(BIG, table);
      await sleep(SETTLE_MS);
      continue;
    }
    if (n === 10_000) {
      const [one, first, last] = await connectLatencies([
        { from: SMALL, vip: syntheticVip(0) },
        { from: BIG, vip: syntheticVip(0) },
        { from: BIG, vip: syntheticVip(n - 1) },
      ]);
      figures.latency.set("1:first", one as Latency);
      figures.latency.set("10000:first", first as Latency);
      figures.latency.set("10000:last", last as Latency);
    }
    if (n === 10_000 && ruleset && layout === "podnet") {
      const plusInput = withExtraService(proxyInput, 3);
      const times: number[] = [];
      for (let i = 0; i < REPEATS; i++) {
        const t0 = performance.now();
        planProxyUpdate(ruleset, planProxyRules(plusInput));
        times.push(performance.now() - t0);
      }
      pure.changeMs = median(times);
      oneServiceChanges = await measureOneServiceChanges(proxyInput, ruleset);
      pure.incrementalMs = oneServiceChanges[0]?.compute.p50 ?? Number.NaN;
      const plus = planProxyRules(plusInput);
      const minus = planProxyRules(withoutLastEndpoint(proxyInput, n / 2));
      figures.addService = await repeatChange(
        planProxyUpdate(ruleset, plus).commands,
        planProxyUpdate(plus, ruleset).commands,
      );
      figures.removeEndpoint = await repeatChange(
        planProxyUpdate(ruleset, minus).commands,
        planProxyUpdate(minus, ruleset).commands,
      );
    }
    if (n === 10_000 && ruleset && layout === "chains") {
      const where = `ip ${TABLE}`;
      const vip = "10.97.0.1";
      const targets = ["10.250.0.1:8080", "10.250.0.2:8080", "10.250.0.3:8080"];
      figures.addService = await repeatChange(
        [
          `add chain ${where} svc-new`,
          ...chainRules(targets).map((r) => `add rule ${where} svc-new ${r}`),
          `add element ${where} services { ${vip} . tcp . 80 : goto svc-new }`,
          `add element ${where} cluster-ips { ${vip} }`,
        ],
        [
          `delete element ${where} services { ${vip} . tcp . 80 }`,
          `delete element ${where} cluster-ips { ${vip} }`,
          `delete chain ${where} svc-new`,
        ],
      );
      const chain = perServiceChains(ruleset).chainOf(syntheticVip(n / 2));
      const rewrite = (rules: string[]) => [
        `flush chain ${where} ${chain.name}`,
        ...rules.map((r) => `add rule ${where} ${chain.name} ${r}`),
      ];
      const fewer = fakeIps(n / 2)
        .slice(0, 2)
        .map((ip) => `${ip}:${SYNTHETIC.targetPort}`);
      figures.removeEndpoint = await repeatChange(rewrite(chainRules(fewer)), rewrite(chain.rules));
    }
    deleteTable(BIG, table);
    await sleep(SETTLE_MS);
  }
  deleteTable(SMALL, table);
  return figures;
}

// ---- one Service changed among 10,000: the node agent's way (ProxyPlanner) ---------------------------------

/** Runs of each one-service change (compute alone, and compute + transaction); the fresh re-plan: REPEATS. */
const CHANGE_RUNS = 21;

interface Spread {
  p50: number;
  p90: number;
}

interface OneServiceChange {
  label: string;
  /** ProxyPlanner.change: the incremental re-plan and its transaction's text. */
  compute: Spread;
  /** compute + `ip netns exec NS nft -f FILE` of that transaction, into the node holding 10,000 Services. */
  endToEnd: Spread;
  /** planProxyRules of the whole new input + planProxyUpdate over whole tables (the reference path). */
  fresh: Spread;
  commands: number;
  paths: string;
}

const spread = (values: number[]): Spread => ({ p50: percentile(values, 50), p90: percentile(values, 90) });

let oneServiceChanges: OneServiceChange[] = [];

/**
 * +1 service, −1 endpoint and a changed port, each applied and undone CHANGE_RUNS times: the planner
 * plans `changed` from `base` (timed), then `base` again (untimed, also in the kernel for end-to-end).
 */
async function measureOneServiceChanges(
  base: ProxyInput,
  baseRuleset: ProxyRuleset,
): Promise<OneServiceChange[]> {
  const n = base.services.length;
  const changes: [string, ProxyInput][] = [
    ["+1 service", withExtraService(base, 3)],
    ["−1 endpoint", withoutLastEndpoint(base, n / 2)],
    ["changed port", withChangedPort(base, Math.floor(n / 3), 8080)],
  ];
  const planner = new ProxyPlanner();
  planner.change(base);
  const out: OneServiceChange[] = [];
  for (const [label, changed] of changes) {
    const compute: number[] = [];
    const endToEnd: number[] = [];
    const paths = new Set<string>();
    let commands = 0;
    for (let i = 0; i < CHANGE_RUNS; i++) {
      const t0 = performance.now();
      const forward = planner.change(changed).update as ProxyUpdate;
      void forward.text;
      compute.push(performance.now() - t0);
      paths.add(planner.lastPath);
      commands = forward.commands.length;
      planner.change(base);
    }
    for (let i = 0; i < CHANGE_RUNS; i++) {
      const t0 = performance.now();
      const forward = planner.change(changed).update as ProxyUpdate;
      await nftFile(BIG.node, forward.text, "one-change.nft");
      endToEnd.push(performance.now() - t0);
      paths.add(planner.lastPath);
      await nftFile(BIG.node, (planner.change(base).update as ProxyUpdate).text, "one-change-back.nft");
    }
    const fresh: number[] = [];
    for (let i = 0; i < REPEATS; i++) {
      const t0 = performance.now();
      void planProxyUpdate(baseRuleset, planProxyRules(changed)).text;
      fresh.push(performance.now() - t0);
    }
    out.push({
      label,
      compute: spread(compute),
      endToEnd: spread(endToEnd),
      fresh: spread(fresh),
      commands,
      paths: [...paths].join("+"),
    });
    process.stderr.write(`  one-service change (${label}): measured\n`);
  }
  return out;
}

function reportOneServiceChanges(): void {
  if (oneServiceChanges.length === 0) return;
  const ms = (s: Spread) => `${s.p50.toFixed(1)} / ${s.p90.toFixed(1)}`;
  console.log(
    `\none-service change at 10,000 × 3 (podnet, ProxyPlanner as in the node agent), ms p50 / p90; target ≤ 50 ms end to end`,
  );
  console.log(
    table(
      [
        "change",
        `compute (${CHANGE_RUNS} runs)`,
        `compute + nft transaction (${CHANGE_RUNS})`,
        `fresh re-plan + diff (${REPEATS})`,
        "commands",
        "path",
      ],
      oneServiceChanges.map((c) => [
        c.label,
        ms(c.compute),
        ms(c.endToEnd),
        ms(c.fresh),
        String(c.commands),
        c.paths,
      ]),
    ),
  );
}

// ---- report -------------------------------------------------------------------------------------------------

const seconds = (t: Timed | undefined) =>
  t === undefined
    ? "—"
    : t.timedOut
      ? "> 120 s"
      : t.ms >= 10_000
        ? `${(t.ms / 1000).toFixed(1)} s`
        : `${(t.ms / 1000).toFixed(2)} s`;
const change = (c: { ms: number; commands: number } | undefined) =>
  c ? `${c.ms.toFixed(0)} ms (${c.commands} cmd${c.commands === 1 ? "" : "s"})` : "—";
const lat = (l: Latency | undefined) => (l ? `${l.p50.toFixed(3)} / ${l.p99.toFixed(3)}` : "—");
const worse = (a: Latency | undefined, b: Latency | undefined) =>
  a && b ? (a.p50 >= b.p50 ? a : b) : undefined;
const ratio = (a: Latency | undefined, b: Latency | undefined) =>
  a && b ? `${(b.p50 / a.p50).toFixed(2)}×` : "—";

function report(all: Map<Layout, Figures>): void {
  const layouts = LAYOUTS.filter((l) => all.has(l));
  const rows: string[][] = [["", ...layouts.map((l) => TITLES[l]), "target"]];
  const row = (label: string, cell: (f: Figures) => string, target = "") =>
    rows.push([label, ...layouts.map((l) => cell(all.get(l) as Figures)), target]);
  const podnetOnly = (label: string, value: string) =>
    rows.push([label, ...layouts.map((l) => (l === "podnet" ? value : "")), ""]);
  for (const n of SIZES)
    row(
      `cold load ${n.toLocaleString("en")} × 3 (one nft -f)`,
      (f) => seconds(f.load.get(n)),
      n === 10_000 ? "≤ 5 s" : "",
    );
  row("+1 service at 10,000 (1 transaction, median of 5)", (f) => change(f.addService), "≤ 50 ms");
  row("−1 endpoint at 10,000 (1 transaction, median of 5)", (f) => change(f.removeEndpoint), "≤ 50 ms");
  podnetOnly("pure (podnet): plan + render 10,000", `${pure.planMs.toFixed(0)} ms`);
  podnetOnly("pure (podnet): re-plan + diff, +1 svc", `${pure.changeMs.toFixed(0)} ms`);
  podnetOnly(
    "pure (podnet): ProxyPlanner re-plan + diff, +1 svc (p50)",
    `${pure.incrementalMs.toFixed(1)} ms`,
  );
  row("connect p50 / p99 ms, 1 service", (f) => lat(f.latency.get("1:first")));
  row("  10,000: first service", (f) => lat(f.latency.get("10000:first")));
  row("  10,000: last service", (f) => lat(f.latency.get("10000:last")));
  row(
    "  p50 at 10,000 (worse of the two) / at 1",
    (f) => ratio(f.latency.get("1:first"), worse(f.latency.get("10000:first"), f.latency.get("10000:last"))),
    "≤ 1.10×",
  );
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length))) ?? [];
  console.log(
    `\nservice proxy layouts — Linux ${release()}, ${cpus().length} CPUs, ${sh("nft", ["--version"]).trim()}; N ClusterIP services × 3 endpoints`,
  );
  for (const r of rows)
    console.log(
      r
        .map((cell, c) => cell.padEnd(widths[c] ?? 0))
        .join("  ")
        .trimEnd(),
    );
  console.log(
    "times are spawn-to-exit of `ip netns exec NS nft -f FILE`; latency: TCP connect from a client namespace through the node's rules, " +
      `${CONNECTS} connects after ${WARMUP} warm-up`,
  );
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error("proxy.bench: needs root (network namespaces, nftables)");
    process.exit(2);
  }
  const onSignal = (signal: NodeJS.Signals) => {
    cleanup();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  workDir = mkdtempSync(join(tmpdir(), `${PREFIX}-`));
  try {
    await buildTopology(SMALL);
    await buildTopology(BIG);
    // Warm up this process (JIT, the addon) and the kernel's paths before the first figure.
    for (const t of [SMALL, BIG]) await nftFile(t.node, planProxyRules(input(1)).text, "warmup.nft");
    await connectLatencies([
      { from: SMALL, vip: syntheticVip(0) },
      { from: BIG, vip: syntheticVip(0) },
    ]);
    for (const t of [SMALL, BIG]) deleteTable(t, TABLE);
    const all = new Map<Layout, Figures>();
    // podnet first: its figures are there even if the run is cut short during the kube-proxy shape.
    // `node dist/bench/proxy.bench.js podnet` measures only the layouts named (all three by default).
    const only = process.argv.slice(2);
    for (const layout of ["podnet", "chains", "kube"] as Layout[])
      if (only.length === 0 || only.includes(layout)) all.set(layout, await measureLayout(layout));
    report(all);
    reportOneServiceChanges();
  } finally {
    cleanup();
  }
}

await main();
