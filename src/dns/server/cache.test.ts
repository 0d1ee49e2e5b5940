import assert from "node:assert/strict";
import { test } from "node:test";
import dnsPacket from "dns-packet";
import { ResponseCache } from "./cache.js";
import type { CacheConfig } from "./config.js";
import { StaticZone } from "./hosts.js";
import { encodeResponse, parseQuery, type Query, RCODE, walkResponse } from "./wire.js";

const config = (successCap = 3, denialCap = 2): CacheConfig => ({
  success: { capacity: successCap, maxTtl: 60, minTtl: 1 },
  denial: { capacity: denialCap, maxTtl: 20, minTtl: 1 },
  line: 1,
});

const zone = new StaticZone(
  ["example.test"],
  [
    { name: "long.example.test", type: "A", ttl: 3600, data: "10.0.0.1" },
    { name: "short.example.test", type: "A", ttl: 10, data: "10.0.0.2" },
    ...Array.from({ length: 5 }, (_, i) => ({
      name: `n${i}.example.test`,
      type: "A" as const,
      ttl: 30,
      data: `10.0.1.${i}`,
    })),
  ],
  15,
);

/** The encoded answer of the static zone to `name`, as the server stores it. */
function answerFor(name: string, type = "A") {
  const buf = dnsPacket.encode({
    type: "query",
    id: 1,
    questions: [{ name, type: type as dnsPacket.RecordType }],
  });
  const p = parseQuery(buf);
  assert.equal(p.kind, "query");
  const query = p as Query;
  const result = zone.lookup(name, type);
  assert.ok(result);
  const response = encodeResponse(buf, query, {
    rcode: RCODE[result.rcode],
    authoritative: true,
    answers: result.answers,
    authority: result.authority,
    additionals: result.additionals,
  });
  const layout = walkResponse(response);
  assert.ok(layout);
  return { key: query.key, response, layout };
}

function ttlsOf(buf: Buffer): number[] {
  const d = dnsPacket.decode(buf);
  return [...(d.answers ?? []), ...(d.authorities ?? [])].map((r) => (r as { ttl: number }).ttl);
}

test("success entries: TTL capped by the cache, counted down with age, expired after it", () => {
  const cache = new ResponseCache(config());
  const long = answerFor("long.example.test");
  const entry = cache.put(long.key, long.response, long.layout, 1_000_000);
  assert.equal(entry?.kind, "success");
  assert.deepEqual(ttlsOf(cache.render(entry, 1_000_000)), [60], "3600 capped to the success maximum 60");
  const later = cache.get(long.key, 1_025_500);
  assert.ok(later);
  assert.deepEqual(ttlsOf(cache.render(later, 1_025_500)), [35]);
  assert.equal(cache.get(long.key, 1_060_000), undefined, "gone at its expiry");
  assert.equal(cache.size("success"), 0);

  const short = answerFor("short.example.test");
  cache.put(short.key, short.response, short.layout, 0);
  assert.ok(cache.get(short.key, 9_999));
  assert.equal(cache.get(short.key, 10_000), undefined, "the record's own TTL (10 s) when below the cap");
});

test("denials: TTL from the SOA (lesser of its TTL and MINIMUM), NODATA too, in their own partition", () => {
  const cache = new ResponseCache(config());
  const nx = answerFor("missing.example.test");
  assert.equal(nx.layout.rcode, RCODE.NXDOMAIN);
  const entry = cache.put(nx.key, nx.response, nx.layout, 0);
  assert.equal(entry?.kind, "denial");
  assert.ok(cache.get(nx.key, 14_999));
  assert.equal(cache.get(nx.key, 15_000), undefined);
  const nodata = answerFor("long.example.test", "TXT");
  assert.equal(cache.put(nodata.key, nodata.response, nodata.layout, 0)?.kind, "denial");
  assert.equal(cache.size("denial"), 1);
  assert.equal(cache.size("success"), 0);
});

test("capacity: each partition keeps at most its cap, the oldest entries go first", () => {
  const cache = new ResponseCache(config(3, 2));
  const answers = Array.from({ length: 5 }, (_, i) => answerFor(`n${i}.example.test`));
  for (const a of answers) cache.put(a.key, a.response, a.layout, 0);
  assert.equal(cache.size("success"), 3);
  assert.equal(cache.get(answers[0]?.key ?? "", 1), undefined);
  assert.equal(cache.get(answers[1]?.key ?? "", 1), undefined);
  assert.ok(cache.get(answers[4]?.key ?? "", 1));
  for (const name of ["x1", "x2", "x3"]) {
    const nx = answerFor(`${name}.example.test`);
    cache.put(nx.key, nx.response, nx.layout, 0);
  }
  assert.equal(cache.size("denial"), 2);
  assert.equal(cache.size("success"), 3, "denials do not push out answers");
});

test("not cached: SERVFAIL, REFUSED, truncated answers, denials without SOA", () => {
  const cache = new ResponseCache(config());
  const base = answerFor("long.example.test");
  for (const rcode of [RCODE.SERVFAIL, RCODE.REFUSED]) {
    const buf = Buffer.from(base.response);
    buf.writeUInt16BE((buf.readUInt16BE(2) & ~0xf) | rcode, 2);
    const layout = walkResponse(buf);
    assert.ok(layout);
    assert.equal(cache.put(base.key, buf, layout, 0), undefined);
  }
  const truncated = Buffer.from(base.response);
  truncated.writeUInt16BE(truncated.readUInt16BE(2) | 0x0200, 2);
  assert.equal(cache.put(base.key, truncated, walkResponse(truncated) ?? base.layout, 0), undefined);
  const q = dnsPacket.encode({ type: "query", id: 1, questions: [{ name: "a.test", type: "A" }] });
  const p = { query: parseQuery(q) as Query };
  const bare = encodeResponse(q, p.query, {
    rcode: RCODE.NXDOMAIN,
    authoritative: true,
    answers: [],
    authority: [],
    additionals: [],
  });
  assert.equal(cache.put(p.query.key, bare, walkResponse(bare) ?? base.layout, 0), undefined);
  assert.equal(cache.size("success") + cache.size("denial"), 0);
});
