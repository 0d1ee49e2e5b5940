import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { after, test } from "node:test";
import dnsPacket from "dns-packet";
import { type ForwardConfig, parseDnsConfig } from "./config.js";
import { ForwardPool } from "./forward.js";
import { DnsMetrics } from "./metrics.js";
import { type DnsServerHandle, startDnsServer } from "./server.js";
import { hereSockets } from "./sockets.js";

/** The data of record `index` of a decoded section (fails the test when it is missing). */
function dataOf<T>(section: readonly unknown[] | undefined, index: number): T {
  const record = section?.[index] as { data: T } | undefined;
  assert.ok(record, `no record ${index}`);
  return record.data;
}

const cleanups: (() => Promise<unknown> | unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function forwardConfig(overrides: Partial<ForwardConfig>): ForwardConfig {
  return {
    from: ".",
    to: [],
    transport: "dns",
    except: [],
    policy: "sequential",
    healthCheckMs: 100,
    maxFails: 2,
    timeoutMs: 2000,
    forceTcp: false,
    failoverRcodes: [],
    line: 1,
    ...overrides,
  };
}

function pool(config: ForwardConfig): ForwardPool {
  const p = new ForwardPool(config, hereSockets, new DnsMetrics(), () => {});
  cleanups.push(() => p.close());
  return p;
}

const three = [1, 2, 3].map((i) => ({ address: `127.0.0.${i}`, port: 53 }));
const names = (p: ForwardPool) => p.order().map((u) => u.address.address.slice(-1));

test("policies: sequential keeps the order, round_robin rotates, random permutes; down upstreams go last", () => {
  const sequential = pool(forwardConfig({ to: three }));
  assert.deepEqual(names(sequential), ["1", "2", "3"]);
  assert.deepEqual(names(sequential), ["1", "2", "3"]);
  const roundRobin = pool(forwardConfig({ to: three, policy: "round_robin" }));
  assert.deepEqual(
    [names(roundRobin), names(roundRobin), names(roundRobin), names(roundRobin)],
    [
      ["1", "2", "3"],
      ["2", "3", "1"],
      ["3", "1", "2"],
      ["1", "2", "3"],
    ],
  );
  const random = pool(forwardConfig({ to: three, policy: "random" }));
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) seen.add(names(random).join(""));
  assert.equal(seen.size, 6, "all 6 orders of 3 upstreams appear");
  const first = sequential.upstreams[0];
  assert.ok(first);
  first.fails = 2;
  assert.ok(first.down);
  assert.deepEqual(names(sequential), ["2", "3", "1"], "failover: the down upstream is tried last");
  const neverDown = pool(forwardConfig({ to: three, maxFails: 0 }));
  (neverDown.upstreams[0] as { fails: number }).fails = 100;
  assert.equal(neverDown.upstreams[0]?.down, false, "max_fails 0: never down");
});

test("covers: the forwarded zone minus its except zones", () => {
  const p = pool(forwardConfig({ from: "cluster.local", except: ["local.cluster.local"], to: three }));
  assert.ok(p.covers("a.svc.cluster.local"));
  assert.ok(!p.covers("x.local.cluster.local"));
  assert.ok(!p.covers("example.org"));
});

/** A real podnet server with a large answer, on a free loopback port. */
async function upstreamServer(): Promise<DnsServerHandle> {
  const lines = Array.from({ length: 60 }, (_, i) => `    10.9.0.${i + 1} big.fwd.test`).join("\n");
  const { config } = parseDnsConfig(
    `fwd.test:0 {\n  hosts {\n${lines}\n    10.9.1.1 small.fwd.test\n  }\n}\n`,
    "upstream.conf",
  );
  const handle = await startDnsServer(config, { defaultListen: "127.0.0.1" });
  cleanups.push(() => handle.close());
  return handle;
}

function query(name: string, edns = false): Buffer {
  return dnsPacket.encode({
    type: "query",
    id: 99,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: "A" }],
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

test("forwarding: the answer comes back with the query's id; a truncated UDP answer is asked again over TCP", async () => {
  const upstream = await upstreamServer();
  const port = upstream.listeners[0]?.port ?? 0;
  const p = pool(forwardConfig({ to: [{ address: "127.0.0.1", port }] }));
  const small = await p.forward(query("small.fwd.test"));
  assert.ok(small);
  assert.equal(small.readUInt16BE(0), 99);
  assert.equal(dataOf<string>(dnsPacket.decode(small).answers, 0), "10.9.1.1");
  // 60 A records do not fit in 512 bytes: UDP says TC, TCP brings all of them.
  const big = await p.forward(query("big.fwd.test"));
  assert.ok(big);
  assert.equal(big.readUInt16BE(2) & 0x0200, 0);
  assert.equal(dnsPacket.decode(big).answers?.length, 60);
});

test("failover: a refused upstream is skipped at once; marked down after max_fails; health checks bring it back", async () => {
  const upstream = await upstreamServer();
  const goodPort = upstream.listeners[0]?.port ?? 0;
  // A port with nothing listening: take a free one and release it.
  const probe = createSocket("udp4");
  await new Promise<void>((r) => probe.bind(0, "127.0.0.1", r));
  const deadPort = probe.address().port;
  await new Promise<void>((r) => probe.close(r));
  const p = pool(
    forwardConfig({
      to: [
        { address: "127.0.0.1", port: deadPort },
        { address: "127.0.0.1", port: goodPort },
      ],
      maxFails: 2,
    }),
  );
  const [dead] = p.upstreams;
  assert.ok(dead);
  for (let i = 0; i < 2; i++) {
    const answer = await p.forward(query("small.fwd.test"));
    assert.equal(answer && dataOf<string>(dnsPacket.decode(answer).answers, 0), "10.9.1.1");
  }
  assert.ok(dead.down, "down after 2 failures");
  assert.equal(p.order()[0]?.address.port, goodPort);
  // Something starts answering on the dead port: the health checks notice.
  const { config } = parseDnsConfig(
    `fwd.test:${deadPort} {\n  hosts {\n    10.9.2.2 small.fwd.test\n  }\n}\n`,
    "revived.conf",
  );
  const revived = await startDnsServer(config);
  cleanups.push(() => revived.close());
  for (let i = 0; i < 50 && dead.fails > 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(dead.fails, 0);
  assert.equal(p.order()[0]?.address.port, deadPort);
});

test("failover on rcodes: a REFUSED answer sends the query to the next upstream", async () => {
  const upstream = await upstreamServer();
  const port = upstream.listeners[0]?.port ?? 0;
  // The first upstream serves another zone only: it answers REFUSED for fwd.test.
  const { config } = parseDnsConfig(
    "other.test:0 {\n  hosts {\n    10.8.0.1 x.other.test\n  }\n}\n",
    "other.conf",
  );
  const refusing = await startDnsServer(config);
  cleanups.push(() => refusing.close());
  const to = [
    { address: "127.0.0.1", port: refusing.listeners[0]?.port ?? 0 },
    { address: "127.0.0.1", port },
  ];
  const plain = await pool(forwardConfig({ to })).forward(query("small.fwd.test"));
  assert.equal(plain && plain.readUInt16BE(2) & 0xf, 5, "without failover the REFUSED answer is final");
  const failing = await pool(forwardConfig({ to, failoverRcodes: [5] })).forward(query("small.fwd.test"));
  assert.ok(failing);
  assert.equal(dataOf<string>(dnsPacket.decode(failing).answers, 0), "10.9.1.1");
  const alone = await pool(forwardConfig({ to: to.slice(0, 1), failoverRcodes: [5] })).forward(
    query("small.fwd.test"),
  );
  assert.equal(alone && alone.readUInt16BE(2) & 0xf, 5, "no better answer: the last one is returned");
});

test("a silent upstream: no answer means undefined (SERVFAIL) once the deadline passes", async () => {
  const silent = createSocket("udp4");
  cleanups.push(() => new Promise<void>((r) => silent.close(() => r())));
  await new Promise<void>((r) => silent.bind(0, "127.0.0.1", r));
  const p = pool(
    forwardConfig({ to: [{ address: "127.0.0.1", port: silent.address().port }], timeoutMs: 300 }),
  );
  assert.equal(await p.forward(query("small.fwd.test", true)), undefined);
  assert.equal(p.upstreams[0]?.fails, 1);
});
