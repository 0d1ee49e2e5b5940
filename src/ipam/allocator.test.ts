import assert from "node:assert/strict";
import { test } from "node:test";
import { AddressAllocator, BlockAllocator } from "./allocator.js";
import { type Cidr, formatCidr, formatIp, type IpAddress, nthAddress, parseCidr, parseIp } from "./cidr.js";

const ip = parseIp;
const cidr = (text: string): Cidr => parseCidr(text);
const text = (a: IpAddress | undefined): string | undefined => (a === undefined ? undefined : formatIp(a));
const blockText = (b: Cidr | undefined): string | undefined => (b === undefined ? undefined : formatCidr(b));

/** Allocates until exhausted (with a safety limit) and returns the addresses as text. */
function drain(a: AddressAllocator, limit = 10_000): string[] {
  const out: string[] = [];
  for (let i = 0; i < limit; i++) {
    const next = a.allocate();
    if (next === undefined) return out;
    out.push(formatIp(next));
  }
  throw new Error(`allocator not exhausted after ${limit} allocations`);
}

test("AddressAllocator: /29 hands out .1-.6 lowest first, then is exhausted", () => {
  const a = new AddressAllocator(cidr("10.0.0.0/29"));
  assert.equal(a.capacity(), 6n);
  assert.deepEqual(drain(a), ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]);
  assert.equal(a.allocate(), undefined);
  assert.equal(a.allocate(), undefined, "stays exhausted");
  assert.equal(a.usedCount(), 6);
});

test("AddressAllocator: default reserve rules by family and prefix", () => {
  const cases: [string, bigint, string[]][] = [
    ["10.0.0.0/30", 2n, ["10.0.0.1", "10.0.0.2"]],
    ["10.0.0.0/31", 2n, ["10.0.0.0", "10.0.0.1"]],
    ["10.0.0.9/32", 1n, ["10.0.0.9"]],
    ["2001:db8::/126", 3n, ["2001:db8::1", "2001:db8::2", "2001:db8::3"]],
    ["2001:db8::/127", 2n, ["2001:db8::", "2001:db8::1"]],
    ["2001:db8::5/128", 1n, ["2001:db8::5"]],
  ];
  for (const [c, capacity, all] of cases) {
    const a = new AddressAllocator(cidr(c));
    assert.equal(a.capacity(), capacity, c);
    assert.deepEqual(drain(a), all, c);
  }
});

test("AddressAllocator: reserve options can be overridden", () => {
  const none = new AddressAllocator(cidr("10.0.0.0/30"), { reserveNetwork: false, reserveBroadcast: false });
  assert.equal(none.capacity(), 4n);
  assert.deepEqual(drain(none), ["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3"]);
  const v6 = new AddressAllocator(cidr("2001:db8::/126"), { reserveNetwork: false });
  assert.deepEqual(drain(v6), ["2001:db8::", "2001:db8::1", "2001:db8::2", "2001:db8::3"]);
  const p2p = new AddressAllocator(cidr("10.0.0.0/31"), { reserveNetwork: true });
  assert.deepEqual(drain(p2p), ["10.0.0.1"]);
});

test("AddressAllocator: reserved offsets (gateway, DNS, negative from the end) are skipped", () => {
  const a = new AddressAllocator(cidr("10.96.0.0/28"), { reserved: [1, 10n, -2] });
  // 16 addresses - network - broadcast - .1 - .10 - .14
  assert.equal(a.capacity(), 11n);
  const all = drain(a);
  assert.equal(all.length, 11);
  assert.equal(all[0], "10.96.0.2");
  for (const skipped of ["10.96.0.0", "10.96.0.1", "10.96.0.10", "10.96.0.14", "10.96.0.15"]) {
    assert.ok(!all.includes(skipped), skipped);
  }
  assert.ok(a.isReserved(ip("10.96.0.10")));
  assert.ok(!a.isUsed(ip("10.96.0.10")), "reserved is not used");
  // Reserving the network or broadcast offset again does not count twice.
  assert.equal(new AddressAllocator(cidr("10.0.0.0/29"), { reserved: [0, 7, 1] }).capacity(), 5n);
});

test("AddressAllocator: bad reserved offsets and ranges throw RangeError naming the CIDR", () => {
  const c = cidr("10.0.0.0/24");
  assert.throws(() => new AddressAllocator(c, { reserved: [256] }), /256.*10\.0\.0\.0\/24/);
  assert.throws(() => new AddressAllocator(c, { reserved: [-257] }), RangeError);
  assert.throws(() => new AddressAllocator(c, { reserved: [1.5] }), RangeError);
  assert.throws(() => new AddressAllocator(c, { rangeStart: ip("10.0.1.0") }), /rangeStart.*10\.0\.1\.0/);
  assert.throws(() => new AddressAllocator(c, { rangeEnd: ip("::1") }), /rangeEnd/);
  assert.throws(
    () => new AddressAllocator(c, { rangeStart: ip("10.0.0.200"), rangeEnd: ip("10.0.0.100") }),
    /10\.0\.0\.200 is after rangeEnd 10\.0\.0\.100/,
  );
});

test("AddressAllocator: rangeStart/rangeEnd limit automatic allocation; claims may use the whole CIDR", () => {
  const a = new AddressAllocator(cidr("10.0.0.0/24"), {
    rangeStart: ip("10.0.0.100"),
    rangeEnd: ip("10.0.0.103"),
    reserved: [101],
  });
  assert.equal(a.capacity(), 3n);
  assert.equal(a.claim(ip("10.0.0.5")), undefined, "explicit address outside the dynamic range");
  assert.deepEqual(drain(a), ["10.0.0.100", "10.0.0.102", "10.0.0.103"]);
  assert.equal(a.usedCount(), 4);
  a.release(ip("10.0.0.5"));
  assert.equal(a.allocate(), undefined, "releasing outside the range does not feed allocation");
  a.release(ip("10.0.0.102"));
  assert.equal(text(a.allocate()), "10.0.0.102");
  // A range that ends at the broadcast address does not hand it out.
  const tail = new AddressAllocator(cidr("10.0.0.0/24"), { rangeStart: ip("10.0.0.253") });
  assert.deepEqual(drain(tail), ["10.0.0.253", "10.0.0.254"]);
});

test("AddressAllocator: claim conflicts return reasons naming the address", () => {
  const a = new AddressAllocator(cidr("10.96.0.0/24"), { reserved: [10] });
  assert.equal(a.claim(ip("10.96.0.1")), undefined);
  assert.ok(a.isUsed(ip("10.96.0.1")));
  const cases: [IpAddress, string[]][] = [
    [ip("10.96.0.1"), ["10.96.0.1", "already in use"]],
    [ip("10.96.1.1"), ["10.96.1.1", "outside 10.96.0.0/24"]],
    [ip("10.96.0.0"), ["10.96.0.0", "network address", "reserved"]],
    [ip("10.96.0.255"), ["10.96.0.255", "broadcast address", "reserved"]],
    [ip("10.96.0.10"), ["10.96.0.10", "reserved"]],
    [ip("::1"), ["IPv6 address ::1", "IPv4 range 10.96.0.0/24"]],
  ];
  for (const [addr, fragments] of cases) {
    const reason = a.claim(addr);
    assert.ok(reason !== undefined, formatIp(addr));
    for (const f of fragments) assert.ok(reason.includes(f), `${JSON.stringify(reason)} lacks ${f}`);
  }
  assert.equal(a.usedCount(), 1, "failed claims change nothing");
});

test("AddressAllocator: allocation skips claimed addresses and claims of allocated ones fail", () => {
  const a = new AddressAllocator(cidr("10.0.0.0/29"));
  assert.equal(a.claim(ip("10.0.0.2")), undefined);
  assert.equal(a.claim(ip("10.0.0.3")), undefined);
  assert.equal(text(a.allocate()), "10.0.0.1");
  assert.equal(text(a.allocate()), "10.0.0.4");
  assert.match(a.claim(ip("10.0.0.4")) ?? "", /already in use/);
  assert.equal(a.usedCount(), 4);
});

test("AddressAllocator: the cursor moves back on release so the lowest free address comes next", () => {
  const a = new AddressAllocator(cidr("10.0.0.0/24"));
  for (let i = 0; i < 10; i++) a.allocate(); // .1 .. .10
  a.release(ip("10.0.0.7"));
  a.release(ip("10.0.0.3"));
  assert.equal(a.isUsed(ip("10.0.0.3")), false);
  assert.equal(a.usedCount(), 8);
  assert.equal(text(a.allocate()), "10.0.0.3");
  assert.equal(text(a.allocate()), "10.0.0.7");
  assert.equal(text(a.allocate()), "10.0.0.11");
  // Releasing something never used, outside, or of the other family is a no-op.
  a.release(ip("10.0.0.200"));
  a.release(ip("10.0.1.1"));
  a.release(ip("::1"));
  assert.equal(a.usedCount(), 11);
  assert.equal(text(a.allocate()), "10.0.0.12");
});

test("AddressAllocator: release after exhaustion makes the address available again", () => {
  const a = new AddressAllocator(cidr("10.0.0.0/30"));
  drain(a);
  a.release(ip("10.0.0.2"));
  assert.equal(text(a.allocate()), "10.0.0.2");
  assert.equal(a.allocate(), undefined);
});

test("AddressAllocator: /0 capacities are bigints", () => {
  assert.equal(new AddressAllocator(cidr("0.0.0.0/0")).capacity(), (1n << 32n) - 2n);
  assert.equal(new AddressAllocator(cidr("::/0")).capacity(), (1n << 128n) - 1n);
  const a = new AddressAllocator(cidr("::/0"));
  assert.equal(text(a.allocate()), "::1");
  assert.equal(a.claim(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")), undefined, "no broadcast in IPv6");
});

test("AddressAllocator: an IPv6 /64 allocates without touching memory proportional to its size", () => {
  const a = new AddressAllocator(cidr("fd00:10:244:1::/64"));
  assert.equal(a.capacity(), (1n << 64n) - 1n);
  const before = process.memoryUsage().heapUsed;
  let last: IpAddress | undefined;
  for (let i = 0; i < 10_000; i++) last = a.allocate();
  assert.equal(text(last), "fd00:10:244:1::2710");
  assert.equal(a.claim(ip("fd00:10:244:1:ffff:ffff:ffff:ffff")), undefined);
  assert.equal(a.usedCount(), 10_001);
  const grown = process.memoryUsage().heapUsed - before;
  assert.ok(grown < 50 * 1024 * 1024, `heap grew by ${grown} bytes`);
});

test("AddressAllocator: 100,000 addresses from a /12 quickly", () => {
  const c = cidr("10.96.0.0/12");
  const a = new AddressAllocator(c, { reserved: [1, 10] });
  assert.equal(a.capacity(), (1n << 20n) - 4n);
  // A few explicit claims scattered in the way, as a planner would make for fixed ClusterIPs.
  for (const offset of [2, 3, 500, 65_536]) assert.equal(a.claim(nthAddress(c, offset)), undefined);
  let last: IpAddress | undefined;
  for (let i = 0; i < 100_000; i++) {
    last = a.allocate();
    assert.ok(last !== undefined);
  }
  // Offsets 0, 1, 10 reserved and 2, 3, 500 claimed below: the 100,000th allocation is offset 100,006.
  assert.equal(text(last), formatIp(nthAddress(c, 100_006)));
  assert.equal(a.usedCount(), 100_004);
});

test("AddressAllocator: exhausting a /16 then releasing and reallocating stays consistent", () => {
  const a = new AddressAllocator(cidr("172.16.0.0/16"));
  let n = 0;
  while (a.allocate() !== undefined) n++;
  assert.equal(BigInt(n), a.capacity());
  for (let i = 1000; i < 1010; i++) a.release(nthAddress(cidr("172.16.0.0/16"), i));
  const again: string[] = [];
  for (let x = a.allocate(); x !== undefined; x = a.allocate()) again.push(formatIp(x));
  assert.deepEqual(again, ["172.16.3.232", ...Array.from({ length: 9 }, (_, i) => `172.16.3.${233 + i}`)]);
});

test("BlockAllocator: node pod blocks lowest first, last block, exhaustion", () => {
  const b = new BlockAllocator(cidr("10.244.0.0/22"), 24);
  assert.equal(b.capacity(), 4n);
  assert.equal(b.blockPrefix, 24);
  const got = [b.allocate(), b.allocate(), b.allocate(), b.allocate()].map(blockText);
  assert.deepEqual(got, ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24"]);
  assert.equal(b.allocate(), undefined);
  assert.equal(b.usedCount(), 4);
});

test("BlockAllocator: claims, conflicts and reasons", () => {
  const b = new BlockAllocator(cidr("10.244.0.0/16"), 24);
  assert.equal(b.claim(cidr("10.244.0.0/24")), undefined);
  assert.equal(b.claim(cidr("10.244.2.0/24")), undefined);
  assert.ok(b.isUsed(cidr("10.244.2.0/24")));
  const cases: [Cidr, string[]][] = [
    [cidr("10.244.2.0/24"), ["10.244.2.0/24", "already in use"]],
    [cidr("10.245.0.0/24"), ["10.245.0.0/24", "not inside 10.244.0.0/16"]],
    [cidr("10.0.0.0/8"), ["10.0.0.0/8", "not inside"]],
    [cidr("10.244.4.0/23"), ["10.244.4.0/23", "/23", "/24"]],
    [cidr("10.244.4.0/25"), ["/25", "/24"]],
    [cidr("fd00::/64"), ["IPv6 block fd00::/64", "IPv4 range"]],
  ];
  for (const [block, fragments] of cases) {
    const reason = b.claim(block);
    assert.ok(reason !== undefined, formatCidr(block));
    for (const f of fragments) assert.ok(reason.includes(f), `${JSON.stringify(reason)} lacks ${f}`);
  }
  assert.equal(blockText(b.allocate()), "10.244.1.0/24");
  assert.equal(blockText(b.allocate()), "10.244.3.0/24");
  assert.equal(b.usedCount(), 4);
});

test("BlockAllocator: release moves the cursor back; no-ops for unknown blocks", () => {
  const b = new BlockAllocator(cidr("fd00:10:244::/56"), 64);
  assert.equal(b.capacity(), 256n);
  for (let i = 0; i < 5; i++) b.allocate();
  b.release(cidr("fd00:10:244:1::/64"));
  b.release(cidr("fd00:10:244:99::/64")); // never used
  b.release(cidr("10.0.0.0/24")); // other family
  b.release(cidr("fd00:10:244::/63")); // wrong size
  assert.equal(b.usedCount(), 4);
  assert.equal(blockText(b.allocate()), "fd00:10:244:1::/64");
  assert.equal(blockText(b.allocate()), "fd00:10:244:5::/64");
});

test("BlockAllocator: block size equal to the CIDR, /32 blocks, and invalid sizes", () => {
  const whole = new BlockAllocator(cidr("10.0.0.0/24"), 24);
  assert.equal(blockText(whole.allocate()), "10.0.0.0/24");
  assert.equal(whole.allocate(), undefined);
  const hosts = new BlockAllocator(cidr("10.0.0.0/30"), 32);
  assert.deepEqual(
    [hosts.allocate(), hosts.allocate(), hosts.allocate(), hosts.allocate(), hosts.allocate()].map(blockText),
    ["10.0.0.0/32", "10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32", undefined],
  );
  assert.throws(() => new BlockAllocator(cidr("10.244.0.0/16"), 15), /\/15/);
  assert.throws(() => new BlockAllocator(cidr("10.244.0.0/16"), 33), RangeError);
  assert.throws(() => new BlockAllocator(cidr("::/0"), 129), RangeError);
});

test("BlockAllocator: 1,000 node blocks from a /12 and 100,000 /64s from a /32", () => {
  const nodes = new BlockAllocator(cidr("10.0.0.0/12"), 24);
  for (let i = 0; i < 1000; i++) assert.ok(nodes.allocate());
  assert.equal(blockText(nodes.allocate()), "10.3.232.0/24");
  const v6 = new BlockAllocator(cidr("2001:db8::/32"), 64);
  assert.equal(v6.capacity(), 1n << 32n);
  let last: Cidr | undefined;
  for (let i = 0; i < 100_000; i++) last = v6.allocate();
  assert.equal(blockText(last), "2001:db8:1:869f::/64");
});
