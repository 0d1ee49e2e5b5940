// podnet-ipam over a temporary data directory (no root needed).
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { formatIp, parseIp } from "../../ipam/cidr.js";
import type { CniError } from "../spec.js";
import { parseIpamConfig } from "./config.js";
import {
  candidates,
  ipamAdd,
  ipamCheck,
  ipamDel,
  ipamGc,
  ipamLookup,
  ipamStatus,
  requestedIps,
} from "./plugin.js";
import { parseOwner } from "./store.js";

const root = mkdtempSync(join(tmpdir(), "pnt-ipam-unit-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

function setup(ranges: unknown, extra: Record<string, unknown> = {}) {
  const dataDir = join(root, String(n++));
  const config = parseIpamConfig({ type: "podnet-ipam", ranges, dataDir, ...extra });
  const req = (containerId: string, ifname = "eth0") => ({ network: "net", containerId, ifname });
  return { config, req, dir: join(dataDir, "net") };
}

const addrs = (r: { ips?: { address: string }[] }) => (r.ips ?? []).map((i) => i.address);

test("ADD hands out one address per range set, skipping the gateway, and writes the owner", () => {
  const { config, req, dir } = setup([[{ subnet: "10.1.0.0/24" }], [{ subnet: "fd00::/64" }]], {
    routes: [{ dst: "0.0.0.0/0" }],
  });
  const r = ipamAdd(config, req("c1"));
  assert.deepEqual(r.ips, [
    { address: "10.1.0.2/24", gateway: "10.1.0.1" },
    { address: "fd00::2/64", gateway: "fd00::1" },
  ]);
  assert.deepEqual(r.routes, [{ dst: "0.0.0.0/0" }]);
  assert.equal(readFileSync(join(dir, "10.1.0.2"), "utf8"), "c1\neth0");
  assert.equal(readFileSync(join(dir, "last_reserved_ip.0"), "utf8"), "10.1.0.2");
  // Idempotent: the same attachment gets the same addresses.
  assert.deepEqual(addrs(ipamAdd(config, req("c1"))), ["10.1.0.2/24", "fd00::2/64"]);
  // Another interface of the same container is another attachment.
  assert.deepEqual(addrs(ipamAdd(config, req("c1", "net1"))), ["10.1.0.3/24", "fd00::3/64"]);
});

test("allocation continues round-robin after the last reserved address, then wraps", () => {
  const { config, req } = setup([[{ subnet: "10.1.0.0/29" }]]); // .2 .. .6
  const got = ["a", "b", "c"].map((id) => addrs(ipamAdd(config, req(id)))[0]);
  assert.deepEqual(got, ["10.1.0.2/29", "10.1.0.3/29", "10.1.0.4/29"]);
  ipamDel(config, req("a"));
  // .2 is free again, but round-robin goes on: .5, .6, then wraps to .2.
  assert.deepEqual(addrs(ipamAdd(config, req("d"))), ["10.1.0.5/29"]);
  assert.deepEqual(addrs(ipamAdd(config, req("e"))), ["10.1.0.6/29"]);
  assert.deepEqual(addrs(ipamAdd(config, req("f"))), ["10.1.0.2/29"]);
  assert.throws(
    () => ipamAdd(config, req("g")),
    (e: CniError) =>
      e.code === 100 &&
      /no free IPv4 address in network "net": all 5 addresses of 10\.1\.0\.0\/29 \(10\.1\.0\.1-10\.1\.0\.6\) are allocated/.test(
        e.msg,
      ),
  );
  assert.throws(
    () => ipamStatus(config, "net"),
    (e: CniError) => e.code === 50 && /no free IPv4 address/.test(e.msg),
  );
  ipamDel(config, req("b"));
  ipamStatus(config, "net");
});

test("an exhausted second range set releases what the first set got", () => {
  const { config, req, dir } = setup([[{ subnet: "10.1.0.0/24" }], [{ subnet: "10.2.0.0/30" }]]);
  ipamAdd(config, req("a"));
  assert.throws(
    () => ipamAdd(config, req("b")),
    (e: CniError) => e.code === 100,
  );
  assert.deepEqual(
    readdirSync(dir)
      .filter((f) => !f.startsWith("last"))
      .sort(),
    ["10.1.0.2", "10.2.0.2"],
  );
});

test("multiple ranges in one set are used in order", () => {
  const { config, req } = setup([
    [
      { subnet: "10.1.0.0/24", rangeStart: "10.1.0.10", rangeEnd: "10.1.0.11" },
      { subnet: "10.3.0.0/24", rangeStart: "10.3.0.100", rangeEnd: "10.3.0.100" },
    ],
  ]);
  const got = ["a", "b", "c"].map((id) => addrs(ipamAdd(config, req(id)))[0]);
  assert.deepEqual(got, ["10.1.0.10/24", "10.1.0.11/24", "10.3.0.100/24"]);
  assert.deepEqual(
    [...candidates(config.rangeSets[0] as never, parseIp("10.1.0.11"), new Set())].map(formatIp),
    ["10.3.0.100", "10.1.0.10", "10.1.0.11"],
  );
});

test("DEL releases by container ID and interface, and succeeds when nothing is allocated", () => {
  const { config, req, dir } = setup([[{ subnet: "10.1.0.0/24" }]]);
  ipamAdd(config, req("a", "eth0"));
  ipamAdd(config, req("a", "eth1"));
  assert.deepEqual(ipamDel(config, req("a", "eth1")).map(formatIp), ["10.1.0.3"]);
  assert.deepEqual(ipamDel(config, req("a", "eth1")), []);
  assert.deepEqual(ipamLookup(config, req("a", "eth0")).map(formatIp), ["10.1.0.2"]);
  assert.deepEqual(ipamDel(config, req("nobody")), []);
  // Files of old host-local versions hold only the container ID.
  writeFileSync(join(dir, "10.1.0.9"), "old");
  assert.deepEqual(ipamDel(config, req("old", "eth0")).map(formatIp), ["10.1.0.9"]);
});

test("CHECK finds a lost allocation and a prevResult address that is not held", () => {
  const { config, req, dir } = setup([[{ subnet: "10.1.0.0/24" }]]);
  const r = ipamAdd(config, req("a"));
  ipamCheck(config, req("a"), r);
  assert.throws(
    () => ipamCheck(config, req("a"), { cniVersion: "1.1.0", ips: [{ address: "10.1.0.7/24" }] }),
    (e: CniError) => e.code === 102 && /10\.1\.0\.7 \(from prevResult\) is no longer allocated/.test(e.msg),
  );
  rmSync(join(dir, "10.1.0.2"));
  assert.throws(
    () => ipamCheck(config, req("a")),
    (e: CniError) =>
      e.code === 102 &&
      /no IPv4 address of network "net" is allocated to container a interface eth0/.test(e.msg),
  );
});

test("GC releases what is not in the valid attachments, and leftovers of killed processes", () => {
  const { config, req, dir } = setup([[{ subnet: "10.1.0.0/24" }]]);
  for (const id of ["a", "b", "c"]) ipamAdd(config, req(id));
  writeFileSync(join(dir, "10.1.0.50"), ""); // a file without an owner
  writeFileSync(join(dir, ".tmp-999999999-1-x"), "x\ny"); // a killed writer's temporary file
  const released = ipamGc(config, "net", [{ containerID: "b", ifname: "eth0" }])
    .map(formatIp)
    .sort();
  assert.deepEqual(released, ["10.1.0.2", "10.1.0.4", "10.1.0.50"]);
  assert.deepEqual(readdirSync(dir).sort(), ["10.1.0.3", "last_reserved_ip.0"]);
});

test("GC keeps young allocations when gcGraceSeconds is set", () => {
  const { config, req } = setup([[{ subnet: "10.1.0.0/24" }]], { gcGraceSeconds: 60 });
  ipamAdd(config, req("a"));
  assert.deepEqual(ipamGc(config, "net", []), []);
});

test("requested addresses come from CNI_ARGS, runtimeConfig and args", () => {
  const { config, req } = setup([[{ subnet: "10.1.0.0/24" }], [{ subnet: "fd00::/64" }]]);
  const cfg = { cniVersion: "1.1.0", name: "net", type: "t", runtimeConfig: { ips: ["fd00::99/64"] } };
  const want = requestedIps(cfg, { IP: "10.1.0.77" });
  assert.deepEqual(want.map(formatIp), ["10.1.0.77", "fd00::99"]);
  assert.deepEqual(addrs(ipamAdd(config, { ...req("a"), requestedIps: want })), [
    "10.1.0.77/24",
    "fd00::99/64",
  ]);
  assert.throws(
    () => ipamAdd(config, { ...req("b"), requestedIps: [parseIp("10.1.0.77")] }),
    (e: CniError) =>
      e.code === 103 && /10\.1\.0\.77 is already allocated by container a interface eth0/.test(e.msg),
  );
  assert.throws(
    () => ipamAdd(config, { ...req("b"), requestedIps: [parseIp("10.9.0.1")] }),
    (e: CniError) => e.code === 103,
  );
  assert.throws(
    () => requestedIps(cfg, { IP: "nope" }),
    (e: CniError) => e.code === 7,
  );
});

test("STATUS reports a data directory that cannot be written", () => {
  const { config } = setup([[{ subnet: "10.1.0.0/24" }]]);
  ipamStatus(config, "net");
  const file = join(root, "a-file");
  writeFileSync(file, "");
  const broken = { ...config, dataDir: join(file, "sub") };
  assert.throws(
    () => ipamStatus(broken, "net"),
    (e: CniError) => e.code === 50 && /cannot store allocations/.test(e.msg),
  );
});

test("owner files are parsed in podnet's and host-local's formats", () => {
  assert.deepEqual(parseOwner("c1\neth0"), { containerID: "c1", ifname: "eth0" });
  assert.deepEqual(parseOwner("c1\r\neth0"), { containerID: "c1", ifname: "eth0" });
  assert.deepEqual(parseOwner("c1"), { containerID: "c1", ifname: "" });
  assert.equal(parseOwner(""), undefined);
});
