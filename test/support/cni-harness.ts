// Test support for the CNI plugin tests: namespaces with a unique prefix (removed in cleanup, also after a
// failure), plugin invocations as a runtime makes them (env + stdin, inside a node namespace via
// `ip netns exec`), and tiny TCP servers/clients run inside namespaces for real-packet checks.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import { installPlugins } from "../../src/cni/install.js";

/** The environment plugins get: PATH only (as from a container runtime), plus CNI_*. */
export function baseEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin" };
}

export function sh(
  cmd: string,
  args: string[],
  input?: string,
): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, {
    input,
    encoding: "utf8",
    env: { ...process.env, NODE_EXTRA_CA_CERTS: "" },
  });
  return { code: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

export function mustSh(cmd: string, args: string[], input?: string): string {
  const r = sh(cmd, args, input);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

export interface CniCall {
  command: string;
  config?: unknown;
  /** Raw stdin (instead of config). */
  stdin?: string;
  containerId?: string;
  ifname?: string;
  netns?: string;
  /** Extra or overriding variables; undefined removes one. */
  env?: Record<string, string | undefined>;
}

export interface CniOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
  // biome-ignore lint/suspicious/noExplicitAny: test convenience for JSON outputs
  json: any;
}

export class CniLab {
  /** `TAG<6 hex>-`: every namespace and link of this lab starts with it. */
  readonly prefix: string;
  readonly dir: string;
  readonly binDir: string;
  readonly dataDir: string;
  private readonly namespaces: string[] = [];
  private readonly processes: ChildProcess[] = [];

  /** `tag` starts the prefix of this lab's namespaces (each test file its own, so leaks name their file). */
  constructor(tag = "pnt") {
    this.prefix = `${tag}${randomBytes(3).toString("hex")}-`;
    this.dir = mkdtempSync(join(tmpdir(), `${tag}-cni-`));
    this.binDir = join(this.dir, "bin");
    this.dataDir = join(this.dir, "data");
    installPlugins(this.binDir);
  }

  /** Creates namespace PREFIX+suffix; returns its name. */
  netns(suffix: string): string {
    const name = `${this.prefix}${suffix}`;
    mustSh("ip", ["netns", "add", name]);
    this.namespaces.push(name);
    mustSh("ip", ["-n", name, "link", "set", "lo", "up"]);
    return name;
  }

  path(ns: string): string {
    return `/run/netns/${ns}`;
  }

  deleteNetns(name: string): void {
    sh("ip", ["netns", "del", name]);
  }

  /**
   * Runs a plugin executable, inside `nodeNs` when given: `podnet` or `podnet-ipam` (installed in binDir), or
   * an absolute path (e.g. the reference plugins in /usr/lib/cni).
   */
  async run(plugin: string, call: CniCall, nodeNs?: string): Promise<CniOutcome> {
    const env: NodeJS.ProcessEnv = {
      ...baseEnv(),
      CNI_COMMAND: call.command,
      CNI_PATH: `${this.binDir}:/usr/lib/cni`,
    };
    if (call.containerId) env.CNI_CONTAINERID = call.containerId;
    if (call.ifname) env.CNI_IFNAME = call.ifname;
    if (call.netns) env.CNI_NETNS = call.netns;
    for (const [k, v] of Object.entries(call.env ?? {})) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    const exe = isAbsolute(plugin) ? plugin : join(this.binDir, plugin);
    const [cmd, args] = nodeNs ? ["ip", ["netns", "exec", nodeNs, exe]] : [exe, []];
    const stdin = call.stdin ?? (call.config === undefined ? "" : JSON.stringify(call.config));
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, args as string[], { env });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (b) => {
        stdout += b;
      });
      child.stderr.on("data", (b) => {
        stderr += b;
      });
      child.on("error", reject);
      child.stdin.on("error", () => {}); // a plugin may exit without reading stdin (EPIPE)
      child.on("close", (code) => {
        let json: unknown;
        try {
          json = stdout.trim() ? JSON.parse(stdout) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ code, stdout, stderr, json });
      });
      child.stdin.end(stdin);
    });
  }

  /** Starts a TCP server in `ns` that answers "NAME REMOTE-ADDRESS"; resolves once it listens. */
  async serve(ns: string, host: string, port: number, name: string): Promise<void> {
    const code = `const net=require("net");const [h,p,n]=process.argv.slice(1);
net.createServer(c=>c.end(n+" "+c.remoteAddress+"\\n")).listen(+p,h,()=>console.log("ready"));`;
    const child = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", code, host, String(port), name], {
      env: baseEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.processes.push(child);
    await new Promise<void>((resolve, reject) => {
      let err = "";
      const timer = setTimeout(() => reject(new Error(`server in ${ns} did not start: ${err}`)), 10_000);
      child.stderr?.on("data", (b) => {
        err += b;
      });
      child.stdout?.on("data", (b) => {
        if (String(b).includes("ready")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on("exit", (c) => {
        clearTimeout(timer);
        reject(new Error(`server in ${ns} exited (${c}): ${err}`));
      });
    });
  }

  /** Connects from `ns` to host:port; returns the server's answer, or throws with the error. */
  connect(ns: string, host: string, port: number): string {
    const code = `const net=require("net");const [h,p]=process.argv.slice(1);
const s=net.connect({host:h,port:+p,timeout:2000});let d="";s.on("data",b=>d+=b);
s.on("end",()=>{process.stdout.write(d);process.exit(0)});s.on("timeout",()=>{console.error("timeout");process.exit(2)});
s.on("error",e=>{console.error(e.message);process.exit(1)});`;
    const r = sh("ip", ["netns", "exec", ns, process.execPath, "-e", code, host, String(port)]);
    if (r.code !== 0) throw new Error(`connect from ${ns} to ${host}:${port} failed: ${r.stderr.trim()}`);
    return r.stdout.trim();
  }

  /** Kills what this lab started (by PID), deletes its namespaces and files. */
  cleanup(): string[] {
    for (const p of this.processes) if (p.exitCode === null && p.pid) p.kill("SIGKILL");
    for (const ns of this.namespaces) this.deleteNetns(ns);
    rmSync(this.dir, { recursive: true, force: true });
    return mustSh("ip", ["netns", "list"])
      .split("\n")
      .filter((l) => l.startsWith(this.prefix));
  }
}
