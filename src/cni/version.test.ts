import assert from "node:assert/strict";
import { test } from "node:test";
import type { CniError, Result } from "./spec.js";
import { convertResult, parseResult } from "./version.js";

const full: Result = {
  cniVersion: "1.1.0",
  interfaces: [
    { name: "cbr0", mac: "02:00:00:00:00:01" },
    { name: "veth1234abcd", mac: "02:00:00:00:00:02", mtu: 1400 },
    { name: "eth0", mac: "02:00:00:00:00:03", mtu: 1400, sandbox: "/run/netns/p", pciID: "0000:00:01.0" },
  ],
  ips: [
    { address: "10.1.0.5/24", gateway: "10.1.0.1", interface: 2 },
    { address: "fd00::5/64", gateway: "fd00::1", interface: 2 },
  ],
  routes: [
    { dst: "0.0.0.0/0", gw: "10.1.0.1", mtu: 1400, priority: 5 },
    { dst: "::/0", gw: "fd00::1", table: 100, scope: 0 },
  ],
  dns: { nameservers: ["10.96.0.10"], search: ["svc.cluster.local"] },
};

test("1.1.0 keeps every field", () => {
  assert.deepEqual(convertResult(full, "1.1.0"), full);
});

test("1.0.0 drops the 1.1.0-only fields and has no ips version", () => {
  const r = convertResult(full, "1.0.0");
  assert.equal(r.cniVersion, "1.0.0");
  assert.deepEqual(r.interfaces?.[2], { name: "eth0", mac: "02:00:00:00:00:03", sandbox: "/run/netns/p" });
  assert.deepEqual(r.interfaces?.[1], { name: "veth1234abcd", mac: "02:00:00:00:00:02" });
  assert.deepEqual(r.routes, [
    { dst: "0.0.0.0/0", gw: "10.1.0.1" },
    { dst: "::/0", gw: "fd00::1" },
  ]);
  assert.deepEqual(r.ips?.[0], { address: "10.1.0.5/24", gateway: "10.1.0.1", interface: 2 });
  assert.deepEqual(r.dns, full.dns);
});

for (const v of ["0.3.0", "0.3.1", "0.4.0"]) {
  test(`${v} puts "version" on every ip`, () => {
    const r = convertResult(full, v);
    assert.equal(r.cniVersion, v);
    assert.deepEqual(r.ips, [
      { version: "4", address: "10.1.0.5/24", gateway: "10.1.0.1", interface: 2 },
      { version: "6", address: "fd00::5/64", gateway: "fd00::1", interface: 2 },
    ]);
    assert.equal(r.interfaces?.[1]?.mtu, undefined);
    assert.equal(r.routes?.[0]?.priority, undefined);
  });
}

test("convertResult refuses versions podnet does not speak", () => {
  assert.throws(
    () => convertResult(full, "0.2.0"),
    (e: CniError) => e.code === 1 && /0\.2\.0/.test(e.msg),
  );
});

test("parseResult reads any supported version back into the 1.1.0 shape", () => {
  for (const v of ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]) {
    const back = parseResult(JSON.parse(JSON.stringify(convertResult(full, v))));
    assert.equal(back.cniVersion, "1.1.0");
    assert.equal(back.ips?.[0]?.version, undefined);
    assert.equal(back.ips?.[1]?.address, "fd00::5/64");
    assert.equal(back.interfaces?.[2]?.sandbox, "/run/netns/p");
  }
});

test("parseResult names the field that is wrong", () => {
  assert.throws(
    () => parseResult({ cniVersion: "1.0.0", ips: [{ gateway: "10.0.0.1" }] }, "prevResult"),
    (e: CniError) => {
      return e.code === 6 && e.msg.startsWith("prevResult.ips[0].address");
    },
  );
  assert.throws(
    () => parseResult({ cniVersion: "0.2.0", ip4: { ip: "10.0.0.2/24" } }),
    (e: CniError) => e.code === 1,
  );
  assert.throws(
    () => parseResult("nope"),
    (e: CniError) => e.code === 6,
  );
  assert.throws(
    () => parseResult({ ips: [] }),
    (e: CniError) => e.code === 6 && /cniVersion/.test(e.msg),
  );
});
