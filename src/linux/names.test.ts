import assert from "node:assert/strict";
import { test } from "node:test";
import { deterministicMac, hashedName, hostVethName, ifnameProblem, MAX_IFNAME_BYTES } from "./names.js";

test("hostVethName is veth + 8 hex digits, deterministic, at most 15 bytes", () => {
  const id = "3f6940ab5ab43bc522569d15b23f8c1bbde1d7678b080398506924fc01d72755";
  const a = hostVethName(id, "eth0");
  assert.match(a, /^veth[0-9a-f]{8}$/);
  assert.ok(Buffer.byteLength(a) <= MAX_IFNAME_BYTES);
  assert.equal(hostVethName(id, "eth0"), a);
  assert.notEqual(hostVethName(id, "eth1"), a);
  assert.notEqual(hostVethName(`${id}x`, "eth0"), a);
  // The separator makes ("ab", "c") and ("a", "bc") different.
  assert.notEqual(hostVethName("ab", "c"), hostVethName("a", "bc"));
});

test("hashedName fills the room left by the prefix and rejects prefixes that leave too little", () => {
  assert.equal(hashedName("pnt-", ["x"], 20).length, 15);
  assert.equal(hashedName("p", ["x"]).length, 9);
  assert.throws(() => hashedName("a-very-long-pfx", ["x"]), /leaves fewer than 4 bytes/);
});

test("deterministicMac is unicast, locally administered and stable", () => {
  const mac = deterministicMac("container", "c1", "eth0");
  assert.match(mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  const first = Number.parseInt(mac.slice(0, 2), 16);
  assert.equal(first & 1, 0, "unicast");
  assert.equal(first & 2, 2, "locally administered");
  assert.equal(deterministicMac("container", "c1", "eth0"), mac);
  assert.notEqual(deterministicMac("host", "c1", "eth0"), mac);
});

test("ifnameProblem follows the kernel's rules", () => {
  assert.equal(ifnameProblem("eth0"), undefined);
  assert.equal(ifnameProblem("a".repeat(15)), undefined);
  assert.match(ifnameProblem("a".repeat(16)) ?? "", /16 bytes long; Linux allows at most 15/);
  assert.match(ifnameProblem("") ?? "", /empty/);
  assert.match(ifnameProblem("..") ?? "", /reserved/);
  assert.match(ifnameProblem("eth/0") ?? "", /"\/", ":" or whitespace/);
  assert.match(ifnameProblem("eth 0") ?? "", /whitespace/);
  assert.match(ifnameProblem("eth:0") ?? "", /":"/);
  assert.match(ifnameProblem("é".repeat(8)) ?? "", /16 bytes/);
});
