// podnet-ipam under concurrency: separate processes sharing one data directory never hand out the same
// address, a process killed at any moment never causes a duplicate (at worst a leak that GC reclaims),
// and the executable itself holds up under parallel invocations.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { baseEnv, CniLab } from "./support/cni-harness.js";

const lab = new CniLab();
const WORKER = join(process.cwd(), "dist/test/support/ipam-worker.js");
after(() => assert.deepEqual(lab.cleanup(), []));

function config(name: string, ranges: unknown) {
  return JSON.stringify({
    cniVersion: "1.1.0",
    name,
    type: "podnet-ipam",
    ipam: { type: "podnet-ipam", dataDir: lab.dataDir, ranges },
    "cni.dev/valid-attachments": [],
  });
}

function files(network: string): string[] {
  const dir = join(lab.dataDir, network);
  return existsSync(dir) ? readdirSync(dir) : [];
}

const allocations = (network: string) =>
  files(network).filter((f) => !f.startsWith(".") && !f.startsWith("last_"));

function worker(args: string[]): {
  child: ChildProcess;
  done: Promise<{ code: number | null; out: string }>;
} {
  const child = spawn(process.execPath, [WORKER, ...args], {
    env: baseEnv(),
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout?.on("data", (b) => {
    out += b;
  });
  const done = new Promise<{ code: number | null; out: string }>((resolve) =>
    child.on("close", (code) => resolve({ code, out })),
  );
  return { child, done };
}

test("8 processes x 125 ADD/DEL cycles over 10 addresses: no duplicate, no leak", async () => {
  const network = `${lab.prefix}conc`;
  const conf = config(network, [
    [{ subnet: "10.210.0.0/24", rangeStart: "10.210.0.10", rangeEnd: "10.210.0.19" }],
  ]);
  const claims = join(lab.dir, "claims");
  mkdirSync(claims);
  const workers = Array.from({ length: 8 }, (_, i) => worker(["cycles", conf, String(i), "125", claims]));
  const results = await Promise.all(workers.map((w) => w.done));
  let adds = 0;
  for (const r of results) {
    assert.equal(r.code, 0, r.out);
    const summary = JSON.parse(r.out.trim());
    adds += summary.adds;
    assert.ok(summary.distinct > 1, "each worker saw several addresses");
  }
  assert.equal(adds, 1000);
  assert.deepEqual(allocations(network), [], "every DEL released its address");
  assert.deepEqual(readdirSync(claims), []);
  const gc = await lab.run("podnet-ipam", { command: "GC", stdin: conf });
  assert.equal(gc.code, 0, gc.stdout);
  assert.deepEqual(
    files(network).filter((f) => !f.startsWith("last_")),
    [],
    "no allocation and no temporary file is left",
  );
});

test("a process killed (SIGKILL) at any moment never causes a duplicate; GC reclaims the leak", async () => {
  const network = `${lab.prefix}kill`;
  const conf = config(network, [
    [{ subnet: "10.211.0.0/24", rangeStart: "10.211.0.10", rangeEnd: "10.211.0.25" }],
  ]);
  const capacity = 16;
  for (let round = 0; round < 12; round++) {
    const w = worker(["churn", conf, String(round)]);
    await new Promise<void>((resolve) => w.child.stdout?.once("data", () => resolve()));
    await new Promise((r) => setTimeout(r, 5 + Math.random() * 60));
    w.child.kill("SIGKILL");
    await w.done;
    // Whatever the moment, every allocation file names its owner completely.
    for (const f of allocations(network)) {
      const text = readFileSync(join(lab.dataDir, network, f), "utf8");
      assert.match(text, /^k\d+-\d+\neth0$/, `${f} holds ${JSON.stringify(text)}`);
    }
  }
  const leaked = allocations(network);
  assert.ok(leaked.length <= 12, `at most one leak per kill, got ${leaked.length}`);

  // Fill every free address from parallel executables: all distinct, none an address still held.
  const fill = await Promise.all(
    Array.from({ length: capacity - leaked.length + 2 }, (_, i) =>
      lab.run("podnet-ipam", {
        command: "ADD",
        stdin: conf,
        containerId: `fill-${i}`,
        ifname: "eth0",
        netns: "/proc/self/ns/net",
      }),
    ),
  );
  const got = fill.filter((r) => r.code === 0).map((r) => r.json.ips[0].address.split("/")[0]);
  const exhausted = fill.filter((r) => r.code !== 0);
  assert.equal(got.length, capacity - leaked.length);
  assert.equal(new Set(got).size, got.length, "no address handed out twice");
  for (const ip of got) assert.ok(!leaked.includes(ip), `${ip} was still held by a killed process`);
  assert.equal(exhausted.length, 2);
  for (const r of exhausted) assert.equal(r.json.code, 100, r.stdout);

  // GC with the fillers as the valid attachments releases exactly the leaks (and the killed writers' temp files).
  const fillers = fill.map((r, i) => (r.code === 0 ? `fill-${i}` : undefined)).filter(Boolean);
  const withValid = JSON.stringify({
    ...JSON.parse(conf),
    "cni.dev/valid-attachments": fillers.map((id) => ({ containerID: id, ifname: "eth0" })),
  });
  const gc = await lab.run("podnet-ipam", { command: "GC", stdin: withValid });
  assert.equal(gc.code, 0, gc.stdout);
  assert.equal(allocations(network).length, got.length);
  assert.deepEqual(
    files(network).filter((f) => f.startsWith(".")),
    [],
    "temporary files of killed processes are removed",
  );
});

test("parallel podnet-ipam executables (8 x 4 ADDs, dual-stack) get distinct addresses", async () => {
  const network = `${lab.prefix}exec`;
  const conf = config(network, [[{ subnet: "10.212.0.0/24" }], [{ subnet: "fd21::/120" }]]);
  const runs = await Promise.all(
    Array.from({ length: 8 }, async (_, w) => {
      const out: string[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await lab.run("podnet-ipam", {
          command: "ADD",
          stdin: conf,
          containerId: `x${w}-${i}`,
          ifname: "eth0",
          netns: "/proc/self/ns/net",
        });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        out.push(...r.json.ips.map((ip: { address: string }) => ip.address));
      }
      return out;
    }),
  );
  const all = runs.flat();
  assert.equal(all.length, 64);
  assert.equal(new Set(all).size, 64);
  assert.equal(allocations(network).length, 64);
});
