// Runs every compiled test (unit tests beside their modules in dist/src, integration tests in dist/test)
// with node's test runner, whose closing summary CI reads. Extra arguments filter test files by substring.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

function findTests(dir) {
  const found = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) found.push(...findTests(path));
    else if (entry.endsWith(".test.js")) found.push(path);
  }
  return found;
}

const filters = process.argv.slice(2);
const files = findTests("dist")
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error("run-tests: no test files found under dist/ (did the build run?)");
  process.exit(1);
}
// Leak check: what the machine holds before and after the suite must be the same (namespaces, root
// namespace links and nftables tables, podnet's runtime directories and labs, pods' /etc/netns files, lab
// agent processes).
function snapshot() {
  const lines = (cmd, args) => {
    const r = spawnSync(cmd, args, { encoding: "utf8" });
    return r.status === 0 ? r.stdout.split("\n").filter(Boolean) : [];
  };
  return new Set([
    ...lines("ip", ["netns", "list"]).map((l) => `netns ${l.split(" ")[0]}`),
    ...lines("ip", ["-o", "link", "show"]).map((l) => `link ${l.split(":")[1]?.trim().split("@")[0]}`),
    ...lines("nft", ["list", "tables"]).map((l) => `nft ${l}`),
    ...["/run/podnet-cni", "/var/lib/cni/networks/podnet"]
      .filter((d) => existsSync(d))
      .map((d) => `dir ${d}`),
    ...(existsSync("/etc/netns") ? readdirSync("/etc/netns").map((n) => `netns files /etc/netns/${n}`) : []),
    ...(existsSync("/run/podnet/labs")
      ? readdirSync("/run/podnet/labs").map((l) => `lab /run/podnet/labs/${l}`)
      : []),
    ...readdirSync("/proc")
      .filter((p) => /^\d+$/.test(p))
      .flatMap((pid) => {
        try {
          const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
          const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
          const zombie = stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
          return !zombie && argv.includes("lab") && argv.includes("agent")
            ? [`process ${pid} ${argv.join(" ").trim()}`]
            : [];
        } catch {
          return [];
        }
      }),
  ]);
}

const before = snapshot();
const result = spawnSync(process.execPath, ["--test", "--test-reporter=spec", ...files], {
  stdio: "inherit",
});
const leaked = [...snapshot()].filter((item) => !before.has(item));
if (leaked.length > 0) {
  console.error(`leak check: the tests left behind ${leaked.length} things:\n  ${leaked.join("\n  ")}`);
  process.exit(1);
}
// Nothing printed when clean: the test runner's summary stays the last lines of the output.
process.exit(result.status ?? 1);
