/** Reading files and directories. */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadManifestFiles } from "./loader.js";

const svc = (name: string) =>
  `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\nspec:\n  ports: [{port: 80}]\n`;

test("directories are read recursively (*.yaml, *.yml, *.json) in sorted order", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "podnet-api-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, "b"));
  mkdirSync(join(dir, ".git"));
  writeFileSync(join(dir, "c.yaml"), svc("c"));
  writeFileSync(join(dir, "a.yml"), svc("a"));
  writeFileSync(
    join(dir, "b", "b.json"),
    JSON.stringify({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "b" },
      spec: { ports: [{ port: 80 }] },
    }),
  );
  writeFileSync(join(dir, "notes.txt"), "not a manifest");
  writeFileSync(join(dir, ".git", "x.yaml"), svc("hidden"));
  const r = loadManifestFiles([dir]);
  assert.deepEqual(r.diagnostics, []);
  assert.deepEqual(
    r.state.services.map((s) => [s.meta.name, s.meta.source?.file]),
    [
      ["a", join(dir, "a.yml")],
      ["b", join(dir, "b", "b.json")],
      ["c", join(dir, "c.yaml")],
    ],
  );
});

test("a missing file is a diagnostic, and the other files still load", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "podnet-api-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "ok.yaml"), svc("ok"));
  const missing = join(dir, "nope.yaml");
  const r = loadManifestFiles([missing, join(dir, "ok.yaml")]);
  assert.equal(r.diagnostics.length, 1);
  assert.equal(r.diagnostics[0]?.severity, "error");
  assert.equal(r.diagnostics[0]?.message, `file not found: ${missing}`);
  assert.equal(r.state.services.length, 1);
});

test("diagnostics are ordered by file, then line", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "podnet-api-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "1.yaml"), `${svc("Bad1")}---\n${svc("x").replace("port: 80", "port: 0")}`);
  writeFileSync(join(dir, "2.yaml"), svc("Bad2"));
  const r = loadManifestFiles([dir]);
  assert.deepEqual(
    r.diagnostics.map((d) => `${d.source?.file.slice(dir.length + 1)}:${d.source?.line}`),
    ["1.yaml:4", "1.yaml:13", "2.yaml:4"],
  );
});
