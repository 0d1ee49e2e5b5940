// The node's CNI server: the installed executables answer through `podnet cni serve` running in the node's
// namespace, and run the plugin themselves when no server runs there.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { installPlugins } from "../src/cni/install.js";

const prefix = `pns${randomBytes(3).toString("hex")}`;
const node = `${prefix}-node`;
const pods = [`${prefix}-p1`, `${prefix}-p2`];
const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
const bin = join(dir, "bin");
let server: ChildProcess | undefined;
let serverLog = "";

const config = JSON.stringify({
  cniVersion: "1.0.0",
  name: "served",
  type: "podnet",
  bridge: "cbr0",
  ipam: { type: "podnet-ipam", subnet: "10.77.0.0/24", dataDir: join(dir, "ipam") },
});

function plugin(command: string, pod: string) {
  const r = spawnSync("ip", ["netns", "exec", node, join(bin, "podnet")], {
    input: config,
    encoding: "utf8",
    env: {
      PATH: process.env.PATH,
      CNI_COMMAND: command,
      CNI_CONTAINERID: pod,
      CNI_NETNS: `/run/netns/${pod}`,
      CNI_IFNAME: "eth0",
      CNI_PATH: bin,
    },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

async function startServer(): Promise<void> {
  const cli = join(process.cwd(), "dist/src/cli/main.js");
  server = spawn("ip", ["netns", "exec", node, process.execPath, cli, "cni", "serve", "--verbose"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  server.stderr?.on("data", (d: Buffer) => {
    serverLog += d.toString();
  });
  await new Promise<void>((resolve, reject) => {
    server?.stdout?.once("data", () => resolve());
    server?.once("exit", (code) => reject(new Error(`podnet cni serve exited with ${code}: ${serverLog}`)));
  });
}

/** The server logs asynchronously (and spawnSync blocks this process): wait, bounded, for a log line. */
async function serverLogged(pattern: RegExp): Promise<void> {
  for (let i = 0; i < 50 && !pattern.test(serverLog); i++) await new Promise((r) => setTimeout(r, 20));
  assert.match(serverLog, pattern);
}

function stopServer(): Promise<void> {
  const s = server;
  server = undefined;
  if (!s || s.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    s.once("exit", () => resolve());
    if (s.pid) process.kill(s.pid, "SIGTERM");
  });
}

before(() => {
  for (const ns of [node, ...pods]) assert.equal(spawnSync("ip", ["netns", "add", ns]).status, 0);
  installPlugins(bin);
});

after(async () => {
  await stopServer();
  for (const ns of [...pods, node]) spawnSync("ip", ["netns", "del", ns]);
  rmSync(dir, { recursive: true, force: true });
});

test("with a server in the node's namespace, ADD and DEL are answered by it", async () => {
  await startServer();
  const add = plugin("ADD", pods[0] as string);
  assert.equal(add.code, 0, add.out + add.err);
  const result = JSON.parse(add.out);
  assert.equal(result.ips[0].address, "10.77.0.2/24");
  assert.equal(result.interfaces[2].sandbox, `/run/netns/${pods[0]}`);
  const inPod = spawnSync("ip", ["-n", pods[0] as string, "-j", "addr", "show", "eth0"], {
    encoding: "utf8",
  });
  assert.match(inPod.stdout, /"local":"10\.77\.0\.2"/);
  const del = plugin("DEL", pods[0] as string);
  assert.equal(del.code, 0, del.out + del.err);
  await serverLogged(new RegExp(`podnet ADD ${pods[0]}: exit 0`));
  await serverLogged(new RegExp(`podnet DEL ${pods[0]}: exit 0`));
});

test("errors come back as the plugin's JSON and exit code through the server", async () => {
  const r = spawnSync("ip", ["netns", "exec", node, join(bin, "podnet")], {
    input: "{not json",
    encoding: "utf8",
    env: {
      PATH: process.env.PATH,
      CNI_COMMAND: "ADD",
      CNI_CONTAINERID: "x",
      CNI_NETNS: "/run/netns/x",
      CNI_IFNAME: "eth0",
    },
  });
  assert.equal(r.status, 1);
  assert.equal(JSON.parse(r.stdout).code, 6);
  await serverLogged(/podnet ADD x: exit 1/);
});

test("without a server the executable runs the plugin itself, with the same result", async () => {
  await stopServer();
  const before = serverLog;
  const add = plugin("ADD", pods[1] as string);
  assert.equal(add.code, 0, add.out + add.err);
  assert.equal(JSON.parse(add.out).ips[0].address, "10.77.0.3/24");
  assert.equal(plugin("DEL", pods[1] as string).code, 0);
  assert.equal(serverLog, before, "nothing reached a server");
});
