import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { ErrorCode } from "../spec.js";
import { loadConfList, parseConfList, validateConfList } from "./conflist.js";
import { ConfigError } from "./errors.js";
import { jsonValueOffsets, lineOf } from "./json-positions.js";

const dir = mkdtempSync(join(tmpdir(), "podnet-conflist-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    return error;
  }
  assert.fail("expected a ConfigError");
}

test("a .conflist loads as is, with disableCheck/disableGC and cniVersions", () => {
  const file = join(dir, "net.conflist");
  writeFileSync(
    file,
    JSON.stringify({
      cniVersion: "1.0.0",
      cniVersions: ["1.0.0", "1.1.0"],
      name: "podnet",
      disableCheck: true,
      disableGC: "false",
      plugins: [
        { type: "bridge", bridge: "cbr0", ipam: { type: "host-local", subnet: "10.0.0.0/24" } },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    }),
  );
  const list = loadConfList(file);
  assert.equal(list.name, "podnet");
  assert.equal(list.cniVersion, "1.0.0");
  assert.deepEqual(list.cniVersions, ["1.0.0", "1.1.0"]);
  assert.equal(list.disableCheck, true);
  assert.equal(list.disableGC, false, 'libcni accepts the string "false"');
  assert.deepEqual(
    list.plugins.map((p) => p.type),
    ["bridge", "portmap"],
  );
  assert.deepEqual(list.plugins[1]?.capabilities, { portMappings: true });
});

test("a plain .conf becomes a one-plugin list", () => {
  const list = parseConfList(
    JSON.stringify({ cniVersion: "0.4.0", name: "single", type: "bridge", ipam: { type: "host-local" } }),
    "single.conf",
  );
  assert.equal(list.name, "single");
  assert.equal(list.cniVersion, "0.4.0");
  assert.equal(list.plugins.length, 1);
  assert.equal(list.plugins[0]?.type, "bridge");
  assert.deepEqual(list.plugins[0]?.ipam, { type: "host-local" });
});

test("every problem is reported at once, with file, line, field and a fix (code 7)", () => {
  const text = `{
  "cniVersion": "1.0",
  "name": "bad name",
  "plugins": [
    {"type": "bridge"},
    {"type": "../evil"},
    {"ipam": {"subnet": "10.0.0.0/24"}},
    {"type": "portmap", "capabilities": {"portMappings": "yes"}}
  ]
}`;
  const error = configError(() => parseConfList(text, "net.conflist"));
  assert.equal(error.code, ErrorCode.InvalidConfig);
  assert.equal(error.file, "net.conflist");
  const found = error.diagnostics.map((d) => [d.path, d.source?.line]);
  assert.deepEqual(found, [
    ["name", 3],
    ["cniVersion", 2],
    ["plugins[1].type", 6],
    ["plugins[2].type", 7],
    ["plugins[2].ipam.type", 7],
    ["plugins[3].capabilities.portMappings", 8],
  ]);
  for (const d of error.diagnostics) assert.ok(d.hint, `no fix for ${d.path}`);
  assert.match(
    error.message,
    /net\.conflist:6: error: plugins\[1\]\.type: "type" must name a plugin executable/,
  );
  assert.match(error.message, /fix: /);
});

test("missing plugins, name and versions say what to add", () => {
  const error = configError(() => parseConfList('{"plugins": []}', "empty.conflist"));
  const byPath = Object.fromEntries(error.diagnostics.map((d) => [d.path, d.message]));
  assert.match(byPath.name ?? "", /missing field "name"/);
  assert.match(byPath.cniVersion ?? "", /missing field "cniVersion"/);
  assert.match(byPath.plugins ?? "", /non-empty list/);
  const none = configError(() => parseConfList('{"name": "x", "cniVersion": "1.0.0"}', "x.conflist"));
  assert.match(none.message, /missing field "plugins" \(and no "type"/);
});

test("invalid JSON names the line", () => {
  const error = configError(() => parseConfList('{\n  "name": "x",\n  "plugins": [,]\n}', "broken.conflist"));
  assert.equal(error.code, ErrorCode.InvalidConfig);
  assert.match(
    error.message,
    /^broken\.conflist:3: error: not valid JSON: unexpected "," at line 3, column 15/,
  );
});

test("an unreadable file is a ConfigError naming the file", () => {
  const error = configError(() => loadConfList(join(dir, "missing.conflist")));
  assert.match(error.message, /missing\.conflist:1: error: cannot read the network configuration/);
});

test("objects built in code are validated too", () => {
  const list = validateConfList({ cniVersion: "1.1.0", name: "n", plugins: [{ type: "podnet" }] });
  assert.equal(list.plugins[0]?.type, "podnet");
  const error = configError(() => validateConfList({ cniVersion: "1.1.0", name: "n", plugins: [{}] }));
  assert.match(error.message, /<inline>:1: error: plugins\[0\]\.type: missing field "type"/);
  configError(() => validateConfList(["not", "an", "object"]));
  configError(() =>
    validateConfList({ cniVersion: "1.1.0", name: "n", disableCheck: "maybe", plugins: [{ type: "a" }] }),
  );
});

test("jsonValueOffsets locates nested fields", () => {
  const text = '{\n "a": [1, {"b": "x\\"y"}],\n "c": {"d": null}\n}';
  const offsets = jsonValueOffsets(text);
  assert.equal(lineOf(text, offsets.get("a[1].b") ?? -1), 2);
  assert.equal(lineOf(text, offsets.get("c.d") ?? -1), 3);
  assert.equal(offsets.get(""), 0);
});
