import assert from "node:assert/strict";
import { test } from "node:test";
import { formatIp } from "../../ipam/cidr.js";
import type { CniError } from "../spec.js";
import { DEFAULT_DATA_DIR, parseIpamConfig, rangeSetCapacity } from "./config.js";

function rejects(ipam: unknown, pattern: RegExp) {
  assert.throws(
    () => parseIpamConfig(ipam),
    (e: CniError) => {
      assert.equal(e.code, 7);
      assert.match(e.msg, pattern);
      return true;
    },
  );
}

test("host-local's ranges shape with defaults", () => {
  const c = parseIpamConfig({
    type: "podnet-ipam",
    ranges: [[{ subnet: "10.1.0.0/24" }], [{ subnet: "fd00::/120", gateway: "fd00::fe" }]],
    routes: [{ dst: "0.0.0.0/0" }],
  });
  assert.equal(c.dataDir, DEFAULT_DATA_DIR);
  assert.equal(c.rangeSets.length, 2);
  const v4 = c.rangeSets[0]?.ranges[0];
  assert.equal(formatIp({ family: 4, value: v4?.start ?? 0n }), "10.1.0.1");
  assert.equal(formatIp({ family: 4, value: v4?.end ?? 0n }), "10.1.0.254");
  assert.equal(formatIp(v4?.gateway ?? { family: 4, value: 0n }), "10.1.0.1");
  assert.equal(rangeSetCapacity(c.rangeSets[0] as never), 253n);
  const v6 = c.rangeSets[1]?.ranges[0];
  assert.equal(formatIp({ family: 6, value: v6?.end ?? 0n }), "fd00::ff");
  assert.equal(rangeSetCapacity(c.rangeSets[1] as never), 254n);
  assert.deepEqual(c.routes, [{ dst: "0.0.0.0/0" }]);
});

test("the subnet shorthand with rangeStart, rangeEnd and gateway", () => {
  const c = parseIpamConfig({
    type: "host-local",
    subnet: "10.2.0.0/16",
    rangeStart: "10.2.1.10",
    rangeEnd: "10.2.1.20",
    gateway: "10.2.0.1",
    dataDir: "/tmp/x",
    gcGraceSeconds: 5,
  });
  assert.equal(c.rangeSets.length, 1);
  assert.equal(rangeSetCapacity(c.rangeSets[0] as never), 11n);
  assert.equal(c.dataDir, "/tmp/x");
  assert.equal(c.gcGraceSeconds, 5);
});

test("errors name the field and the fix", () => {
  rejects(
    { type: "podnet-ipam", ranges: [[{ subnet: "10.0.0.0/33" }]] },
    /^ipam\.ranges\[0\]\[0\]\.subnet: "10\.0\.0\.0\/33" is not a valid CIDR: prefix length 33 is out of range/,
  );
  rejects(
    { type: "podnet-ipam", ranges: [[{ subnet: "10.0.0.5/24" }]] },
    /ipam\.ranges\[0\]\[0\]\.subnet: "10\.0\.0\.5\/24" has host bits set; did you mean 10\.0\.0\.0\/24\?/,
  );
  rejects({ type: "podnet-ipam" }, /ipam\.ranges is required/);
  rejects(undefined, /ipam is required/);
  rejects({ ranges: [[{ subnet: "10.0.0.0/24" }]] }, /ipam\.type is required/);
  rejects(
    { type: "t", ranges: [{ subnet: "10.0.0.0/24" }] },
    /ipam\.ranges\[0\] must be a list of ranges \(wrap it in a list/,
  );
  rejects(
    { type: "t", ranges: [[{ subnet: "10.0.0.0/31" }]] },
    /too small to allocate from.*use a \/30 or larger/,
  );
  rejects(
    { type: "t", ranges: [[{ subnet: "10.0.0.0/24", rangeStart: "10.0.1.5" }]] },
    /rangeStart: 10\.0\.1\.5 is not inside subnet 10\.0\.0\.0\/24/,
  );
  rejects(
    { type: "t", ranges: [[{ subnet: "10.0.0.0/24", rangeStart: "10.0.0.50", rangeEnd: "10.0.0.10" }]] },
    /rangeStart 10\.0\.0\.50 is after rangeEnd 10\.0\.0\.10; swap them/,
  );
  rejects({ type: "t", ranges: [[{ subnet: "10.0.0.0/24", rangeEnd: "10.0.0.255" }]] }, /broadcast address/);
  rejects(
    { type: "t", ranges: [[{ subnet: "10.0.0.0/24", gateway: "fd00::1" }]] },
    /gateway: fd00::1 is IPv6 but subnet 10\.0\.0\.0\/24 is IPv4/,
  );
  rejects(
    { type: "t", ranges: [[{ subnet: "10.0.0.0/24" }, { subnet: "fd00::/64" }]] },
    /ipam\.ranges\[0\]\[1\]: IPv6 subnet fd00::\/64 is in a set of IPv4 ranges; .* put it in its own set/,
  );
  rejects(
    { type: "t", ranges: [[{ subnet: "10.0.0.0/24" }], [{ subnet: "10.0.0.0/25" }]] },
    /ipam\.ranges\[1\]\[0\]: range .* overlaps ipam\.ranges\[0\]\[0\]/,
  );
  rejects({ type: "t", ranges: [[{ subnet: 10 }]] }, /expected a CIDR string/);
  rejects(
    { type: "t", ranges: [[{ subnet: "10.0.0.0/24" }]], routes: [{ dst: "10.9.0.0/33" }] },
    /ipam\.routes\[0\]\.dst: "10\.9\.0\.0\/33"/,
  );
  rejects(
    { type: "t", ranges: [[{ subnet: "10.0.0.0/24" }]], routes: [{ gw: "10.0.0.1" }] },
    /ipam\.routes\[0\]\.dst: is required/,
  );
  rejects(
    { type: "t", ranges: [[{ subnet: "10.0.0.0/24" }]], dataDir: "relative" },
    /ipam\.dataDir must be an absolute path/,
  );
  rejects(
    { type: "t", subnet: "10.0.0.0/24", gateway: "10.0.1.1" },
    /^ipam\.gateway: 10\.0\.1\.1 is not inside subnet/,
  );
});
