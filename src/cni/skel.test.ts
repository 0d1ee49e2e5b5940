import assert from "node:assert/strict";
import { test } from "node:test";
import { type CniRequest, type PluginHandlers, parseCniArgs, runPlugin, validAttachments } from "./skel.js";
import { CniError, type PluginConfig } from "./spec.js";

const calls: CniRequest[] = [];
const handlers: PluginHandlers = {
  name: "fake",
  async add(req) {
    calls.push(req);
    if (req.config.boom === "cni") throw new CniError(100, "range exhausted: widen it");
    if (req.config.boom === "bug") throw new TypeError("x is undefined");
    return {
      cniVersion: "1.1.0",
      interfaces: [{ name: "eth0", mtu: 1400, sandbox: req.netns }],
      ips: [{ address: "10.1.0.5/24", gateway: "10.1.0.1", interface: 0 }],
    };
  },
  async del(req) {
    calls.push(req);
  },
  async check(req) {
    calls.push(req);
  },
  async status(req) {
    calls.push(req);
  },
  async gc(req) {
    calls.push(req);
  },
};

const env = {
  CNI_COMMAND: "ADD",
  CNI_CONTAINERID: "c1",
  CNI_NETNS: "/run/netns/p",
  CNI_IFNAME: "eth0",
  CNI_PATH: "/a:/b",
};
const conf = (over: Record<string, unknown> = {}) =>
  JSON.stringify({ cniVersion: "1.1.0", name: "net", type: "fake", ...over });

async function invoke(e: Record<string, string>, stdin: string) {
  const logs: string[] = [];
  const r = await runPlugin(handlers, { env: e, stdin, log: (l) => logs.push(l) });
  return { ...r, json: r.stdout ? JSON.parse(r.stdout) : undefined, logs };
}

test("ADD prints the result in the requested version", async () => {
  const r = await invoke(env, conf({ cniVersion: "0.4.0" }));
  assert.equal(r.exitCode, 0);
  assert.deepEqual(r.json, {
    cniVersion: "0.4.0",
    interfaces: [{ name: "eth0", sandbox: "/run/netns/p" }],
    ips: [{ version: "4", address: "10.1.0.5/24", gateway: "10.1.0.1", interface: 0 }],
  });
  const req = calls.at(-1);
  assert.deepEqual(req?.path, ["/a", "/b"]);
  assert.equal(req?.containerId, "c1");
});

test("missing variables are error 4 naming each of them", async () => {
  const r = await invoke({ CNI_COMMAND: "ADD", CNI_IFNAME: "eth0" }, conf());
  assert.equal(r.exitCode, 1);
  assert.equal(r.json.code, 4);
  assert.match(r.json.msg, /^CNI_CONTAINERID, CNI_NETNS are not set/);
  const none = await invoke({}, conf());
  assert.equal(none.json.code, 4);
  assert.match(none.json.msg, /CNI_COMMAND is not set/);
  const bad = await invoke({ ...env, CNI_COMMAND: "ATTACH" }, conf());
  assert.match(bad.json.msg, /CNI_COMMAND "ATTACH" is unknown/);
});

test("DEL does not need CNI_NETNS; STATUS and GC need no attachment variables", async () => {
  const { CNI_NETNS: _n, ...noNetns } = env;
  assert.equal((await invoke({ ...noNetns, CNI_COMMAND: "DEL" }, conf())).exitCode, 0);
  assert.equal((await invoke({ CNI_COMMAND: "STATUS" }, conf())).exitCode, 0);
  assert.equal((await invoke({ CNI_COMMAND: "GC" }, conf())).stdout, "");
});

test("invalid container IDs and interface names are error 4", async () => {
  const id = await invoke({ ...env, CNI_CONTAINERID: "-bad" }, conf());
  assert.equal(id.json.code, 4);
  assert.match(id.json.msg, /CNI_CONTAINERID "-bad" is invalid/);
  const ifname = await invoke({ ...env, CNI_IFNAME: "this-name-is-too-long" }, conf());
  assert.equal(ifname.json.code, 4);
  assert.match(ifname.json.msg, /CNI_IFNAME .* at most 15/);
  // The error speaks the configuration's version, although the environment is checked before it.
  const missing = await invoke({ CNI_COMMAND: "ADD" }, conf({ cniVersion: "0.4.0" }));
  assert.equal(missing.json.code, 4);
  assert.equal(missing.json.cniVersion, "0.4.0");
  assert.equal((await invoke({ CNI_COMMAND: "ADD" }, "{not json")).json.code, 4, "the environment first");
});

test("bad JSON is error 6, a missing or bad field is 7, an unknown version is 1", async () => {
  const json = await invoke(env, "{not json");
  assert.equal(json.json.code, 6);
  assert.match(json.json.msg, /not valid JSON/);
  assert.equal((await invoke(env, "")).json.code, 6);
  assert.equal((await invoke(env, "[1]")).json.code, 6);
  const noVersion = await invoke(env, JSON.stringify({ name: "n", type: "t" }));
  assert.equal(noVersion.json.code, 7);
  assert.match(noVersion.json.msg, /cniVersion is required/);
  const noName = await invoke(env, JSON.stringify({ cniVersion: "1.0.0", type: "t" }));
  assert.equal(noName.json.code, 7);
  const badName = await invoke(env, conf({ name: "../etc" }));
  assert.equal(badName.json.code, 7);
  const old = await invoke(env, conf({ cniVersion: "0.2.0" }));
  assert.equal(old.json.code, 1);
  assert.match(
    old.json.msg,
    /"0\.2\.0" is not supported; use one of 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0, 1\.1\.0/,
  );
  assert.equal(old.json.cniVersion, "0.2.0");
});

test("CHECK needs 0.4.0, STATUS and GC need 1.1.0", async () => {
  assert.equal((await invoke({ ...env, CNI_COMMAND: "CHECK" }, conf({ cniVersion: "0.3.1" }))).json.code, 1);
  assert.equal((await invoke({ CNI_COMMAND: "STATUS" }, conf({ cniVersion: "1.0.0" }))).json.code, 1);
  assert.equal((await invoke({ CNI_COMMAND: "GC" }, conf({ cniVersion: "1.0.0" }))).json.code, 1);
});

test("VERSION answers with or without a configuration", async () => {
  const r = await invoke({ CNI_COMMAND: "VERSION" }, '{"cniVersion":"0.4.0"}');
  assert.deepEqual(r.json, {
    cniVersion: "0.4.0",
    supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
  });
  assert.equal((await invoke({ CNI_COMMAND: "VERSION" }, "")).json.cniVersion, "1.1.0");
});

test("handler errors keep their code; unexpected errors are 199 without a stack on stdout", async () => {
  const cni = await invoke(env, conf({ boom: "cni" }));
  assert.deepEqual(cni.json, { cniVersion: "1.1.0", code: 100, msg: "range exhausted: widen it" });
  const bug = await invoke(env, conf({ boom: "bug" }));
  assert.equal(bug.json.code, 199);
  assert.doesNotMatch(bug.stdout, /at .*\.js/);
  assert.ok(bug.logs.some((l) => l.includes("TypeError")));
});

test("CNI_ARGS and GC attachments are parsed", () => {
  assert.deepEqual(parseCniArgs("IP=10.1.0.9;K8S_POD_NAME=web;;X="), {
    IP: "10.1.0.9",
    K8S_POD_NAME: "web",
    X: "",
  });
  assert.throws(
    () => parseCniArgs("novalue"),
    (e: CniError) => e.code === 4,
  );
  const base = { cniVersion: "1.1.0", name: "n", type: "t" } as PluginConfig;
  const a = [{ containerID: "c1", ifname: "eth0" }];
  assert.deepEqual(validAttachments({ ...base, "cni.dev/valid-attachments": a }), a);
  assert.deepEqual(validAttachments({ ...base, "cni.dev/attachments": a }), a);
  assert.deepEqual(validAttachments(base), []);
  assert.throws(
    () => validAttachments({ ...base, "cni.dev/valid-attachments": [{ id: 1 }] } as never),
    (e: CniError) => e.code === 7,
  );
});
