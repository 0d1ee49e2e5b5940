// installPlugins: the executables a runtime runs, and that they answer as the plugins.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { installPlugins } from "../src/cni/install.js";

const dir = mkdtempSync(join(tmpdir(), "pnt-install-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function version(file: string) {
  const r = spawnSync(file, [], {
    input: '{"cniVersion":"0.4.0"}',
    encoding: "utf8",
    env: { PATH: process.env.PATH, CNI_COMMAND: "VERSION" },
  });
  return { code: r.status, json: r.stdout ? JSON.parse(r.stdout) : undefined, stderr: r.stderr };
}

test("installs executable launchers podnet and podnet-ipam that answer as the plugins", () => {
  const paths = installPlugins(join(dir, "bin"));
  assert.deepEqual(paths, [join(dir, "bin", "podnet"), join(dir, "bin", "podnet-ipam")]);
  for (const p of paths) {
    assert.equal(statSync(p).mode & 0o777, 0o755);
    const text = readFileSync(p, "utf8");
    assert.match(text, /^#!\/bin\/sh\n/);
    assert.match(text, /dist\/plugins\/podnet(-ipam)?\.cjs/);
    const r = version(p);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.json, {
      cniVersion: "0.4.0",
      supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    });
    assert.equal(r.stderr, "");
  }
  // Installing again replaces the files.
  assert.deepEqual(installPlugins(join(dir, "bin")), paths);
});
