/**
 * The DNS server's figures (issue 7): queries per second and latency with dnsperf, podnet's server side by
 * side with dnsmasq in the same run, serving the same 1,000 A names from a hosts file:
 *
 *   podnet (cache)     `podnet dns serve`: hosts block + `cache` (encoded answers, the hot path)
 *   podnet (no cache)  the same without `cache`: a zone lookup and an encoding per query
 *   dnsmasq            --no-resolv --no-hosts --addn-hosts FILE, in the foreground
 *
 * (a) max QPS: dnsperf without -Q, several clients (-c 10, 2 threads, 500 outstanding), 5 s;
 * (b) p50/p99 latency at half of that target's own max QPS (-Q, one sending thread), 5 s, from dnsperf -v
 *     per-query times (written to a file, parsed after the run);
 * (c) CPU time the server process used per answered query during (a).
 * Each target runs RUNS times, in rotating order (this VM's speed drifts); the table shows medians and
 * the spread (min–max).
 *
 *   npm run bench:dns      (about 2 minutes; needs /usr/bin/dnsperf and /usr/sbin/dnsmasq)
 *
 * Servers listen on 127.0.0.x loopback only, are started by this process and killed by PID in `finally`
 * (also on SIGINT/SIGTERM); the temp directory (configurations, hosts file, dnsperf input) is removed.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, release, tmpdir } from "node:os";
import { join } from "node:path";
import { percentile, sleep, table } from "./support.js";

const NAMES = 1000;
const RUNS = 3;
const SECONDS = 5;
const MAX_RATE_ARGS = ["-c", "10", "-T", "2", "-q", "500"];
const PODNET_ADDRESS = "127.0.0.1";
const DNSMASQ_ADDRESS = "127.0.0.77";

const workDir = mkdtempSync(join(tmpdir(), `podnet-dns-bench-${randomBytes(3).toString("hex")}-`));
const started = new Set<ChildProcess>();

interface Target {
  label: string;
  address: string;
  start(port: number): ChildProcess;
}

interface RunFigures {
  qps: number;
  lost: number;
  cpuMicros: number;
  p50: number;
  p99: number;
  halfRate: number;
}

function hostsFile(): string {
  const lines = Array.from(
    { length: NAMES },
    (_, i) => `10.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255} host${i}.bench.test`,
  );
  const path = join(workDir, "bench.hosts");
  writeFileSync(path, `${lines.join("\n")}\n`);
  return path;
}

function podnetTarget(label: string, withCache: boolean): Target {
  return {
    label,
    address: PODNET_ADDRESS,
    start(port) {
      const config = join(workDir, `${withCache ? "cache" : "nocache"}.conf`);
      writeFileSync(
        config,
        `bench.test:${port} {\n  hosts ./bench.hosts {\n    ttl 60\n  }\n${withCache ? "  cache 60\n" : ""}}\n`,
      );
      const cli = join(process.cwd(), "dist/src/cli/main.js");
      return spawn(process.execPath, [cli, "dns", "serve", "--config", config, "--listen", PODNET_ADDRESS], {
        stdio: ["ignore", "ignore", "inherit"],
      });
    },
  };
}

function dnsmasqTarget(hosts: string): Target {
  return {
    label: "dnsmasq",
    address: DNSMASQ_ADDRESS,
    start(port) {
      return spawn(
        "/usr/sbin/dnsmasq",
        [
          "--keep-in-foreground",
          "--conf-file=/dev/null",
          "--no-resolv",
          "--no-hosts",
          `--addn-hosts=${hosts}`,
          `--listen-address=${DNSMASQ_ADDRESS}`,
          "--bind-interfaces",
          `--port=${port}`,
          "--local-ttl=60",
          "--pid-file=",
          "--log-facility=/dev/null",
        ],
        { stdio: ["ignore", "ignore", "inherit"] },
      );
    },
  };
}

async function freePort(address: string): Promise<number> {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, address, r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(r));
  return port;
}

function dnsperf(address: string, port: number, input: string, args: string[]): string {
  return execFileSync("dnsperf", ["-s", address, "-p", String(port), "-d", input, ...args], {
    encoding: "utf8",
    maxBuffer: 512 * 1024 * 1024,
    timeout: 120_000,
  });
}

/** dnsperf with its output written to a file in the work directory, read back after it exits. */
function dnsperfToFile(address: string, port: number, input: string, args: string[]): string {
  const path = join(workDir, "dnsperf.out");
  const fd = openSync(path, "w");
  try {
    const r = spawnSync("dnsperf", ["-s", address, "-p", String(port), "-d", input, ...args], {
      stdio: ["ignore", fd, "inherit"],
      timeout: 120_000,
    });
    if (r.status !== 0) throw new Error(`dnsperf exited with ${r.status ?? r.signal}`);
  } finally {
    closeSync(fd);
  }
  return readFileSync(path, "utf8");
}

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return Number(fields[11]) + Number(fields[12]);
}

const clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());

async function measure(target: Target, input: string): Promise<RunFigures> {
  const port = await freePort(target.address);
  const server = target.start(port);
  started.add(server);
  try {
    // Ready when it answers (dnsperf -n 1 through 3 names, short timeout), bounded.
    const probe = join(workDir, "probe.txt");
    writeFileSync(probe, "host0.bench.test A\n");
    for (let i = 0; ; i++) {
      if (server.exitCode !== null) throw new Error(`${target.label} exited with ${server.exitCode}`);
      const out = dnsperf(target.address, port, probe, ["-n", "1", "-t", "1"]);
      if (/Queries completed:\s+1 /.test(out)) break;
      if (i > 50) throw new Error(`${target.label} does not answer on ${target.address}:${port}`);
      await sleep(200);
    }
    // Warm-up: one pass through the names (fills podnet's cache, lets V8 optimize).
    dnsperf(target.address, port, input, ["-n", "2", ...MAX_RATE_ARGS]);
    const pid = server.pid as number;
    const before = cpuTicks(pid);
    const max = dnsperf(target.address, port, input, ["-l", String(SECONDS), ...MAX_RATE_ARGS]);
    const cpu = (cpuTicks(pid) - before) / clockTicks;
    const qps = Number(/Queries per second:\s+([\d.]+)/.exec(max)?.[1]);
    const completed = Number(/Queries completed:\s+(\d+)/.exec(max)?.[1]);
    const lost = Number(/Queries lost:\s+(\d+)/.exec(max)?.[1]);
    const halfRate = Math.round(qps / 2);
    // One sending thread is plenty at half rate and leaves the other CPU to the server; the per-query
    // lines (-v, ~60,000 a second) go to a file, not to a pipe this process would drain while measuring.
    const timed = dnsperfToFile(target.address, port, input, [
      "-l",
      String(SECONDS),
      "-Q",
      String(halfRate),
      "-c",
      "10",
      "-T",
      "1",
      "-v",
    ]);
    const latencies = [...timed.matchAll(/^> \w+ \S+ \S+ ([\d.]+)$/gm)].map((m) => Number(m[1]) * 1000);
    return {
      qps,
      lost,
      cpuMicros: (cpu / completed) * 1e6,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      halfRate,
    };
  } finally {
    stop(server);
    await new Promise((r) => (server.exitCode !== null ? r(undefined) : server.once("exit", r)));
    started.delete(server);
  }
}

function stop(child: ChildProcess): void {
  if (child.exitCode === null && child.pid) {
    try {
      process.kill(child.pid, "SIGTERM");
    } catch {
      // Already gone.
    }
  }
}

function cleanup(): void {
  for (const child of started) if (child.exitCode === null && child.pid) process.kill(child.pid, "SIGKILL");
  rmSync(workDir, { recursive: true, force: true });
}

const median = (values: number[]) => percentile(values, 50);
const spread = (values: number[], digits: number) =>
  `${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}`;

async function main(): Promise<void> {
  const hosts = hostsFile();
  const input = join(workDir, "queries.txt");
  writeFileSync(input, `${Array.from({ length: NAMES }, (_, i) => `host${i}.bench.test A`).join("\n")}\n`);
  const targets = [
    podnetTarget("podnet (cache)", true),
    podnetTarget("podnet (no cache)", false),
    dnsmasqTarget(hosts),
  ];
  const results = new Map<string, RunFigures[]>(targets.map((t) => [t.label, []]));
  for (let run = 0; run < RUNS; run++) {
    // Rotate the order so that drift in this VM's speed does not favour one target.
    const order = targets.map((_, i) => targets[(i + run) % targets.length] as Target);
    for (const target of order) {
      const figures = await measure(target, input);
      results.get(target.label)?.push(figures);
      process.stderr.write(
        `run ${run + 1}/${RUNS} ${target.label}: ${figures.qps.toFixed(0)} qps (lost ${figures.lost}), ` +
          `p50 ${figures.p50.toFixed(3)} ms p99 ${figures.p99.toFixed(3)} ms at ${figures.halfRate} qps\n`,
      );
    }
  }
  const dnsmasqQps = median(results.get("dnsmasq")?.map((f) => f.qps) ?? []);
  const rows = targets.map((t) => {
    const runs = results.get(t.label) ?? [];
    const qps = runs.map((f) => f.qps);
    return [
      t.label,
      median(qps).toFixed(0),
      spread(qps, 0),
      `${(median(qps) / dnsmasqQps).toFixed(2)}x`,
      median(runs.map((f) => f.cpuMicros)).toFixed(1),
      median(runs.map((f) => f.halfRate)).toFixed(0),
      median(runs.map((f) => f.p50)).toFixed(3),
      median(runs.map((f) => f.p99)).toFixed(3),
      spread(
        runs.map((f) => f.p99),
        3,
      ),
    ];
  });
  const cpu = cpus();
  console.log(
    `DNS server: ${NAMES} A names, dnsperf ${MAX_RATE_ARGS.join(" ")}, ${SECONDS} s per measurement, ${RUNS} runs (medians; spread min–max)`,
  );
  console.log(
    `machine: ${cpu.length} × ${cpu[0]?.model ?? "?"}, Linux ${release()}, Node ${process.version}\n`,
  );
  console.log(
    table(
      [
        "server",
        "max QPS",
        "spread",
        "vs dnsmasq",
        "CPU µs/query",
        "half rate",
        "p50 ms",
        "p99 ms",
        "p99 spread",
      ],
      rows,
    ),
  );
}

process.on("SIGINT", () => {
  cleanup();
  process.exit(130);
});
process.on("SIGTERM", () => {
  cleanup();
  process.exit(143);
});
main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(cleanup);
