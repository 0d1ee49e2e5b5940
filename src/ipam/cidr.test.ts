import assert from "node:assert/strict";
import { test } from "node:test";
import ipaddr from "ipaddr.js";
import {
  blockCount,
  type Cidr,
  CidrError,
  cidrEquals,
  cidrSize,
  cidrsOverlap,
  cidrToRange,
  containsCidr,
  containsIp,
  familyName,
  formatCidr,
  formatIp,
  hostBits,
  ipEquals,
  lastAddress,
  nthAddress,
  nthBlock,
  offsetOf,
  parseCidr,
  parseIp,
  rangesOverlap,
  tryParseCidr,
  tryParseIp,
} from "./cidr.js";

const ip = parseIp;
const cidr = (text: string): Cidr => parseCidr(text);

/** Asserts that fn throws a CidrError whose message contains every fragment. */
function throwsCidr(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CidrError, `expected CidrError, got ${String(e)}`);
    for (const f of fragments)
      assert.ok(e.message.includes(f), `message ${JSON.stringify(e.message)} lacks ${f}`);
    return true;
  });
}

test("parseIp and formatIp: IPv4 round trips and values", () => {
  const cases: [string, bigint][] = [
    ["0.0.0.0", 0n],
    ["10.0.0.1", 0x0a000001n],
    ["192.168.1.254", 0xc0a801fen],
    ["255.255.255.255", 0xffffffffn],
    ["127.0.0.1", 0x7f000001n],
  ];
  for (const [text, value] of cases) {
    const parsed = ip(text);
    assert.deepEqual(parsed, { family: 4, value }, text);
    assert.equal(formatIp(parsed), text);
  }
});

test("parseIp and formatIp: IPv6 notations normalise to RFC 5952", () => {
  const cases: [string, string, bigint][] = [
    ["::", "::", 0n],
    ["::1", "::1", 1n],
    ["0:0:0:0:0:0:0:0", "::", 0n],
    ["2001:db8::1", "2001:db8::1", 0x20010db8000000000000000000000001n],
    ["2001:DB8::1", "2001:db8::1", 0x20010db8000000000000000000000001n],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1", 0x20010db8000000000000000000000001n],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1", 0x20010db8000000000001000000000001n],
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3", 0x00010000000000020000000000000003n],
    ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0", 0x00010002000300040005000600070000n],
    ["::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8", 0x00000002000300040005000600070008n],
    ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", (1n << 128n) - 1n],
    ["fe80::", "fe80::", 0xfe80n << 112n],
    ["::ffff:10.0.0.1", "::ffff:10.0.0.1", 0xffff0a000001n],
    ["::FFFF:0A00:0001", "::ffff:10.0.0.1", 0xffff0a000001n],
    ["::10.0.0.1", "::a00:1", 0x0a000001n],
    ["64:ff9b::192.0.2.1", "64:ff9b::c000:201", 0x0064ff9b0000000000000000c0000201n],
  ];
  for (const [text, canonical, value] of cases) {
    const parsed = ip(text);
    assert.deepEqual(parsed, { family: 6, value }, text);
    assert.equal(formatIp(parsed), canonical, text);
    assert.deepEqual(ip(canonical), parsed, `${canonical} parses back`);
  }
});

test("formatIp on IPv6 agrees with ipaddr.js's RFC 5952 output and parses back", () => {
  // Deterministic PRNG; groups are zero half of the time so that runs of every length and position occur.
  let seed = 0x2545f491;
  const next = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  for (let n = 0; n < 5000; n++) {
    const parts: number[] = [];
    let value = 0n;
    for (let i = 0; i < 8; i++) {
      const r = next();
      const group = r % 2 === 0 ? 0 : (r >>> 8) & (r % 3 === 0 ? 0xf : 0xffff);
      parts.push(group);
      value = (value << 16n) | BigInt(group);
    }
    if (value >> 32n === 0xffffn) continue; // IPv4-mapped: we keep the dotted quad (RFC 5952 section 5)
    const text = formatIp({ family: 6, value });
    assert.equal(text, new ipaddr.IPv6(parts).toRFC5952String(), parts.join(","));
    assert.deepEqual(parseIp(text), { family: 6, value }, text);
  }
});

test("parseIp: IPv4-mapped IPv6 stays IPv6", () => {
  const mapped = ip("::ffff:10.0.0.1");
  assert.equal(mapped.family, 6);
  assert.notDeepEqual(mapped, ip("10.0.0.1"));
});

test("parseIp: rejects bad text with a message naming it", () => {
  const cases: [string, string[]][] = [
    ["", ["is not a valid IP address", "empty"]],
    ["10.0.0.300", ['"10.0.0.300" is not a valid IP address', "300"]],
    ["256.0.0.1", ['"256.0.0.1"', "256"]],
    ["010.0.0.1", ['"010.0.0.1"', "ambiguous", "10.0.0.1"]],
    ["10.0.0.01", ['"10.0.0.01"', "ambiguous"]],
    ["00.0.0.0", ['"00.0.0.0"', "ambiguous"]],
    ["fe80::1%eth0", ['"fe80::1%eth0"', "zone", "%eth0"]],
    ["10.0.0.1%1", ['"10.0.0.1%1"', "zone"]],
    ["10.0.0.0/8", ['"10.0.0.0/8"', "CIDR", "10.0.0.0"]],
    [" 10.0.0.1", ['" 10.0.0.1"', "whitespace"]],
    ["10.0.0.1\n", ["whitespace"]],
    ["10.0.0", ['"10.0.0"', "four octets"]],
    ["10.0.0.0.1", ['"10.0.0.0.1"', "four octets"]],
    ["10..0.1", ['"10..0.1"', "empty"]],
    ["10.0.0.", ['"10.0.0."']],
    ["1000.0.0.1", ['"1000.0.0.1"']],
    ["0x0a.0.0.1", ['"0x0a.0.0.1"']],
    ["4294967295", ['"4294967295"']],
    ["10.1", ['"10.1"']],
    ["-1.0.0.0", ['"-1.0.0.0"']],
    ["abc", ['"abc"', "expected"]],
    ["1::2::3", ['"1::2::3"', "only once"]],
    ["1:2:3:4:5:6:7:8:9", ['"1:2:3:4:5:6:7:8:9"']],
    ["::1:2:3:4:5:6:7:8", ['"::1:2:3:4:5:6:7:8"']],
    ["12345::1", ['"12345::1"', "four hex digits"]],
    ["00001::1", ['"00001::1"', "four hex digits"]],
    ["g::1", ['"g::1"']],
    [":1", ['":1"']],
    ["1:", ['"1:"']],
    [":::", ['":::"']],
    ["::ffff:010.0.0.1", ['"::ffff:010.0.0.1"', "ambiguous"]],
    ["::ffff:10.0.0.256", ['"::ffff:10.0.0.256"', "256"]],
    ["::ffff:10.0.0", ['"::ffff:10.0.0"']],
    ["1.2.3.4::", ['"1.2.3.4::"']],
  ];
  for (const [text, fragments] of cases) {
    throwsCidr(() => parseIp(text), ...fragments);
    assert.equal(tryParseIp(text), undefined, text);
  }
});

test("tryParseIp returns the address for good text", () => {
  assert.deepEqual(tryParseIp("10.0.0.1"), { family: 4, value: 0x0a000001n });
  assert.deepEqual(tryParseIp("::1"), { family: 6, value: 1n });
});

test("parseCidr: IPv4 and IPv6 networks, edge prefixes", () => {
  const cases: [string, Cidr, string][] = [
    ["0.0.0.0/0", { family: 4, network: 0n, prefix: 0 }, "0.0.0.0/0"],
    ["10.0.0.0/8", { family: 4, network: 0x0a000000n, prefix: 8 }, "10.0.0.0/8"],
    ["10.96.0.0/12", { family: 4, network: 0x0a600000n, prefix: 12 }, "10.96.0.0/12"],
    ["192.168.0.0/31", { family: 4, network: 0xc0a80000n, prefix: 31 }, "192.168.0.0/31"],
    ["255.255.255.255/32", { family: 4, network: 0xffffffffn, prefix: 32 }, "255.255.255.255/32"],
    ["::/0", { family: 6, network: 0n, prefix: 0 }, "::/0"],
    ["2001:db8::/32", { family: 6, network: 0x20010db8n << 96n, prefix: 32 }, "2001:db8::/32"],
    ["2001:DB8:0000::/48", { family: 6, network: 0x20010db8n << 96n, prefix: 48 }, "2001:db8::/48"],
    ["fd00::/127", { family: 6, network: 0xfd00n << 112n, prefix: 127 }, "fd00::/127"],
    ["::1/128", { family: 6, network: 1n, prefix: 128 }, "::1/128"],
    ["::ffff:10.0.0.0/104", { family: 6, network: 0xffff0a000000n, prefix: 104 }, "::ffff:10.0.0.0/104"],
  ];
  for (const [text, expected, canonical] of cases) {
    const parsed = parseCidr(text);
    assert.deepEqual(parsed, expected, text);
    assert.equal(formatCidr(parsed), canonical, text);
    assert.deepEqual(tryParseCidr(text), expected, text);
  }
});

test("parseCidr: strict rejects host bits and names the network; strict: false masks them", () => {
  throwsCidr(() => parseCidr("10.96.0.1/12"), '"10.96.0.1/12" has host bits set; did you mean 10.96.0.0/12?');
  throwsCidr(() => parseCidr("10.96.0.1/12", { strict: true }), "10.96.0.0/12");
  throwsCidr(() => parseCidr("2001:db8::1/64"), '"2001:db8::1/64"', "did you mean 2001:db8::/64?");
  throwsCidr(() => parseCidr("1.2.3.4/0"), "did you mean 0.0.0.0/0?");
  assert.equal(tryParseCidr("10.96.0.1/12"), undefined);
  assert.deepEqual(parseCidr("10.96.0.1/12", { strict: false }), cidr("10.96.0.0/12"));
  assert.deepEqual(parseCidr("2001:db8::ffff/64", { strict: false }), cidr("2001:db8::/64"));
  assert.deepEqual(parseCidr("255.255.255.255/0", { strict: false }), cidr("0.0.0.0/0"));
  assert.deepEqual(parseCidr("10.0.0.1/32", { strict: false }), cidr("10.0.0.1/32"));
});

test("parseCidr: rejects bad text with a message naming it and the fix", () => {
  const cases: [string, string[]][] = [
    ["", ["is not a valid CIDR", "empty"]],
    ["10.0.0.0", ['"10.0.0.0" is not a valid CIDR', "add /N", "10.0.0.0/24", "/32"]],
    ["2001:db8::", ['"2001:db8::"', "add /N", "/64", "/128"]],
    ["nonsense", ['"nonsense"', "add /N"]],
    ["10.0.0.0/33", ['"10.0.0.0/33"', "33", "0 to 32"]],
    ["::/129", ['"::/129"', "129", "0 to 128"]],
    ["10.0.0.0/-1", ['"10.0.0.0/-1"', '"-1"', "whole number"]],
    ["10.0.0.0/x", ['"10.0.0.0/x"', '"x"']],
    ["10.0.0.0/", ['"10.0.0.0/"', '""']],
    ["10.0.0.0/8.5", ['"10.0.0.0/8.5"']],
    ["10.0.0.0/ 8", ['"10.0.0.0/ 8"']],
    ["10.0.0.0/1000", ['"10.0.0.0/1000"']],
    ["10.0.0.0/08", ['"10.0.0.0/08"', "leading zero", "/8"]],
    ["10.0.0.0/8/8", ['"10.0.0.0/8/8"']],
    ["10.0.0.300/8", ['"10.0.0.300/8"', "300"]],
    ["010.0.0.0/8", ['"010.0.0.0/8"', "ambiguous"]],
    ["fe80::%eth0/64", ['"fe80::%eth0/64"', "zone"]],
    ["/8", ['"/8"', "empty"]],
  ];
  for (const [text, fragments] of cases) {
    throwsCidr(() => parseCidr(text), ...fragments);
    assert.equal(tryParseCidr(text), undefined, text);
  }
});

test("cidrSize and lastAddress", () => {
  const cases: [string, bigint, string][] = [
    ["0.0.0.0/0", 1n << 32n, "255.255.255.255"],
    ["10.96.0.0/12", 1n << 20n, "10.111.255.255"],
    ["10.0.0.0/24", 256n, "10.0.0.255"],
    ["10.0.0.0/31", 2n, "10.0.0.1"],
    ["10.0.0.7/32", 1n, "10.0.0.7"],
    ["255.255.255.255/32", 1n, "255.255.255.255"],
    ["::/0", 1n << 128n, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
    ["2001:db8::/64", 1n << 64n, "2001:db8::ffff:ffff:ffff:ffff"],
    ["2001:db8::/127", 2n, "2001:db8::1"],
    ["2001:db8::/128", 1n, "2001:db8::"],
  ];
  for (const [text, size, last] of cases) {
    const c = cidr(text);
    assert.equal(cidrSize(c), size, text);
    assert.equal(formatIp({ family: c.family, value: lastAddress(c) }), last, text);
    assert.deepEqual(cidrToRange(c), { family: c.family, start: c.network, end: lastAddress(c) });
  }
});

test("containsIp, including both ends and across families", () => {
  const cases: [string, string, boolean][] = [
    ["10.0.0.0/24", "10.0.0.0", true],
    ["10.0.0.0/24", "10.0.0.255", true],
    ["10.0.0.0/24", "10.0.1.0", false],
    ["10.0.0.0/24", "9.255.255.255", false],
    ["0.0.0.0/0", "255.255.255.255", true],
    ["0.0.0.0/0", "0.0.0.0", true],
    ["10.0.0.1/32", "10.0.0.1", true],
    ["10.0.0.1/32", "10.0.0.2", false],
    ["10.0.0.0/31", "10.0.0.1", true],
    ["::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true],
    ["2001:db8::/32", "2001:db8:ffff::1", true],
    ["2001:db8::/32", "2001:db9::", false],
    ["::1/128", "::1", true],
    ["::/127", "::1", true],
    ["::/127", "::2", false],
    ["0.0.0.0/0", "::", false],
    ["::/0", "0.0.0.0", false],
    ["::ffff:0.0.0.0/96", "10.0.0.1", false],
    ["::ffff:0.0.0.0/96", "::ffff:10.0.0.1", true],
  ];
  for (const [c, a, expected] of cases) assert.equal(containsIp(cidr(c), ip(a)), expected, `${c} ∋ ${a}`);
});

test("containsCidr and cidrsOverlap: nested, adjacent, identical, disjoint, cross-family", () => {
  const cases: [string, string, boolean, boolean][] = [
    // outer, inner, containsCidr(outer, inner), overlap
    ["10.0.0.0/8", "10.1.0.0/16", true, true],
    ["10.1.0.0/16", "10.0.0.0/8", false, true],
    ["10.0.0.0/24", "10.0.0.0/24", true, true],
    ["10.0.0.0/24", "10.0.1.0/24", false, false],
    ["10.0.0.0/25", "10.0.0.128/25", false, false],
    ["10.0.0.0/24", "10.0.0.255/32", true, true],
    ["10.0.0.0/24", "10.0.1.0/32", false, false],
    ["0.0.0.0/0", "255.255.255.255/32", true, true],
    ["0.0.0.0/0", "0.0.0.0/0", true, true],
    ["10.96.0.0/12", "10.112.0.0/12", false, false],
    ["10.96.0.0/12", "10.111.255.0/24", true, true],
    ["::/0", "2001:db8::/32", true, true],
    ["2001:db8::/32", "2001:db8:1::/48", true, true],
    ["2001:db8::/32", "2001:db9::/32", false, false],
    ["2001:db8::/127", "2001:db8::1/128", true, true],
    ["2001:db8::/128", "2001:db8::1/128", false, false],
    ["0.0.0.0/0", "::/0", false, false],
    ["::/0", "10.0.0.0/8", false, false],
  ];
  for (const [a, b, contains, overlap] of cases) {
    assert.equal(containsCidr(cidr(a), cidr(b)), contains, `${a} ⊇ ${b}`);
    assert.equal(cidrsOverlap(cidr(a), cidr(b)), overlap, `${a} overlaps ${b}`);
    assert.equal(cidrsOverlap(cidr(b), cidr(a)), overlap, `${b} overlaps ${a}`);
    assert.equal(rangesOverlap(cidrToRange(cidr(a)), cidrToRange(cidr(b))), overlap, `ranges ${a} ${b}`);
  }
});

test("rangesOverlap on arbitrary inclusive ranges", () => {
  const r = (start: bigint, end: bigint, family: 4 | 6 = 4) => ({ family, start, end });
  assert.equal(rangesOverlap(r(0n, 10n), r(10n, 20n)), true, "touching at one address");
  assert.equal(rangesOverlap(r(0n, 9n), r(10n, 20n)), false, "adjacent");
  assert.equal(rangesOverlap(r(5n, 5n), r(0n, 10n)), true, "nested");
  assert.equal(rangesOverlap(r(0n, 10n), r(0n, 10n)), true, "identical");
  assert.equal(rangesOverlap(r(0n, 10n), r(0n, 10n, 6)), false, "cross-family");
});

test("nthAddress at both ends, negative offsets, bigint and number", () => {
  const cases: [string, bigint | number, string][] = [
    ["10.0.0.0/24", 0, "10.0.0.0"],
    ["10.0.0.0/24", 1, "10.0.0.1"],
    ["10.0.0.0/24", 255, "10.0.0.255"],
    ["10.0.0.0/24", -1, "10.0.0.255"],
    ["10.0.0.0/24", -256, "10.0.0.0"],
    ["10.96.0.0/12", 10n, "10.96.0.10"],
    ["0.0.0.0/0", -1n, "255.255.255.255"],
    ["0.0.0.0/0", 0xffffffffn, "255.255.255.255"],
    ["10.0.0.0/31", 1, "10.0.0.1"],
    ["10.0.0.5/32", 0, "10.0.0.5"],
    ["10.0.0.5/32", -1, "10.0.0.5"],
    ["::/0", -1, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
    ["2001:db8::/64", 1n, "2001:db8::1"],
    ["2001:db8::/64", (1n << 64n) - 1n, "2001:db8::ffff:ffff:ffff:ffff"],
    ["2001:db8::/127", 1, "2001:db8::1"],
    ["2001:db8::/128", 0, "2001:db8::"],
  ];
  for (const [c, n, expected] of cases) {
    const parsed = cidr(c);
    const addr = nthAddress(parsed, n);
    assert.equal(formatIp(addr), expected, `${c}[${n}]`);
    const back = offsetOf(parsed, addr);
    const size = cidrSize(parsed);
    assert.equal(back, BigInt(n) < 0n ? size + BigInt(n) : BigInt(n), `offsetOf ${c} ${expected}`);
  }
});

test("nthAddress out of range throws RangeError naming the CIDR and the valid offsets", () => {
  const bad: [string, bigint | number][] = [
    ["10.0.0.0/24", 256],
    ["10.0.0.0/24", -257],
    ["10.0.0.5/32", 1],
    ["2001:db8::/128", -2],
    ["::/0", 1n << 128n],
  ];
  for (const [c, n] of bad) {
    assert.throws(
      () => nthAddress(cidr(c), n),
      (e: unknown) => e instanceof RangeError && e.message.includes(c) && e.message.includes(String(n)),
      `${c}[${n}]`,
    );
  }
  assert.throws(() => nthAddress(cidr("10.0.0.0/24"), 1.5), RangeError);
});

test("offsetOf rejects addresses outside the CIDR or of the other family", () => {
  assert.throws(
    () => offsetOf(cidr("10.0.0.0/24"), ip("10.0.1.0")),
    /10\.0\.1\.0 is not inside 10\.0\.0\.0\/24/,
  );
  assert.throws(() => offsetOf(cidr("10.0.0.0/24"), ip("::1")), RangeError);
  assert.equal(offsetOf(cidr("2001:db8::/64"), ip("2001:db8::ffff")), 0xffffn);
});

test("blockCount and nthBlock, including the last block and prefix-sized blocks", () => {
  const c = cidr("10.244.0.0/16");
  assert.equal(blockCount(c, 24), 256n);
  assert.equal(blockCount(c, 16), 1n);
  assert.equal(blockCount(c, 32), 65536n);
  assert.equal(formatCidr(nthBlock(c, 24, 0)), "10.244.0.0/24");
  assert.equal(formatCidr(nthBlock(c, 24, 1n)), "10.244.1.0/24");
  assert.equal(formatCidr(nthBlock(c, 24, 255)), "10.244.255.0/24");
  assert.equal(formatCidr(nthBlock(c, 24, -1)), "10.244.255.0/24");
  assert.equal(formatCidr(nthBlock(c, 16, 0)), "10.244.0.0/16");
  assert.equal(formatCidr(nthBlock(c, 32, 65535)), "10.244.255.255/32");
  assert.equal(blockCount(cidr("0.0.0.0/0"), 32), 1n << 32n);
  assert.equal(formatCidr(nthBlock(cidr("0.0.0.0/0"), 8, 255)), "255.0.0.0/8");
  const v6 = cidr("fd00:10:244::/56");
  assert.equal(blockCount(v6, 64), 256n);
  assert.equal(formatCidr(nthBlock(v6, 64, 255)), "fd00:10:244:ff::/64");
  assert.equal(blockCount(cidr("::/0"), 128), 1n << 128n);
  assert.equal(formatCidr(nthBlock(cidr("::/0"), 128, -1)), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
  for (let i = 0; i < 256; i += 17) {
    const block = nthBlock(c, 24, i);
    assert.ok(containsCidr(c, block));
    assert.equal(block.network & 0xffn, 0n, "aligned");
  }
});

test("blockCount and nthBlock reject bad block sizes and indexes", () => {
  const c = cidr("10.244.0.0/16");
  assert.throws(
    () => blockCount(c, 15),
    (e: unknown) => e instanceof RangeError && e.message.includes("/15"),
  );
  assert.throws(
    () => blockCount(c, 33),
    (e: unknown) => e instanceof RangeError && e.message.includes("/33"),
  );
  assert.throws(() => blockCount(cidr("::/0"), 129), RangeError);
  assert.throws(() => blockCount(c, 24.5), RangeError);
  assert.throws(
    () => nthBlock(c, 24, 256),
    (e: unknown) => e instanceof RangeError && e.message.includes("256"),
  );
  assert.throws(() => nthBlock(c, 24, -257), RangeError);
});

test("hostBits, familyName, ipEquals, cidrEquals", () => {
  assert.equal(hostBits(4), 32);
  assert.equal(hostBits(6), 128);
  assert.equal(familyName(4), "IPv4");
  assert.equal(familyName(6), "IPv6");
  assert.ok(ipEquals(ip("10.0.0.1"), ip("10.0.0.1")));
  assert.ok(!ipEquals(ip("0.0.0.1"), ip("::1")));
  assert.ok(cidrEquals(cidr("2001:db8::/32"), cidr("2001:DB8:0::/32")));
  assert.ok(!cidrEquals(cidr("10.0.0.0/8"), cidr("10.0.0.0/9")));
});

test("CidrError carries the rejected input", () => {
  try {
    parseCidr("10.0.0.0/99");
    assert.fail("expected an error");
  } catch (e) {
    assert.ok(e instanceof CidrError);
    assert.equal(e.input, "10.0.0.0/99");
    assert.equal(e.name, "CidrError");
  }
});

test("50,000 v4 and v6 addresses round-trip through text and stay inside their ranges", () => {
  const c = cidr("10.96.0.0/12");
  const v6 = cidr("fd00::/64");
  for (let i = 0; i < 50_000; i++) {
    const a = nthAddress(c, i);
    const b = nthAddress(v6, i);
    assert.ok(containsIp(c, a));
    assert.equal(parseIp(formatIp(a)).value, a.value);
    assert.equal(parseIp(formatIp(b)).value, b.value);
  }
});
