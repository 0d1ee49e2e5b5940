import assert from "node:assert/strict";
import { test } from "node:test";
import { CniError, ErrorCode, type NetworkConfigList } from "../spec.js";
import { buildPluginConfig, formatCniArgs, inNetns } from "./invoke.js";
import { atLeast, selectVersion } from "./negotiate.js";
import { convertResult } from "./result.js";

test("the highest of cniVersions the runtime supports wins", () => {
  assert.equal(
    selectVersion({ name: "n", cniVersion: "0.4.0", cniVersions: ["0.4.0", "1.0.0", "1.1.0"] }),
    "1.1.0",
  );
  assert.equal(selectVersion({ name: "n", cniVersion: "0.4.0", cniVersions: ["1.0.0", "9.0.0"] }), "1.0.0");
  assert.equal(
    selectVersion({ name: "n", cniVersion: "1.0.0", cniVersions: ["1.0.0", "1.1.0"] }, ["1.0.0"]),
    "1.0.0",
  );
});

test("cniVersion alone is the version; cniVersion counts when cniVersions has nothing usable", () => {
  assert.equal(selectVersion({ name: "n", cniVersion: "0.3.1" }), "0.3.1");
  assert.equal(selectVersion({ name: "n", cniVersion: "1.0.0", cniVersions: ["2.0.0"] }), "1.0.0");
});

test("no supported version is code 1 with the offer and a fix", () => {
  assert.throws(
    () => selectVersion({ name: "n", cniVersion: "0.2.0", cniVersions: ["2.0.0"] }),
    (e: unknown) =>
      e instanceof CniError &&
      e.code === ErrorCode.IncompatibleVersion &&
      /cniVersions 2\.0\.0 and cniVersion 0\.2\.0/.test(e.msg) &&
      /fix:/.test(e.details ?? ""),
  );
});

test("atLeast compares numerically", () => {
  assert.ok(atLeast("1.1.0", "0.4.0"));
  assert.ok(atLeast("0.10.0", "0.4.0"));
  assert.ok(!atLeast("0.3.1", "0.4.0"));
});

test("results convert between 0.x (ips[].version) and 1.x", () => {
  const v1 = {
    cniVersion: "1.0.0",
    ips: [{ address: "10.0.0.2/24" }, { address: "fd00::2/64", interface: 0 }],
  };
  const old = convertResult(v1, "0.4.0");
  assert.equal(old.cniVersion, "0.4.0");
  assert.deepEqual(
    old.ips?.map((i) => i.version),
    ["4", "6"],
  );
  const back = convertResult(old, "1.1.0");
  assert.deepEqual(back.ips, v1.ips);
  assert.equal(v1.cniVersion, "1.0.0", "the input is not changed");
});

const list: NetworkConfigList = {
  cniVersion: "1.0.0",
  name: "net",
  plugins: [
    { type: "bridge", name: "ignored", cniVersion: "0.1.0" },
    { type: "portmap", capabilities: { portMappings: true, bandwidth: false }, runtimeConfig: { stale: 1 } },
  ],
};

test("the plugin configuration gets the list's name and version, prevResult and enabled capabilities only", () => {
  const first = buildPluginConfig(list, 0, "1.1.0", { capabilityArgs: { portMappings: [] } });
  assert.equal(first.name, "net");
  assert.equal(first.cniVersion, "1.1.0");
  assert.equal(first.runtimeConfig, undefined, "bridge enables no capability");
  const prev = { cniVersion: "1.0.0", ips: [{ address: "10.0.0.2/24" }] };
  const second = buildPluginConfig(list, 1, "0.4.0", {
    prevResult: prev,
    capabilityArgs: { portMappings: [{ hostPort: 80, containerPort: 8080 }], bandwidth: { ingressRate: 1 } },
  });
  assert.deepEqual(second.runtimeConfig, { portMappings: [{ hostPort: 80, containerPort: 8080 }] });
  assert.equal(second.prevResult?.cniVersion, "0.4.0", "prevResult in the configuration's version");
  assert.equal(second.prevResult?.ips?.[0]?.version, "4");
  const gc = buildPluginConfig(list, 0, "1.1.0", {
    validAttachments: [{ containerID: "c", ifname: "eth0" }],
  });
  assert.deepEqual(gc["cni.dev/valid-attachments"], [{ containerID: "c", ifname: "eth0" }]);
});

test("CNI_ARGS and namespace wrappers", () => {
  assert.equal(formatCniArgs({ A: "1", B: "x=y" }), "A=1;B=x=y");
  assert.equal(formatCniArgs({}), undefined);
  assert.deepEqual(inNetns("/run/netns/node-1", ["/bin/p"]), ["ip", "netns", "exec", "node-1", "/bin/p"]);
  assert.deepEqual(inNetns("/proc/42/ns/net", ["/bin/p"]), [
    "nsenter",
    "--net=/proc/42/ns/net",
    "--",
    "/bin/p",
  ]);
});
