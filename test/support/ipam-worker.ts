// A worker process for the IPAM concurrency tests (test/cni-conformance.test.ts): ADD/DEL cycles against a
// shared data directory, through either IPAM:
//   IPAM = "podnet-ipam": the plugin's own entry (runPlugin with env and stdin, in-process, so 1,000 cycles
//          take seconds rather than minutes of node start-up);
//   IPAM = an absolute path (e.g. /usr/lib/cni/host-local): that executable, one process per call.
//
//   node ipam-worker.js cycles IPAM CONFIG_JSON WORKER CYCLES CLAIMS_DIR
//     Each cycle: ADD, claim the address (mkdir CLAIMS_DIR/ADDRESS: EEXIST means another worker holds the
//     same address at the same time, a duplicate), release the claim, DEL. Prints a JSON summary.
//   node ipam-worker.js churn IPAM CONFIG_JSON WORKER
//     ADD/DEL forever, printing "held ID ADDRESS" after each ADD and "released ID" after each DEL (the
//     test kills it, and the executable it is running, with SIGKILL at a random moment).
import { spawnSync } from "node:child_process";
import { mkdirSync, rmdirSync } from "node:fs";
import { ipamHandlers } from "../../src/cni/ipam/plugin.js";
import { runPlugin } from "../../src/cni/skel.js";

const [mode, ipam, configJson, worker, cyclesText, claimsDir] = process.argv.slice(2);
const stdin = configJson ?? "{}";

async function call(command: string, id: string): Promise<{ exitCode: number; stdout: string }> {
  const env = {
    CNI_COMMAND: command,
    CNI_CONTAINERID: id,
    CNI_IFNAME: "eth0",
    CNI_NETNS: "/proc/self/ns/net",
    CNI_PATH: "/usr/lib/cni",
  };
  if (ipam === "podnet-ipam") return runPlugin(ipamHandlers, { env, stdin });
  const r = spawnSync(ipam as string, [], {
    input: stdin,
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...env },
  });
  return { exitCode: r.status ?? 1, stdout: r.stdout ?? "" };
}

function spin(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // hold the address for a moment so that workers overlap
  }
}

if (mode === "cycles") {
  const cycles = Number(cyclesText);
  const seen = new Set<string>();
  let adds = 0;
  for (let i = 0; i < cycles; i++) {
    const id = `w${worker}-${i}`;
    const add = await call("ADD", id);
    if (add.exitCode !== 0) {
      process.stdout.write(`${JSON.stringify({ error: add.stdout })}\n`);
      process.exit(2);
    }
    const ip = JSON.parse(add.stdout).ips[0].address.split("/")[0] as string;
    adds++;
    seen.add(ip);
    try {
      mkdirSync(`${claimsDir}/${ip}`);
    } catch {
      process.stdout.write(`${JSON.stringify({ duplicate: ip, id })}\n`);
      process.exit(3);
    }
    spin(Math.random() * 2);
    rmdirSync(`${claimsDir}/${ip}`);
    const del = await call("DEL", id);
    if (del.exitCode !== 0) {
      process.stdout.write(`${JSON.stringify({ error: del.stdout })}\n`);
      process.exit(2);
    }
  }
  process.stdout.write(`${JSON.stringify({ adds, distinct: seen.size })}\n`);
} else if (mode === "churn") {
  process.stdout.write("ready\n");
  for (let i = 0; ; i++) {
    const id = `k${worker}-${i}`;
    const add = await call("ADD", id);
    if (add.exitCode === 0) process.stdout.write(`held ${id} ${JSON.parse(add.stdout).ips[0].address}\n`);
    await call("DEL", id);
    process.stdout.write(`released ${id}\n`);
  }
} else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(1);
}
