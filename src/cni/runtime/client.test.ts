// The client's logic with an injected executor (no processes, no root): order, prevResult, cache, undo.
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import type { NetworkConfigList, PluginConfig } from "../spec.js";
import { CniRuntime } from "./client.js";
import { PluginError } from "./errors.js";
import type { ExecPlugin, ExecRequest } from "./invoke.js";

const dir = mkdtempSync(join(tmpdir(), "podnet-client-"));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Call {
  command: string;
  type: string;
  config: PluginConfig;
  req: ExecRequest;
}

/** Plugins as functions: each ADD appends an address to prevResult; `failAdd` fails that plugin's ADD. */
function fakeRuntime(failAdd?: string) {
  const calls: Call[] = [];
  const execPlugin: ExecPlugin = async (req) => {
    const config = JSON.parse(req.stdin) as PluginConfig;
    const command = req.env.CNI_COMMAND ?? "";
    calls.push({ command, type: config.type, config, req });
    if (command === "ADD" && config.type === failAdd)
      return {
        exitCode: 1,
        signal: null,
        stderr: "",
        stdout: JSON.stringify({ code: 11, msg: "try later" }),
      };
    if (command !== "ADD") return { exitCode: 0, signal: null, stdout: "", stderr: "" };
    const prev = config.prevResult ?? { cniVersion: config.cniVersion, ips: [] };
    const ips = [...(prev.ips ?? []), { address: `10.0.0.${(prev.ips?.length ?? 0) + 2}/24` }];
    return { exitCode: 0, signal: null, stderr: "", stdout: JSON.stringify({ ...prev, ips }) };
  };
  const cni = new CniRuntime({
    binDirs: ["/fake/bin"],
    cacheDir: mkdtempSync(join(dir, "cache-")),
    pluginNetns: "/run/netns/node-1",
    execPlugin,
    findPlugin: (type, dirs) => `${dirs[0]}/${type}`,
  });
  return { cni, calls };
}

const list: NetworkConfigList = {
  cniVersion: "1.1.0",
  name: "net",
  plugins: [{ type: "a" }, { type: "b", capabilities: { portMappings: true } }, { type: "c" }],
};
const att = {
  containerID: "c1",
  netns: "/run/netns/pod",
  ifname: "eth0",
  capabilityArgs: { portMappings: [{ hostPort: 80 }], mac: "x" },
};

test("ADD runs the chain in order with prevResult; DEL runs it in reverse with the cached result", async () => {
  const { cni, calls } = fakeRuntime();
  const result = await cni.add(list, att);
  assert.deepEqual(
    result.ips?.map((i) => i.address),
    ["10.0.0.2/24", "10.0.0.3/24", "10.0.0.4/24"],
  );
  assert.deepEqual(
    calls.map((c) => `${c.command} ${c.type}`),
    ["ADD a", "ADD b", "ADD c"],
  );
  assert.equal(calls[0]?.config.prevResult, undefined);
  assert.deepEqual(calls[2]?.config.prevResult?.ips?.length, 2);
  assert.equal(calls[0]?.req.netns, "/run/netns/node-1", "plugins run in the plugin namespace");
  assert.equal(calls[0]?.req.path, "/fake/bin/a");
  assert.deepEqual(calls[1]?.config.runtimeConfig, { portMappings: [{ hostPort: 80 }] });
  assert.equal(calls[0]?.config.runtimeConfig, undefined);
  assert.deepEqual(Object.keys(calls[0]?.req.env ?? {}).sort(), [
    "CNI_COMMAND",
    "CNI_CONTAINERID",
    "CNI_IFNAME",
    "CNI_NETNS",
    "CNI_PATH",
    "PATH",
  ]);

  calls.length = 0;
  await cni.del(list, { containerID: "c1", ifname: "eth0" });
  assert.deepEqual(
    calls.map((c) => `${c.command} ${c.type}`),
    ["DEL c", "DEL b", "DEL a"],
  );
  for (const c of calls) assert.deepEqual(c.config.prevResult, result);
  assert.deepEqual(
    calls[1]?.config.runtimeConfig,
    { portMappings: [{ hostPort: 80 }] },
    "cached capability args",
  );
  assert.equal(calls[0]?.req.env.CNI_NETNS, undefined);
  assert.equal(cni.cachedResult(list, att), undefined);
});

test("a failed ADD DELetes the plugins that ran (including the failing one), in reverse", async () => {
  const { cni, calls } = fakeRuntime("b");
  await assert.rejects(
    cni.add(list, att),
    (e: unknown) =>
      e instanceof PluginError && e.code === 11 && e.plugin === "b" && e.cleanupErrors.length === 0,
  );
  assert.deepEqual(
    calls.map((c) => `${c.command} ${c.type}`),
    ["ADD a", "ADD b", "DEL b", "DEL a"],
  );
  assert.deepEqual(cni.cachedAttachments(), []);
});

test("operations on one attachment never overlap", async () => {
  const { cni, calls } = fakeRuntime();
  await Promise.all([cni.add(list, att), cni.del(list, att), cni.add(list, att)]);
  assert.deepEqual(
    calls.map((c) => c.command),
    ["ADD", "ADD", "ADD", "DEL", "DEL", "DEL", "ADD", "ADD", "ADD"],
  );
});

test("a plugin that does not answer in time is killed and reported", async () => {
  const bin = join(dir, "bin");
  rmSync(bin, { recursive: true, force: true });
  mkdirSync(bin);
  writeFileSync(join(bin, "slow"), "#!/bin/sh\nsleep 5\n");
  chmodSync(join(bin, "slow"), 0o755);
  const cni = new CniRuntime({ binDirs: [bin], cacheDir: join(dir, "c"), timeoutMs: 300 });
  await assert.rejects(
    cni.status({ cniVersion: "1.1.0", name: "n", plugins: [{ type: "slow" }] }),
    (e: unknown) =>
      e instanceof PluginError && /no answer after 300 ms/.test(e.message) && e.signal === "SIGKILL",
  );
});
