import assert from "node:assert/strict";
import { test } from "node:test";
import dnsPacket from "dns-packet";
import type { DnsRecord } from "../types.js";
import {
  encodeResponse,
  FLAG_TC,
  OPT_RECORD_SIZE,
  parseQuery,
  type Query,
  questionIsDotted,
  questionName,
  RCODE,
  type ResponseContent,
  truncateResponse,
  typeName,
  typeNumber,
  udpLimit,
  walkResponse,
  withoutOpt,
} from "./wire.js";

/** The data of record `index` of a decoded section (fails the test when it is missing). */
function dataOf<T>(section: readonly unknown[] | undefined, index: number): T {
  const record = section?.[index] as { data: T } | undefined;
  assert.ok(record, `no record ${index}`);
  return record.data;
}

function query(
  name: string,
  type: dnsPacket.RecordType = "A",
  edns?: { udpSize: number; do?: boolean },
): Buffer {
  return dnsPacket.encode({
    type: "query",
    id: 4242,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type, class: "IN" }],
    additionals: edns
      ? [
          {
            type: "OPT",
            name: ".",
            udpPayloadSize: edns.udpSize,
            flags: edns.do ? dnsPacket.DNSSEC_OK : 0,
            options: [],
          },
        ]
      : [],
  } as unknown as dnsPacket.Packet);
}

function parsed(buf: Buffer): Query {
  const p = parseQuery(buf);
  assert.equal(p.kind, "query", JSON.stringify(p));
  return p as Query;
}

function answer(records: DnsRecord[], extra: Partial<ResponseContent> = {}): ResponseContent {
  return {
    rcode: RCODE.NOERROR,
    authoritative: true,
    answers: records,
    authority: [],
    additionals: [],
    ...extra,
  };
}

test("parseQuery reads header, question and EDNS; the key ignores case and carries the DO bit", () => {
  const q = parsed(query("Web.Default.svc.Cluster.Local", "AAAA", { udpSize: 4096, do: true }));
  assert.equal(q.id, 4242);
  assert.equal(q.qtype, 28);
  assert.equal(q.qclass, 1);
  assert.deepEqual(q.edns, { udpSize: 4096, version: 0, dnssecOk: true });
  assert.equal(questionName(query("Web.Default.svc.Cluster.Local")), "web.default.svc.cluster.local");
  assert.equal(parsed(query("WEB.test")).key, parsed(query("web.TEST")).key);
  assert.notEqual(
    parsed(query("web.test", "A", { udpSize: 1232, do: true })).key,
    parsed(query("web.test")).key,
  );
  assert.equal(parsed(query("web.test", "A", { udpSize: 1232 })).key, parsed(query("web.test")).key);
  assert.notEqual(parsed(query("web.test", "A")).key, parsed(query("web.test", "AAAA")).key);
  assert.equal(questionName(query(".", "NS")), ".");
});

test("parseQuery drops what must not be answered and rejects malformed queries with an rcode", () => {
  const base = query("a.test", "A", { udpSize: 1232 });
  assert.equal(parseQuery(Buffer.alloc(5)).kind, "drop");
  const response = Buffer.from(base);
  response[2] = (response[2] as number) | 0x80;
  assert.equal(parseQuery(response).kind, "drop");
  const rcodeOf = (buf: Buffer) => {
    const p = parseQuery(buf);
    return p.kind === "error" ? p.rcode : p.kind;
  };
  const twoQuestions = Buffer.from(base);
  twoQuestions.writeUInt16BE(2, 4);
  assert.equal(rcodeOf(twoQuestions), RCODE.FORMERR);
  assert.equal(rcodeOf(base.subarray(0, 16)), RCODE.FORMERR);
  const pointer = Buffer.from(base);
  pointer[12] = 0xc0;
  assert.equal(rcodeOf(pointer), RCODE.FORMERR);
  const notify = Buffer.from(base);
  notify[2] = ((notify[2] as number) & 0x87) | (4 << 3);
  assert.equal(rcodeOf(notify), RCODE.NOTIMP);
  const twoOpts = Buffer.concat([base, base.subarray(base.length - OPT_RECORD_SIZE)]);
  twoOpts.writeUInt16BE(2, 10);
  assert.equal(rcodeOf(twoOpts), RCODE.FORMERR);
  const lyingCount = Buffer.from(base);
  lyingCount.writeUInt16BE(3, 10);
  assert.equal(rcodeOf(lyingCount), RCODE.FORMERR);
});

test("encodeResponse compresses names: each repeated owner name is a 2-byte pointer", () => {
  const name = "web.default.svc.cluster.local";
  const q = query(name);
  const records: DnsRecord[] = Array.from({ length: 50 }, (_, i) => ({
    name,
    type: "A",
    ttl: 5,
    data: `10.0.0.${i + 1}`,
  }));
  const out = encodeResponse(q, parsed(q), answer(records));
  const questionBytes = q.length - 12;
  // Header + question + 50 × (pointer 2 + type/class/ttl/rdlength 10 + address 4).
  assert.equal(out.length, 12 + questionBytes + 50 * 16);
  const decoded = dnsPacket.decode(out);
  assert.equal(decoded.answers?.length, 50);
  assert.deepEqual(
    decoded.answers?.map((a) => (a as { data: string }).data),
    records.map((r) => r.data),
  );
  assert.equal(decoded.answers?.[0]?.name, name);
  // dns-packet's own encoder writes every name in full.
  const uncompressed = dnsPacket.encode({
    type: "response",
    questions: [{ name, type: "A" }],
    answers: records.map((r) => ({ name: r.name, type: "A", ttl: 5, data: r.data as string })),
  });
  assert.ok(uncompressed.length > out.length + 49 * 25);
});

test("encodeResponse: CNAME chains, SOA, PTR and NS compress into earlier names; SRV targets stay whole", () => {
  const q = query("Alias.Example.Test", "SRV");
  const records: DnsRecord[] = [
    { name: "alias.example.test", type: "CNAME", ttl: 30, data: "web.example.test" },
    {
      name: "web.example.test",
      type: "SRV",
      ttl: 30,
      data: { priority: 0, weight: 10, port: 80, target: "pod-1.web.example.test" },
    },
  ];
  const content = answer(records, {
    authority: [
      {
        name: "example.test",
        type: "SOA",
        ttl: 5,
        data: {
          mname: "ns.dns.example.test",
          rname: "hostmaster.example.test",
          serial: 1,
          refresh: 2,
          retry: 3,
          expire: 4,
          minimum: 5,
        },
      },
      { name: "example.test", type: "NS", ttl: 5, data: "ns.dns.example.test" },
    ],
    additionals: [
      { name: "pod-1.web.example.test", type: "A", ttl: 30, data: "10.1.0.2" },
      { name: "pod-1.web.example.test", type: "AAAA", ttl: 30, data: "fd00::2" },
      { name: "2.0.1.10.in-addr.arpa", type: "PTR", ttl: 30, data: "pod-1.web.example.test" },
      { name: "web.example.test", type: "TXT", ttl: 30, data: ["x".repeat(300), "short"] },
    ],
  });
  const out = encodeResponse(q, parsed(q), content);
  const decoded = dnsPacket.decode(out);
  assert.equal(
    decoded.questions?.[0]?.name,
    "Alias.Example.Test",
    "the question keeps the client's spelling",
  );
  assert.equal(dataOf<string>(decoded.answers, 0), "web.example.test");
  assert.deepEqual(dataOf<unknown>(decoded.answers, 1), records[1]?.data);
  assert.equal(dataOf<{ mname: string }>(decoded.authorities, 0).mname, "ns.dns.example.test");
  assert.equal(dataOf<string>(decoded.authorities, 1), "ns.dns.example.test");
  assert.equal(dataOf<string>(decoded.additionals, 1), "fd00::2");
  assert.equal(dataOf<string>(decoded.additionals, 2), "pod-1.web.example.test");
  const txt = dataOf<Buffer[]>(decoded.additionals, 3).map((b) => b.toString());
  assert.deepEqual(txt, ["x".repeat(255), "x".repeat(45), "short"]);
  // The SRV target is written in full (RFC 2782), so its labels appear literally.
  assert.ok(out.includes(Buffer.from("\x05pod-1\x03web\x07example\x04test\x00", "latin1")));
  const uncompressed = dnsPacket.encode(decoded).length;
  assert.ok(out.length <= uncompressed - 60, `compressed ${out.length} bytes, uncompressed ${uncompressed}`);
  assert.equal((decoded.flags ?? 0) & 0x0400, 0x0400, "AA set");
});

test("odd question names (a dot inside a label, non-ASCII bytes) never get wrong pointers", () => {
  const records = (name: string): DnsRecord[] => [
    { name, type: "A", ttl: 5, data: "10.0.0.1" },
    { name: "b.example.test", type: "A", ttl: 5, data: "10.0.0.2" },
  ];
  const dotted = Buffer.from(query("xxx.example.test"));
  dotted[14] = 0x2e; // the label "xxx" becomes "x.x"
  assert.equal(questionIsDotted(dotted), false);
  assert.equal(questionIsDotted(query("a.b.example.test")), true);
  const latin = Buffer.from(query("xxx.example.test"));
  latin[13] = 0xe9;
  for (const q of [dotted, latin]) {
    const out = encodeResponse(q, parsed(q), answer(records("x.x.example.test")));
    const decoded = dnsPacket.decode(out);
    assert.deepEqual(
      decoded.answers?.map((a) => a.name),
      ["x.x.example.test", "b.example.test"],
    );
  }
});

test("truncation: cut at a record boundary with TC; dropping only additionals needs no TC", () => {
  const name = "many.example.test";
  const q = query(name, "A", { udpSize: 512 });
  const query512 = parsed(q);
  const records: DnsRecord[] = Array.from({ length: 100 }, (_, i) => ({
    name,
    type: "A",
    ttl: 5,
    data: `10.0.${i >> 8}.${i & 255}`,
  }));
  const full = encodeResponse(q, query512, answer(records));
  const layout = walkResponse(full);
  assert.ok(layout);
  const limit = udpLimit(query512.edns);
  assert.equal(limit, 512);
  const cut = truncateResponse(full, layout, limit, OPT_RECORD_SIZE);
  assert.ok(cut.length <= 512 - OPT_RECORD_SIZE);
  assert.ok(cut.readUInt16BE(2) & FLAG_TC);
  const decoded = dnsPacket.decode(cut);
  assert.equal(decoded.answers?.length, cut.readUInt16BE(6));
  assert.ok((decoded.answers?.length ?? 0) > 20);

  const withExtras = encodeResponse(
    q,
    query512,
    answer(records.slice(0, 2), { additionals: records.slice(2) }),
  );
  const extrasLayout = walkResponse(withExtras);
  assert.ok(extrasLayout);
  const cutExtras = truncateResponse(withExtras, extrasLayout, 512, OPT_RECORD_SIZE);
  assert.equal(cutExtras.readUInt16BE(2) & FLAG_TC, 0);
  assert.equal(cutExtras.readUInt16BE(6), 2);
});

test("udpLimit: 512 without EDNS, the client's size (at least 512, at most 4096) with it", () => {
  assert.equal(udpLimit(undefined), 512);
  assert.equal(udpLimit({ udpSize: 100, version: 0, dnssecOk: false }), 512);
  assert.equal(udpLimit({ udpSize: 1232, version: 0, dnssecOk: false }), 1232);
  assert.equal(udpLimit({ udpSize: 65000, version: 0, dnssecOk: false }), 4096);
});

test("walkResponse reads compressed responses; withoutOpt removes a trailing OPT record", () => {
  const response = dnsPacket.encode({
    type: "response",
    id: 7,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name: "a.test", type: "A" }],
    answers: [{ name: "a.test", type: "A", ttl: 300, data: "10.0.0.1" }],
    authorities: [
      {
        name: "test",
        type: "SOA",
        ttl: 60,
        data: { mname: "ns.test", rname: "h.test", serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 30 },
      },
    ],
    additionals: [
      { type: "OPT", name: ".", udpPayloadSize: 1232, flags: 0, options: [] } as unknown as dnsPacket.Answer,
    ],
  });
  const layout = walkResponse(response);
  assert.ok(layout);
  assert.equal(layout.records.length, 3);
  assert.equal(layout.records[1]?.soaMinimum, 30);
  assert.equal(layout.records[0]?.ttl, 300);
  const stripped = withoutOpt(response, layout);
  assert.ok(stripped);
  assert.equal(stripped.buf.readUInt16BE(10), 0);
  assert.equal(stripped.layout.records.length, 2);
  assert.equal(dnsPacket.decode(stripped.buf).additionals?.length, 0);
  assert.equal(walkResponse(response.subarray(0, response.length - 3)), undefined);
});

test("type names follow the ZoneAnswerer convention", () => {
  assert.equal(typeName(1), "A");
  assert.equal(typeName(33), "SRV");
  assert.equal(typeName(15), "MX");
  assert.equal(typeName(65280), "TYPE65280");
  assert.equal(typeNumber("TYPE65280"), 65280);
  assert.equal(typeNumber("aaaa"), 28);
});
