// Test harness for the CNI runtime tests: a "node" network namespace the plugins run in, pod namespaces,
// an external namespace wired to the node by a veth, a fake plugin that records what it is given, and
// servers started by PID. Everything carries one random prefix (pnr<hex>-) and is removed by cleanup(),
// also when a test fails; leftovers() is the suite's leak check.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const isRoot = process.getuid?.() === 0;
export const REFERENCE_BIN = "/usr/lib/cni";
export const PREFIX = `pnr${randomBytes(2).toString("hex")}`;
/** Environment for node processes started in namespaces: no NODE_EXTRA_CA_CERTS (slow start) etc. */
const CLEAN_ENV = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin" };

let labCount = 0;

export function ip(...args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

export function netnsList(): string[] {
  return ip("netns", "list")
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter(Boolean);
}

/** Namespaces and root-namespace links with this suite's prefix that still exist. */
export function leftovers(): string[] {
  const ns = netnsList().filter((n) => n.startsWith(PREFIX));
  const links = ip("-o", "link", "show")
    .split("\n")
    .map((l) => l.split(": ")[1]?.split("@")[0] ?? "")
    .filter((n) => n.startsWith(PREFIX));
  return [...ns.map((n) => `netns ${n}`), ...links.map((l) => `link ${l}`)];
}

/** The fake plugin: records env and stdin (config "record": file), fails on demand ("fail": {ADD: {...}}),
 * passes prevResult on for ADD, speaks 0.3.0 to 1.1.0. */
const RECORDER = `#!${process.execPath}
const fs = require("fs");
const cmd = process.env.CNI_COMMAND;
const text = fs.readFileSync(0, "utf8");
const conf = text ? JSON.parse(text) : {};
if (conf.record) fs.appendFileSync(conf.record, JSON.stringify({ command: cmd, env: process.env, conf }) + "\\n");
const out = (o) => process.stdout.write(JSON.stringify(o));
if (conf.crash && conf.crash === cmd) { process.stderr.write("recorder: boom\\n"); process.exit(2); }
const fail = conf.fail && conf.fail[cmd];
if (fail) { out({ cniVersion: conf.cniVersion, ...fail }); process.exit(1); }
if (cmd === "VERSION") { out({ cniVersion: "1.1.0", supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] }); process.exit(0); }
if (cmd === "ADD") out(conf.prevResult || { cniVersion: conf.cniVersion, ips: [{ address: "192.0.2.99/32" }] });
`;

export interface Pod {
  name: string;
  path: string;
}

export class Lab {
  readonly id = ++labCount;
  readonly dir = mkdtempSync(join(tmpdir(), `${PREFIX}-`));
  readonly node = `${PREFIX}-n${this.id}`;
  readonly nodePath = `/run/netns/${this.node}`;
  readonly cacheDir = join(this.dir, "cache");
  readonly ipamDir = join(this.dir, "ipam");
  readonly fakeBin = join(this.dir, "bin");
  private readonly namespaces: string[] = [];
  private readonly processes: ChildProcess[] = [];

  constructor() {
    mkdirSync(this.fakeBin);
    writeFileSync(join(this.fakeBin, "recorder"), RECORDER);
    chmodSync(join(this.fakeBin, "recorder"), 0o755);
    this.addNetns(this.node);
    ip("-n", this.node, "link", "set", "lo", "up");
  }

  private addNetns(name: string): void {
    ip("netns", "add", name);
    this.namespaces.push(name);
  }

  pod(suffix: string): Pod {
    const name = `${PREFIX}-${this.id}${suffix}`;
    this.addNetns(name);
    return { name, path: `/run/netns/${name}` };
  }

  /** An external host: a namespace joined to the node by a veth; node 192.0.2.1/24, external 192.0.2.2/24. */
  external(): { name: string; nodeAddress: string; address: string } {
    const name = `${PREFIX}-${this.id}x`;
    this.addNetns(name);
    const nodeSide = `${PREFIX}-${this.id}n`;
    const extSide = `${PREFIX}-${this.id}e`;
    ip("-n", this.node, "link", "add", nodeSide, "type", "veth", "peer", "name", extSide, "netns", name);
    ip("-n", this.node, "addr", "add", "192.0.2.1/24", "dev", nodeSide);
    ip("-n", this.node, "link", "set", nodeSide, "up");
    ip("-n", name, "addr", "add", "192.0.2.2/24", "dev", extSide);
    ip("-n", name, "link", "set", extSide, "up");
    ip("-n", name, "link", "set", "lo", "up");
    return { name, nodeAddress: "192.0.2.1", address: "192.0.2.2" };
  }

  /** Addresses (CIDR) of an interface in a namespace. */
  addresses(ns: string, dev: string): string[] {
    try {
      const info = JSON.parse(ip("-n", ns, "-j", "addr", "show", "dev", dev)) as {
        addr_info: { family: string; local: string; prefixlen: number }[];
      }[];
      return (info[0]?.addr_info ?? [])
        .filter((a) => a.family === "inet")
        .map((a) => `${a.local}/${a.prefixlen}`);
    } catch {
      return [];
    }
  }

  links(
    ns: string,
  ): { ifname: string; mtu: number; link_type?: string; linkinfo?: { info_kind?: string } }[] {
    return JSON.parse(ip("-n", ns, "-d", "-j", "link", "show"));
  }

  /** A TCP server in a namespace that answers every connection with `reply` and closes. */
  async tcpServer(ns: string, port: number, reply: string): Promise<ChildProcess> {
    const script = `require("net").createServer((s) => s.end(${JSON.stringify(reply)})).listen(${port}, () => console.log("ready"));`;
    const child = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", script], {
      env: CLEAN_ENV,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.processes.push(child);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server in ${ns} did not start`)), 10_000);
      child.stdout?.on("data", (b: Buffer) => {
        if (b.toString().includes("ready")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on("exit", (code) => reject(new Error(`server in ${ns} exited (${code})`)));
    });
    return child;
  }

  /** Connects from a namespace; returns what the server sent, or "ERR <code>" / "TIMEOUT". */
  tcpGet(ns: string, host: string, port: number): string {
    const script = `const s = require("net").connect(${port}, ${JSON.stringify(host)}); let d = "";
s.on("data", (b) => (d += b)); s.on("end", () => { console.log(d); process.exit(0); });
s.on("error", (e) => { console.log("ERR " + e.code); process.exit(0); });
setTimeout(() => { console.log("TIMEOUT"); process.exit(0); }, 3000);`;
    return execFileSync("ip", ["netns", "exec", ns, process.execPath, "-e", script], {
      env: CLEAN_ENV,
      encoding: "utf8",
      timeout: 15_000,
    }).trim();
  }

  /** JSON lines the recorder wrote to `file`. */
  records(file: string): { command: string; env: Record<string, string>; conf: Record<string, unknown> }[] {
    try {
      return readFileSync(file, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l));
    } catch {
      return [];
    }
  }

  cleanup(): void {
    for (const child of this.processes) if (child.exitCode === null && child.pid) child.kill("SIGKILL");
    for (const ns of this.namespaces.reverse()) {
      try {
        ip("netns", "del", ns);
      } catch {}
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs `fn` with a fresh lab, always cleaned up. */
export async function withLab(fn: (lab: Lab) => Promise<void> | void): Promise<void> {
  const lab = new Lab();
  try {
    await fn(lab);
  } finally {
    lab.cleanup();
  }
}
