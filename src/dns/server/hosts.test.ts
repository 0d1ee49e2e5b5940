import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { InvalidInputError } from "../../api/diagnostics.js";
import { parseDnsConfig } from "./config.js";
import { buildHostsZone, reverseName } from "./hosts.js";

test("reverse names for IPv4 and IPv6", () => {
  assert.equal(reverseName("10.1.2.3"), "3.2.1.10.in-addr.arpa");
  assert.equal(
    reverseName("fd00::1"),
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa",
  );
});

test("a hosts block answers A, AAAA, PTR; NODATA for other types and empty non-terminals; NXDOMAIN with SOA", () => {
  const dir = mkdtempSync(join(tmpdir(), "podnet-hosts-"));
  try {
    writeFileSync(join(dir, "extra.hosts"), "# more\n10.0.0.9 file.example.test alias.example.test\n");
    const text = `.:53 {\n  hosts ./extra.hosts example.test in-addr.arpa {\n    10.0.0.1 a.b.example.test\n    fd00::1 a.b.example.test\n    ttl 30\n  }\n}\n`;
    const { config, diagnostics } = parseDnsConfig(text, join(dir, "Corefile"));
    assert.deepEqual(diagnostics, []);
    const hosts = config.servers[0]?.hosts[0];
    assert.ok(hosts);
    const zone = buildHostsZone(hosts, join(dir, "Corefile"));
    assert.deepEqual(zone.lookup("a.b.example.test", "A")?.answers, [
      { name: "a.b.example.test", type: "A", ttl: 30, data: "10.0.0.1" },
    ]);
    assert.equal(zone.lookup("a.b.example.test", "AAAA")?.answers[0]?.data, "fd00::1");
    assert.equal(zone.lookup("a.b.example.test", "ANY")?.answers.length, 2);
    assert.equal(zone.lookup("alias.example.test", "A")?.answers[0]?.data, "10.0.0.9");
    assert.equal(zone.lookup("1.0.0.10.in-addr.arpa", "PTR")?.answers[0]?.data, "a.b.example.test");
    const nodata = zone.lookup("a.b.example.test", "MX");
    assert.equal(nodata?.rcode, "NOERROR");
    assert.equal(nodata?.answers.length, 0);
    assert.equal(nodata?.authority[0]?.type, "SOA");
    assert.equal(zone.lookup("b.example.test", "A")?.rcode, "NOERROR", "empty non-terminal");
    const nx = zone.lookup("nope.example.test", "A");
    assert.equal(nx?.rcode, "NXDOMAIN");
    assert.equal(nx?.authority[0]?.name, "example.test");
    assert.equal(zone.lookup("example.test", "SOA")?.answers[0]?.type, "SOA");
    assert.equal(zone.lookup("other.org", "A"), undefined, "outside its zones");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a bad hosts file is reported with its file and line", () => {
  const dir = mkdtempSync(join(tmpdir(), "podnet-hosts-"));
  try {
    writeFileSync(join(dir, "bad.hosts"), "10.0.0.1 ok.test\nnot-an-ip name.test\n");
    const { config } = parseDnsConfig(".:53 {\n  hosts ./bad.hosts\n}\n", join(dir, "Corefile"));
    const hosts = config.servers[0]?.hosts[0];
    assert.ok(hosts);
    assert.throws(
      () => buildHostsZone(hosts, join(dir, "Corefile")),
      (e: unknown) =>
        e instanceof InvalidInputError &&
        /bad\.hosts:2: error: "not-an-ip name.test" is not an ADDRESS NAME/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
