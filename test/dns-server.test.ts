// The DNS server on loopback: real servers (podnet's, in this process and as `podnet dns serve`), queried
// with dig and with raw UDP/TCP sockets. Every server and process started here is stopped in `after`,
// also when a test fails.
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import dnsPacket from "dns-packet";
import { InvalidInputError } from "../src/api/diagnostics.js";
import { parseDnsConfig } from "../src/dns/server/config.js";
import { type DnsServerHandle, startDnsServer } from "../src/dns/server/server.js";
import { walkResponse } from "../src/dns/server/wire.js";
import type { ZoneAnswerer } from "../src/dns/types.js";

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), `podnet-dns-${randomBytes(3).toString("hex")}-`));
const handles: DnsServerHandle[] = [];
const children: ChildProcess[] = [];
const sockets: UdpSocket[] = [];
const namespaces: string[] = [];

after(async () => {
  for (const child of children) if (child.exitCode === null && child.pid) process.kill(child.pid, "SIGKILL");
  for (const s of sockets) s.close();
  await Promise.all(handles.map((h) => h.close()));
  for (const ns of namespaces) spawnSync("ip", ["netns", "del", ns]);
  rmSync(dir, { recursive: true, force: true });
});

async function start(
  text: string,
  name: string,
  extra: Parameters<typeof startDnsServer>[1] = {},
): Promise<DnsServerHandle> {
  const file = join(dir, name);
  writeFileSync(file, text);
  const { config, diagnostics } = parseDnsConfig(text, file);
  assert.deepEqual(diagnostics, []);
  const handle = await startDnsServer(config, { log: () => {}, ...extra });
  handles.push(handle);
  return handle;
}

/** A UDP socket that never answers: an upstream that has gone silent. */
async function silentUpstream(): Promise<number> {
  const s = createSocket("udp4");
  sockets.push(s);
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", r));
  return s.address().port;
}

/** A loopback port with nothing listening (bound, then released). */
async function deadPort(): Promise<number> {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(r));
  return port;
}

async function dig(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run("dig", ["@127.0.0.1", "-p", String(port), "+time=4", "+tries=1", ...args], {
    timeout: 20_000,
  });
  return stdout;
}

const status = (out: string) => /status: (\w+)/.exec(out)?.[1];
/** The lines of dig's ANSWER SECTION. */
const answers = (out: string) =>
  (/;; ANSWER SECTION:\n([\s\S]*?)(?:\n\n|$)/.exec(out)?.[1] ?? "").split("\n").filter(Boolean);

/** A query as raw bytes, sent over UDP from a fresh socket; resolves with the raw answer. */
function udpExchange(port: number, query: Buffer, timeoutMs = 3000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = createSocket("udp4");
    const timer = setTimeout(() => {
      s.close();
      reject(new Error(`no UDP answer within ${timeoutMs} ms`));
    }, timeoutMs);
    s.on("message", (msg) => {
      clearTimeout(timer);
      s.close();
      resolve(msg);
    });
    s.send(query, port, "127.0.0.1");
  });
}

/** Frames over one TCP connection, written in the given chunks; resolves with `count` answers. */
function tcpExchange(port: number, chunks: Buffer[], count: number): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const conn = connect({ host: "127.0.0.1", port });
    const got: Buffer[] = [];
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`${got.length} of ${count} TCP answers`));
    }, 5000);
    conn.on("data", (d: Buffer) => {
      buffered = Buffer.concat([buffered, d]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        got.push(buffered.subarray(2, 2 + buffered.readUInt16BE(0)));
        buffered = buffered.subarray(2 + buffered.readUInt16BE(0));
      }
      if (got.length >= count) {
        clearTimeout(timer);
        conn.destroy();
        resolve(got);
      }
    });
    conn.on("error", reject);
    conn.on("connect", async () => {
      for (const c of chunks) {
        conn.write(c);
        await new Promise((r) => setTimeout(r, 5));
      }
    });
  });
}

/** dns-packet's decode; its declarations leave out the rcode it returns. */
const decode = (buf: Buffer) => dnsPacket.decode(buf) as dnsPacket.DecodedPacket & { rcode: string };

function frame(msg: Buffer): Buffer {
  const f = Buffer.alloc(2 + msg.length);
  f.writeUInt16BE(msg.length, 0);
  msg.copy(f, 2);
  return f;
}

function query(name: string, type: dnsPacket.RecordType = "A", id = 1, edns = true): Buffer {
  return dnsPacket.encode({
    type: "query",
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type }],
    additionals: edns
      ? [
          {
            type: "OPT",
            name: ".",
            udpPayloadSize: 1232,
            flags: 0,
            options: [],
          } as unknown as dnsPacket.Answer,
        ]
      : [],
  });
}

let main: DnsServerHandle;
let mainPort: number;
let remoteB: DnsServerHandle;
let metricsPort: number;

before(async () => {
  const remoteHosts = (address: string) =>
    `remote.test:0 {\n  hosts {\n${Array.from({ length: 10 }, (_, i) => `    ${address} n${i}.remote.test`).join("\n")}\n  }\n}\n`;
  remoteB = await start(remoteHosts("10.2.0.1"), "b.conf");
  const remoteC = await start(remoteHosts("10.3.0.1"), "c.conf");
  const subzone = await start(
    "sub.example.test:0 {\n  hosts {\n    10.4.0.1 www.sub.example.test\n  }\n}\n",
    "d.conf",
  );
  const big = Array.from({ length: 60 }, (_, i) => `    10.0.1.${i + 1} big.example.test`).join("\n");
  const silent = await silentUpstream();
  const dead = await deadPort();
  main = await start(
    `# the server under test
example.test:0 remote.test:0 dead.test:0 silent.test:0 {
    hosts example.test {
        10.0.0.1 a.example.test
        fd00::1 a.example.test
${big}
        ttl 60
    }
    forward remote.test 127.0.0.1:${remoteB.listeners[0]?.port} 127.0.0.1:${remoteC.listeners[0]?.port} {
        policy sequential
        max_fails 1
        health_check 100ms
    }
    forward sub.example.test 127.0.0.1:${subzone.listeners[0]?.port}
    forward dead.test 127.0.0.1:${dead}
    forward silent.test 127.0.0.1:${silent}
    cache 30
    prometheus 127.0.0.1:0
}
cluster.local:0 {
    kubernetes cluster.local
}
`,
    "main.conf",
    {
      // The cluster zone's answerer, as the lab would supply it: static records behind the contract.
      clusterZone: (c): ZoneAnswerer => ({
        zones: c.zones,
        lookup: (qname) =>
          qname === "web.default.svc.cluster.local"
            ? {
                rcode: "NOERROR",
                answers: [{ name: qname, type: "A", ttl: c.ttl, data: "10.96.0.10" }],
                authority: [],
                additionals: [],
              }
            : undefined,
      }),
    },
  );
  mainPort = main.listeners[0]?.port ?? 0;
  metricsPort = main.metrics[0]?.port ?? 0;
  assert.equal(main.listeners.length, 1, "both blocks share one listener");
  assert.ok(mainPort > 0 && metricsPort > 0);
});

test("dig: A, AAAA, PTR-less NXDOMAIN with SOA, over UDP and TCP; the cluster zone answers from the factory's answerer", async () => {
  const a = await dig(mainPort, "a.example.test");
  assert.equal(status(a), "NOERROR");
  assert.match(answers(a)[0] ?? "", /^a\.example\.test\.\s+30\s+IN\s+A\s+10\.0\.0\.1$/);
  assert.match(a, /flags: qr aa rd ra;/);
  assert.match(answers(await dig(mainPort, "+tcp", "a.example.test", "AAAA"))[0] ?? "", /AAAA\s+fd00::1$/);
  const nx = await dig(mainPort, "missing.example.test");
  assert.equal(status(nx), "NXDOMAIN");
  assert.match(nx, /AUTHORITY SECTION:\nexample\.test\.\s+\d+\s+IN\s+SOA/);
  assert.match(answers(await dig(mainPort, "web.default.svc.cluster.local"))[0] ?? "", /A\s+10\.96\.0\.10$/);
  assert.equal(status(await dig(mainPort, "other.org")), "REFUSED");
});

test("EDNS: the client's buffer size decides; TC then dig's retry over TCP brings the whole answer", async () => {
  const small = await dig(mainPort, "+bufsize=512", "+ignore", "big.example.test");
  assert.match(small, /flags: qr aa tc rd ra;/);
  assert.ok(answers(small).length < 60);
  const large = await dig(mainPort, "+bufsize=4096", "+ignore", "big.example.test");
  assert.doesNotMatch(large, /flags: qr tc/);
  assert.equal(answers(large).length, 60);
  assert.match(large, /udp: 1232/);
  const retried = await dig(mainPort, "+bufsize=512", "big.example.test");
  assert.match(retried, /Truncated, retrying in TCP mode/);
  assert.equal(answers(retried).length, 60);
  // Without EDNS: at most 512 bytes, no OPT record.
  const classic = await udpExchange(mainPort, query("big.example.test", "A", 7, false));
  assert.ok(classic.length <= 512);
  assert.ok(classic.readUInt16BE(2) & 0x0200);
  assert.equal(classic.readUInt16BE(10), 0);
  const edns = decode(await udpExchange(mainPort, query("a.example.test")));
  assert.equal(edns.additionals?.[0]?.type, "OPT");
});

test("compression: 60 answers for one name cost 16 bytes each", async () => {
  const q = query("big.example.test");
  const [answer] = await tcpExchange(mainPort, [frame(q)], 1);
  assert.ok(answer);
  const questionSize = q.length - 12 - 11;
  assert.equal(answer.length, 12 + questionSize + 60 * 16 + 11);
});

test("unsupported and odd queries get sensible answers", async () => {
  const mx = await dig(mainPort, "a.example.test", "MX");
  assert.equal(status(mx), "NOERROR");
  assert.equal(answers(mx).length, 0, "NODATA");
  assert.equal(status(await dig(mainPort, "a.example.test", "TYPE65280")), "NOERROR");
  assert.match(await dig(mainPort, "example.test", "AXFR"), /Transfer failed/);
  const axfr = decode(
    (
      await tcpExchange(mainPort, [frame(query("example.test", "AXFR" as dnsPacket.RecordType))], 1)
    )[0] as Buffer,
  );
  assert.equal(axfr.rcode, "NOTIMP");
  assert.equal(status(await dig(mainPort, "-c", "CH", "version.bind", "TXT")), "REFUSED");
  assert.equal(status(await dig(mainPort, "+edns=1", "+noednsnegotiation", "a.example.test")), "BADVERS");
  const twoQuestions = query("a.example.test");
  twoQuestions.writeUInt16BE(2, 4);
  assert.equal(decode(await udpExchange(mainPort, twoQuestions)).rcode, "FORMERR");
});

test("TCP: pipelined queries on one connection, frames split across writes", async () => {
  const queries = [
    query("a.example.test", "A", 11),
    query("a.example.test", "AAAA", 12),
    query("missing.example.test", "A", 13),
  ];
  const pipelined = await tcpExchange(mainPort, [Buffer.concat(queries.map(frame))], 3);
  assert.deepEqual(pipelined.map((b) => b.readUInt16BE(0)).sort(), [11, 12, 13]);
  const bytes = frame(query("a.example.test", "A", 21));
  const split = await tcpExchange(
    mainPort,
    [bytes.subarray(0, 1), bytes.subarray(1, 9), bytes.subarray(9)],
    1,
  );
  assert.equal(split[0]?.readUInt16BE(0), 21);
});

test("concurrent clients: 200 queries from 50 sockets at once all get their own answers", async () => {
  const results = await Promise.all(
    Array.from({ length: 200 }, (_, i) =>
      udpExchange(mainPort, query(i % 2 ? "a.example.test" : "missing.example.test", "A", i)),
    ),
  );
  results.forEach((r, i) => {
    assert.equal(r.readUInt16BE(0), i);
    assert.equal(decode(r).rcode, i % 2 ? "NOERROR" : "NXDOMAIN");
  });
});

test("forwarding to another podnet server, and failover when it stops", async () => {
  const first = await dig(mainPort, "n0.remote.test");
  assert.match(answers(first)[0] ?? "", /A\s+10\.2\.0\.1$/, "sequential: the first upstream answers");
  assert.match(first, /flags: qr aa rd ra;/, "the upstream's authoritative flag is relayed");
  await remoteB.close();
  // Names not yet cached: each must be forwarded again.
  for (const name of ["n1.remote.test", "n2.remote.test"]) {
    const out = await dig(mainPort, name);
    assert.equal(status(out), "NOERROR");
    assert.match(answers(out)[0] ?? "", /A\s+10\.3\.0\.1$/, `${name} from the second upstream`);
  }
});

test("a forward zone inside an authoritative zone (another cluster's services) is forwarded", async () => {
  assert.match(answers(await dig(mainPort, "www.sub.example.test"))[0] ?? "", /A\s+10\.4\.0\.1$/);
  assert.equal(
    status(await dig(mainPort, "missing.example.test")),
    "NXDOMAIN",
    "the rest stays authoritative",
  );
});

test("an unreachable upstream gives SERVFAIL (refused port at once, silent one at the 2 s deadline), other queries meanwhile", async () => {
  assert.equal(status(await dig(mainPort, "x.dead.test")), "SERVFAIL");
  // While the silent upstream holds one query, others are answered: no head-of-line blocking.
  const order: string[] = [];
  const slow = dig(mainPort, "+time=5", "x.silent.test").then((out) => {
    order.push("silent");
    return out;
  });
  const fast = dig(mainPort, "+tcp", "a.example.test").then((out) => {
    order.push("fast");
    return out;
  });
  assert.equal(status(await fast), "NOERROR");
  assert.equal(status(await slow), "SERVFAIL");
  assert.deepEqual(order, ["fast", "silent"]);
});

test("metrics over HTTP on loopback: requests, rcodes, cache hits, latency histogram", async () => {
  await dig(mainPort, "a.example.test");
  await dig(mainPort, "a.example.test");
  const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? Number.NaN);
  const server = `dns://127.0.0.1:${mainPort}`;
  assert.ok(
    value(
      new RegExp(
        `podnet_dns_requests_total\\{server="${server}",zone="example.test",proto="udp",type="A"\\} (\\d+)`,
      ),
    ) >= 2,
  );
  assert.ok(value(/podnet_dns_responses_total\{[^}]*zone="example.test",rcode="NXDOMAIN"\} (\d+)/) >= 1);
  assert.ok(value(/podnet_dns_responses_total\{[^}]*zone="dead.test",rcode="SERVFAIL"\} (\d+)/) >= 1);
  assert.ok(value(/podnet_dns_cache_hits_total\{[^}]*zone="example.test",type="success"\} (\d+)/) >= 1);
  assert.ok(value(/podnet_dns_request_duration_seconds_count\{[^}]*zone="example.test"\} (\d+)/) >= 2);
  assert.match(text, /podnet_dns_request_duration_seconds_bucket\{[^}]*le="0.00025"\} \d+/);
  assert.ok(value(/podnet_dns_forward_failures_total\{to="127.0.0.1:\d+"\} (\d+)/) >= 1);
  assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/other`)).status, 404);
});

test("fuzz: random and mutated packets over UDP and TCP never crash or stall the server", async () => {
  const seeds = [
    query("a.example.test"),
    query("big.example.test", "AAAA", 3, false),
    query("x.remote.test", "SRV"),
  ];
  const fuzzer = createSocket("udp4");
  sockets.push(fuzzer);
  await new Promise<void>((r) => fuzzer.bind(0, "127.0.0.1", r));
  fuzzer.on("message", () => {});
  const packets: Buffer[] = [];
  for (let i = 0; i < 3000; i++) {
    if (i % 3 === 0) packets.push(randomBytes(1 + (i % 300)));
    else {
      const seed = Buffer.from(seeds[i % seeds.length] as Buffer);
      const flips = 1 + (i % 6);
      for (let f = 0; f < flips; f++)
        seed[randomBytes(2).readUInt16BE(0) % seed.length] = randomBytes(1)[0] as number;
      // Mostly keep it a query with one question so the parser goes deep; sometimes not.
      if (i % 5) {
        seed[2] = (seed[2] as number) & 0x7f;
        seed.writeUInt16BE(1, 4);
      }
      packets.push(i % 7 === 0 ? seed.subarray(0, seed.length - (i % seed.length)) : seed);
    }
  }
  for (let i = 0; i < packets.length; i += 100) {
    for (const p of packets.slice(i, i + 100)) fuzzer.send(p, mainPort, "127.0.0.1");
    await new Promise((r) => setImmediate(r));
  }
  // TCP: garbage streams, lying lengths, mutated frames, on several connections.
  await Promise.all(
    Array.from(
      { length: 20 },
      (_, i) =>
        new Promise<void>((resolve) => {
          const conn = connect({ host: "127.0.0.1", port: mainPort });
          conn.on("error", () => resolve());
          conn.on("close", () => resolve());
          conn.on("data", () => {});
          conn.on("connect", () => {
            const stream = Buffer.concat(
              packets.slice(i * 50, i * 50 + 50).map((p) => (i % 2 ? frame(p) : p)),
            );
            conn.end(stream);
            setTimeout(() => conn.destroy(), 300);
          });
        }),
    ),
  );
  // Still answering, over both transports, and the metrics saw the malformed packets.
  assert.equal(status(await dig(mainPort, "a.example.test")), "NOERROR");
  assert.equal(status(await dig(mainPort, "+tcp", "a.example.test")), "NOERROR");
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  assert.ok(Number(/podnet_dns_malformed_requests_total\{[^}]*\} (\d+)/.exec(text)?.[1]) > 100);
});

/** A response with its TTLs zeroed (two servers' caches age apart), or the bytes when it does not walk. */
function withoutTtls(buf: Buffer | undefined): string {
  if (!buf) return "no answer";
  const copy = Buffer.from(buf);
  for (const record of walkResponse(copy)?.records ?? []) copy.writeUInt32BE(0, record.ttlOffset);
  return copy.toString("hex");
}

const FAST_ZONE = `fast.test:0 {
  hosts {
    10.0.0.1 a.fast.test
    fd00::1 a.fast.test
    10.0.0.2 b.fast.test
  }
  cache 30
}
`;

test("fast path: cached answers from the native thread equal the JS path's, for odd, mutated and truncated queries too", async () => {
  const fast = await start(FAST_ZONE, "fast.conf");
  const slow = await start(FAST_ZONE, "slow.conf", { fastPath: false });
  const fastPort = fast.listeners[0]?.port ?? 0;
  const slowPort = slow.listeners[0]?.port ?? 0;
  const withDo = dnsPacket.encode({
    type: "query",
    id: 77,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.CHECKING_DISABLED,
    questions: [{ name: "a.fast.test", type: "A" }],
    additionals: [
      { type: "OPT", name: ".", udpPayloadSize: 4096, flags: dnsPacket.DNSSEC_OK, options: [] },
    ] as unknown as dnsPacket.Answer[],
  });
  const seeds = [
    query("a.fast.test"),
    query("A.Fast.TEST", "AAAA", 9, false),
    query("b.fast.test", "A", 3),
    query("nope.fast.test"),
    query("a.fast.test", "MX", 4),
    withDo,
  ];
  const variants: Buffer[] = [];
  for (const seed of seeds) {
    variants.push(seed, seed);
    const other = Buffer.from(seed);
    other.writeUInt16BE(0xbeef, 0);
    other[2] = (other[2] as number) ^ 0x01; // RD
    other[3] = (other[3] as number) ^ 0x10; // CD
    for (let i = 13; i < other.length - 4 && other[i] !== 0; i++)
      if ((other[i] as number) >= 0x61 && (other[i] as number) <= 0x7a)
        other[i] = (other[i] as number) ^ 0x20;
    variants.push(other);
    for (let cut = 12; cut < seed.length; cut++) variants.push(seed.subarray(0, cut));
    variants.push(Buffer.concat([seed, Buffer.from([0])]), Buffer.concat([seed, randomBytes(7)]));
    const twoRecords = Buffer.from(seed);
    twoRecords.writeUInt16BE(2, 10);
    variants.push(twoRecords);
    for (let f = 0; f < 30; f++) {
      const mutated = Buffer.from(seed);
      mutated[2 + (randomBytes(2).readUInt16BE(0) % (mutated.length - 2))] = randomBytes(1)[0] as number;
      mutated[2] = (mutated[2] as number) & 0x7f;
      variants.push(mutated);
    }
  }
  // EDNS version 1 (BADVERS) and an OPT with an option (ignored): same answers from both.
  const v1 = Buffer.from(seeds[0] as Buffer);
  v1[v1.length - 5] = 1;
  variants.push(v1);
  const withOption = Buffer.concat([seeds[0] as Buffer, Buffer.from([0, 10, 0, 0])]);
  withOption.writeUInt16BE(4, withOption.length - 6);
  variants.push(withOption);
  for (const packet of variants) {
    const [a, b] = await Promise.all([
      udpExchange(fastPort, packet, 1000).catch(() => undefined),
      udpExchange(slowPort, packet, 1000).catch(() => undefined),
    ]);
    assert.equal(withoutTtls(a), withoutTtls(b), `query ${packet.toString("hex")}`);
  }
  // The metrics agree too: native answers are counted as requests, responses and cache hits.
  const counts = (h: DnsServerHandle) =>
    h
      .renderMetrics()
      .split("\n")
      .filter((l) => /^podnet_dns_(requests|responses|cache_hits|cache_misses)_total|_count\{/.test(l))
      .map((l) => l.replace(/server="[^"]*"/, ""));
  assert.deepEqual(counts(fast), counts(slow));
});

test("fast path: a cached name is answered while JavaScript is busy, with the client's spelling and counted-down TTLs", async () => {
  const fast = await start(FAST_ZONE, "fast-busy.conf");
  const port = String(fast.listeners[0]?.port);
  assert.equal(status(await dig(Number(port), "a.fast.test")), "NOERROR");
  // spawnSync blocks this thread's event loop: only the native thread can answer.
  const busy = spawnSync("dig", ["@127.0.0.1", "-p", port, "+time=1", "+tries=1", "A.FAST.test"], {
    encoding: "utf8",
  });
  assert.equal(status(busy.stdout), "NOERROR", busy.stdout);
  assert.match(answers(busy.stdout)[0] ?? "", /^A\.FAST\.test\.\s+30\s+IN\s+A\s+10\.0\.0\.1$/);
  // A second later, still without JavaScript: the TTL counted down in C as the JS cache would.
  await new Promise((r) => setTimeout(r, 1100));
  const later = spawnSync("dig", ["@127.0.0.1", "-p", port, "+time=1", "+tries=1", "a.fast.test"], {
    encoding: "utf8",
  });
  assert.equal(status(later.stdout), "NOERROR", later.stdout);
  const ttl = Number(/\s(\d+)\s+IN\s+A\s/.exec(answers(later.stdout)[0] ?? "")?.[1]);
  assert.ok(ttl >= 27 && ttl <= 29, `TTL ${ttl}`);
  // And JavaScript's own answer (over TCP) agrees.
  const js = await dig(Number(port), "+tcp", "a.fast.test");
  const jsTtl = Number(/\s(\d+)\s+IN\s+A\s/.exec(answers(js)[0] ?? "")?.[1]);
  assert.ok(jsTtl <= ttl && jsTtl >= ttl - 1, `C ${ttl}, JS ${jsTtl}`);
});

test("fast path: starting and stopping servers many times leaves no threads or descriptors behind", async () => {
  const threads = () => readdirSync("/proc/self/task").length;
  const fds = () => readdirSync("/proc/self/fd").length;
  const before = { threads: threads(), fds: fds() };
  for (let i = 0; i < 25; i++) {
    const file = join(dir, "cycle.conf");
    writeFileSync(file, FAST_ZONE);
    const handle = await startDnsServer(parseDnsConfig(FAST_ZONE, file).config, { log: () => {} });
    const port = handle.listeners[0]?.port ?? 0;
    await udpExchange(port, query("a.fast.test"));
    await udpExchange(port, query("a.fast.test"));
    await handle.close();
  }
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(threads() <= before.threads + 1, `threads ${before.threads} -> ${threads()}`);
  assert.ok(fds() <= before.fds + 2, `fds ${before.fds} -> ${fds()}`);
});

test("in a pod's network namespace: listeners and upstream clients are created there (the lab's use)", async () => {
  const ns = `pdns${randomBytes(3).toString("hex")}-pod`;
  assert.equal(spawnSync("ip", ["netns", "add", ns]).status, 0);
  namespaces.push(ns);
  assert.equal(spawnSync("ip", ["-n", ns, "link", "set", "lo", "up"]).status, 0);
  const netns = `/run/netns/${ns}`;
  const upstream = await start("up.test:0 {\n  hosts {\n    10.7.0.1 www.up.test\n  }\n}\n", "ns-up.conf", {
    netns,
  });
  const upstreamPort = upstream.listeners[0]?.port;
  const server = await start(
    `pod.test:0 up.test:0 {\n  hosts pod.test {\n    10.6.0.1 www.pod.test\n  }\n  forward up.test 127.0.0.1:${upstreamPort}\n  prometheus 127.0.0.1:0\n}\n`,
    "ns.conf",
    { netns },
  );
  const port = String(server.listeners[0]?.port);
  const digIn = async (...args: string[]) =>
    (await run("ip", ["netns", "exec", ns, "dig", "@127.0.0.1", "-p", port, "+time=3", "+tries=1", ...args]))
      .stdout;
  assert.match(answers(await digIn("www.pod.test"))[0] ?? "", /A\s+10\.6\.0\.1$/);
  assert.match(answers(await digIn("+tcp", "www.pod.test"))[0] ?? "", /A\s+10\.6\.0\.1$/);
  // Forwarded from inside the namespace to a server that exists only there.
  assert.match(answers(await digIn("www.up.test"))[0] ?? "", /A\s+10\.7\.0\.1$/);
  const metrics = await run("ip", [
    "netns",
    "exec",
    ns,
    "curl",
    "-s",
    `http://127.0.0.1:${server.metrics[0]?.port}/metrics`,
  ]);
  assert.match(metrics.stdout, /podnet_dns_requests_total\{[^}]*zone="pod.test"/);
  // With `cache`: the fast path's socket is created in the namespace too; hits come from it.
  const cached = await start(FAST_ZONE, "ns-fast.conf", { netns });
  const cachedPort = String(cached.listeners[0]?.port);
  const digCached = async () =>
    (
      await run("ip", [
        "netns",
        "exec",
        ns,
        "dig",
        "@127.0.0.1",
        "-p",
        cachedPort,
        "+time=3",
        "+tries=1",
        "a.fast.test",
      ])
    ).stdout;
  for (let i = 0; i < 3; i++) assert.match(answers(await digCached())[0] ?? "", /A\s+10\.0\.0\.1$/);
  assert.match(cached.renderMetrics(), /podnet_dns_cache_hits_total\{[^}]*type="success"\} 2\n/);
  await cached.close();
  await server.close();
  await upstream.close();
});

test("a kubernetes directive without a cluster zone from the caller is refused with file:line", async () => {
  const { config } = parseDnsConfig(
    ".:0 {\n  forward . 127.0.0.1:53\n  kubernetes cluster.local\n}\n",
    "k8s.conf",
  );
  await assert.rejects(
    startDnsServer(config),
    (e: unknown) =>
      e instanceof InvalidInputError &&
      /^k8s\.conf:3: error: the kubernetes directive needs/m.test(e.message),
  );
});

test("podnet dns serve: rejects a bad configuration with file:line, serves a good one until SIGTERM", async () => {
  const cli = join(process.cwd(), "dist/src/cli/main.js");
  const bad = join(dir, "bad.conf");
  writeFileSync(bad, ".:0 {\n  forward . 10.0.0.300\n  cache 0\n}\n");
  const failed = await run(process.execPath, [cli, "dns", "serve", "--config", bad]).then(
    () => assert.fail("a bad configuration must fail"),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(failed.code, 1);
  assert.match(
    failed.stderr,
    new RegExp(`${bad}:2: error: "10.0.0.300" is not an upstream address\n    fix: `),
  );
  assert.match(failed.stderr, new RegExp(`${bad}:3: error: cache TTL "0" is not a whole number`));

  const good = join(dir, "good.conf");
  writeFileSync(good, "cli.test:0 {\n  hosts {\n    10.5.0.1 www.cli.test\n  }\n}\n");
  const child = spawn(process.execPath, [cli, "dns", "serve", "--config", good, "--listen", "127.0.0.1"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  const line = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n")) resolve(out);
    });
    child.once("exit", (code) => reject(new Error(`podnet dns serve exited with ${code}`)));
  });
  const port = Number(/listening on 127\.0\.0\.1 port (\d+) \(udp, tcp\) for cli\.test/.exec(line)?.[1]);
  assert.ok(port > 0, line);
  assert.match(answers(await dig(port, "www.cli.test"))[0] ?? "", /A\s+10\.5\.0\.1$/);
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  if (child.pid) process.kill(child.pid, "SIGTERM");
  assert.equal(await exited, 0);
});
