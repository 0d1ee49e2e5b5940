// Runs every compiled test (unit tests beside their modules in dist/src, integration tests in dist/test)
// with node's test runner, whose closing summary CI reads. Extra arguments filter test files by substring.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
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
const result = spawnSync(process.execPath, ["--test", "--test-reporter=spec", ...files], {
  stdio: "inherit",
});
process.exit(result.status ?? 1);
