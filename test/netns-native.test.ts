// The netns addon, the workload responder and probes on real namespaces: two namespaces joined by a veth
// pair, responders held by this test process inside them, probes started from inside them. Nothing
// listens in the root namespace.
import assert from "node:assert/strict";
import { type ChildProcess, spawnSync } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import { readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import type { Server, Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { probe, probeMany } from "../src/lab/probe.js";
import { ResponderHost } from "../src/lab/responder.js";
import { ipBatch } from "../src/linux/ip.js";
import {
  bindUdp,
  connectTcp,
  listenTcp,
  listenUnixAbstract,
  spawnInNetns,
  withNetns,
} from "../src/linux/netns-native.js";

const prefix = `pnn${randomBytes(3).toString("hex")}`;
const nsA = `${prefix}-a`;
const nsB = `${prefix}-b`;
const A = `/run/netns/${nsA}`;
const B = `/run/netns/${nsB}`;
const net = `10.250.${randomInt(0, 256)}`;
const ipA = `${net}.1`;
const ipB = `${net}.2`;
const ipB2 = `${net}.3`;
const ip6A = "fd00:250::1";
const ip6B = "fd00:250::2";
const made: string[] = [];

const host = new ResponderHost();
/** The responder pods: "default/web" in A (8080 TCP+UDP, IPv4+IPv6), "same/a" and "same/b" on 7100. */
const WEB_PORT = 8080;
const CLOSED_PORT = 8999;
const CONNECTED = 2000;
const BLOCKED = 300;

function threadNetns(): string {
  return readlinkSync("/proc/thread-self/ns/net");
}

function output(child: ChildProcess): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    let stdout = "";
    child.stdout?.setEncoding("utf8").on("data", (s: string) => {
      stdout += s;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout }));
  });
}

/** Reads `n` lines from a connected socket. */
function readLines(socket: Socket, n: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    let text = "";
    socket.setEncoding("utf8");
    const onData = (chunk: string) => {
      text += chunk;
      const lines = text.split("\n");
      if (lines.length > n) {
        socket.off("data", onData);
        resolve(lines.slice(0, n));
      }
    };
    socket.on("data", onData);
    socket.once("error", reject);
    socket.once("end", () => reject(new Error(`connection ended after ${JSON.stringify(text)}`)));
  });
}

before(async () => {
  await ipBatch([`netns add ${nsA}`, `netns add ${nsB}`]);
  made.push(nsA, nsB);
  await ipBatch([`link add eth0 netns ${A} type veth peer name eth0 netns ${B}`]);
  for (const [path, v4, v6, extra] of [
    [A, ipA, ip6A, []],
    [B, ipB, ip6B, [`addr add ${ipB2}/24 dev eth0`]],
  ] as const) {
    await ipBatch(
      [
        "link set lo up",
        `addr add ${v4}/24 dev eth0`,
        `addr add ${v6}/64 dev eth0 nodad`,
        ...extra,
        "link set eth0 up",
      ],
      { netns: path },
    );
  }
  // ICMP errors are rate-limited per peer (1/s after a burst of 6) and globally: many UDP probes of a
  // closed port would then time out instead of being refused. The lab's pods turn the limit off the same way.
  for (const path of [A, B]) withNetns(path, () => writeFileSync("/proc/sys/net/ipv4/icmp_ratemask", "0"));
  const opened = await host.open({
    key: "web",
    namespace: "default",
    name: "web",
    netnsPath: A,
    ports: [
      { port: WEB_PORT, protocol: "TCP" },
      { port: WEB_PORT, protocol: "UDP" },
      { port: WEB_PORT, protocol: "TCP" },
      { port: 9000, protocol: "SCTP" },
    ],
    families: [4, 6],
  });
  assert.deepEqual(opened.listening, [
    { family: 4, protocol: "TCP", port: WEB_PORT },
    { family: 4, protocol: "UDP", port: WEB_PORT },
    { family: 6, protocol: "TCP", port: WEB_PORT },
    { family: 6, protocol: "UDP", port: WEB_PORT },
  ]);
  assert.equal(opened.skipped.length, 1);
  assert.match(opened.skipped[0] as string, /^SCTP\/9000: .*no SCTP/);
});

after(async () => {
  await host.closeAll();
  for (const ns of made.reverse()) spawnSync("ip", ["netns", "del", ns]);
});

describe("responder and probes between two namespaces", () => {
  test("TCP: the responder answers with the pod and the client address it saw", async () => {
    const r = await probe({ fromNetns: B, host: ipA, port: WEB_PORT, protocol: "TCP", timeoutMs: CONNECTED });
    assert.equal(r.outcome, "connected", r.reason);
    assert.match(r.answer ?? "", new RegExp(`^default/web ${ipB.replaceAll(".", "\\.")}:\\d+$`));
  });

  test("UDP: a datagram is answered the same way", async () => {
    const r = await probe({ fromNetns: B, host: ipA, port: WEB_PORT, protocol: "UDP", timeoutMs: CONNECTED });
    assert.equal(r.outcome, "connected", r.reason);
    assert.match(r.answer ?? "", new RegExp(`^default/web ${ipB.replaceAll(".", "\\.")}:\\d+$`));
  });

  test("IPv6, TCP and UDP: the client is shown as [address]:port", async () => {
    for (const protocol of ["TCP", "UDP"] as const) {
      const r = await probe({ fromNetns: B, host: ip6A, port: WEB_PORT, protocol, timeoutMs: CONNECTED });
      assert.equal(r.outcome, "connected", `${protocol}: ${r.reason}`);
      assert.match(r.answer ?? "", /^default\/web \[fd00:250::2\]:\d+$/, protocol);
    }
  });

  test("TCP: after the first line, every line is echoed back on the same connection", async () => {
    const socket = await connectTcp(B, ipA, WEB_PORT, { timeoutMs: CONNECTED });
    try {
      const [first] = await readLines(socket, 1);
      assert.match(first ?? "", /^default\/web /);
      socket.write("hello\nsecond line\n");
      assert.deepEqual(await readLines(socket, 2), ["echo hello", "echo second line"]);
    } finally {
      socket.destroy();
    }
  });

  test("connectTcp with localAddress connects from that address", async () => {
    const socket = await connectTcp(B, ipA, WEB_PORT, { timeoutMs: CONNECTED, localAddress: ipB2 });
    try {
      assert.equal(socket.localAddress, ipB2);
      const [first] = await readLines(socket, 1);
      assert.match(
        first ?? "",
        new RegExp(`^default/web ${ipB2.replaceAll(".", "\\.")}:${socket.localPort}$`),
      );
    } finally {
      socket.destroy();
    }
  });

  test("a closed port is blocked: refused (TCP RST, UDP ICMP port unreachable)", async () => {
    for (const protocol of ["TCP", "UDP"] as const) {
      const r = await probe({ fromNetns: B, host: ipA, port: CLOSED_PORT, protocol, timeoutMs: CONNECTED });
      assert.deepEqual([r.outcome, r.reason], ["blocked", "refused"], protocol);
      assert.equal(r.answer, undefined);
    }
  });

  test("an unrouted address and an absent neighbour are blocked within the timeout", async () => {
    for (const target of ["10.251.0.1", `${net}.99`]) {
      for (const protocol of ["TCP", "UDP"] as const) {
        const r = await probe({ fromNetns: B, host: target, port: WEB_PORT, protocol, timeoutMs: BLOCKED });
        assert.equal(r.outcome, "blocked", `${protocol} ${target}`);
        assert.ok(["timeout", "unreachable"].includes(r.reason ?? ""), `${protocol} ${target}: ${r.reason}`);
      }
    }
    // No route at all: the kernel says so at once.
    const r = await probe({
      fromNetns: B,
      host: "10.251.0.1",
      port: WEB_PORT,
      protocol: "TCP",
      timeoutMs: BLOCKED,
    });
    assert.equal(r.reason, "unreachable");
  });

  test("localhost: two responders of one pod reach each other via 127.0.0.1", async () => {
    const opened = await host.open({
      key: "local",
      namespace: "default",
      name: "local",
      netnsPath: A,
      ports: [
        { port: 7001, protocol: "TCP" },
        { port: 7002, protocol: "TCP" },
      ],
    });
    assert.deepEqual(opened.skipped, []);
    for (const port of [7001, 7002]) {
      const r = await probe({ fromNetns: A, host: "127.0.0.1", port, protocol: "TCP", timeoutMs: CONNECTED });
      assert.equal(r.outcome, "connected", r.reason);
      assert.match(r.answer ?? "", /^default\/local 127\.0\.0\.1:\d+$/);
    }
    // B has its own loopback, where nothing listens.
    const fromB = await probe({
      fromNetns: B,
      host: "127.0.0.1",
      port: 7001,
      protocol: "TCP",
      timeoutMs: CONNECTED,
    });
    assert.deepEqual([fromB.outcome, fromB.reason], ["blocked", "refused"]);
    await host.close("local");
  });

  test("one process listens on the same port in two namespaces at once", async () => {
    for (const [key, path] of [
      ["a", A],
      ["b", B],
    ] as const) {
      const opened = await host.open({
        key: `same-${key}`,
        namespace: "same",
        name: key,
        netnsPath: path,
        ports: [
          { port: 7100, protocol: "TCP" },
          { port: 7100, protocol: "UDP" },
        ],
      });
      assert.deepEqual(opened.skipped, []);
    }
    for (const protocol of ["TCP", "UDP"] as const) {
      const toA = await probe({ fromNetns: B, host: ipA, port: 7100, protocol, timeoutMs: CONNECTED });
      const toB = await probe({ fromNetns: A, host: ipB, port: 7100, protocol, timeoutMs: CONNECTED });
      assert.match(toA.answer ?? "", new RegExp(`^same/a ${ipB.replaceAll(".", "\\.")}:`), protocol);
      assert.match(toB.answer ?? "", new RegExp(`^same/b ${ipA.replaceAll(".", "\\.")}:`), protocol);
    }
    assert.deepEqual(host.keys().sort(), ["same-a", "same-b", "web"]);
    await host.close("same-a");
    await host.close("same-b");
  });

  test("probeMany: 200 probes, connected and refused, results in order", async () => {
    const specs = Array.from({ length: 200 }, (_, i) => ({
      fromNetns: i % 2 === 0 ? B : A,
      host: i % 2 === 0 ? ipA : "127.0.0.1",
      port: i % 4 < 2 ? WEB_PORT : CLOSED_PORT,
      protocol: i % 3 === 0 ? ("UDP" as const) : ("TCP" as const),
      timeoutMs: CONNECTED,
    }));
    const results = await probeMany(specs, { concurrency: 64 });
    assert.equal(results.length, 200);
    for (const [i, r] of results.entries()) {
      const spec = specs[i] as (typeof specs)[number];
      const what = `#${i} ${spec.protocol} ${spec.host}:${spec.port}`;
      if (spec.port === WEB_PORT) {
        assert.equal(r.outcome, "connected", `${what}: ${r.reason}`);
        const client = spec.fromNetns === B ? ipB : "127.0.0.1";
        assert.match(r.answer ?? "", new RegExp(`^default/web ${client.replaceAll(".", "\\.")}:`), what);
      } else {
        assert.deepEqual([r.outcome, r.reason], ["blocked", "refused"], what);
      }
    }
  });

  test("open is idempotent per pod: adding a port keeps existing connections, removing one closes it", async () => {
    const pod = { key: "idem", namespace: "default", name: "idem", netnsPath: B };
    await host.open({ ...pod, ports: [{ port: 7200, protocol: "TCP" }] });
    const socket = await connectTcp(A, ipB, 7200, { timeoutMs: CONNECTED });
    try {
      await readLines(socket, 1);
      const grown = await host.open({
        ...pod,
        ports: [
          { port: 7200, protocol: "TCP" },
          { port: 7201, protocol: "UDP" },
        ],
      });
      assert.deepEqual(
        grown.listening.map((e) => `${e.protocol}/${e.port}`),
        ["TCP/7200", "UDP/7201"],
      );
      socket.write("still there\n");
      assert.deepEqual(await readLines(socket, 1), ["echo still there"]);
    } finally {
      socket.destroy();
    }
    const shrunk = await host.open({ ...pod, ports: [{ port: 7201, protocol: "UDP" }] });
    assert.deepEqual(host.listening("idem"), shrunk.listening);
    assert.deepEqual(shrunk.listening, [{ family: 4, protocol: "UDP", port: 7201 }]);
    const r = await probe({ fromNetns: A, host: ipB, port: 7200, protocol: "TCP", timeoutMs: CONNECTED });
    assert.deepEqual([r.outcome, r.reason], ["blocked", "refused"]);
    await host.close("idem");
    assert.deepEqual(host.listening("idem"), []);
  });

  test("a port another socket holds is reported, not thrown; close() frees the ports", async () => {
    const taken = await host.open({
      key: "clash",
      namespace: "default",
      name: "clash",
      netnsPath: A,
      ports: [{ port: WEB_PORT, protocol: "TCP" }],
    });
    assert.deepEqual(taken.listening, []);
    assert.match(taken.skipped[0] ?? "", /^TCP\/8080: bind 0\.0\.0\.0:8080 in netns: Address already in use/);
    await host.close("clash");

    await assert.rejects(listenTcp(A, WEB_PORT), { code: "EADDRINUSE" });
    await host.close("web");
    const server = await listenTcp(A, WEB_PORT);
    const udp = await bindUdp(A, WEB_PORT);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    // Open again for the tests that may run after this one.
    await host.open({
      key: "web",
      namespace: "default",
      name: "web",
      netnsPath: A,
      ports: [
        { port: WEB_PORT, protocol: "TCP" },
        { port: WEB_PORT, protocol: "UDP" },
      ],
      families: [4, 6],
    });
  });

  test("a missing namespace rejects instead of reporting ports", async () => {
    await assert.rejects(
      host.open({
        key: "ghost",
        namespace: "default",
        name: "ghost",
        netnsPath: `/run/netns/${prefix}-none`,
        ports: [{ port: 80, protocol: "TCP" }],
      }),
      { code: "ENOENT" },
    );
    assert.ok(!host.keys().includes("ghost"));
    await assert.rejects(
      probe({
        fromNetns: `/run/netns/${prefix}-none`,
        host: ipA,
        port: 80,
        protocol: "TCP",
        timeoutMs: BLOCKED,
      }),
      { code: "ENOENT" },
    );
  });
});

describe("withNetns and spawnInNetns", () => {
  test("spawnInNetns runs a command that sees only that namespace's addresses", async () => {
    const { code, stdout } = await output(
      spawnInNetns(A, "ip", ["-o", "addr"], { stdio: ["ignore", "pipe", "inherit"] }),
    );
    assert.equal(code, 0);
    assert.match(stdout, new RegExp(`inet ${ipA.replaceAll(".", "\\.")}/24`));
    assert.doesNotMatch(stdout, new RegExp(`inet ${ipB.replaceAll(".", "\\.")}/`));
    const devices = new Set(
      stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => l.split(/\s+/)[1]),
    );
    assert.deepEqual([...devices].sort(), ["eth0", "lo"]);
  });

  test("withNetns enters the namespace and returns, also when fn throws; nested calls return to the outer", () => {
    const original = threadNetns();
    const inodeOf = (path: string) => `net:[${statSync(path).ino}]`;
    assert.equal(
      withNetns(A, () => threadNetns()),
      inodeOf(A),
    );
    assert.equal(threadNetns(), original);
    assert.throws(
      () =>
        withNetns(A, () => {
          assert.equal(threadNetns(), inodeOf(A));
          throw new Error("inside");
        }),
      /inside/,
    );
    assert.equal(threadNetns(), original);
    withNetns(A, () => {
      assert.equal(
        withNetns(B, () => threadNetns()),
        inodeOf(B),
      );
      assert.equal(threadNetns(), inodeOf(A));
    });
    assert.equal(threadNetns(), original);
    assert.throws(() => withNetns(`/run/netns/${prefix}-none`, () => 1), { code: "ENOENT" });
    assert.equal(threadNetns(), original);
  });

  test("/proc/sys/net written inside withNetns is that namespace's", () => {
    const key = "/proc/sys/net/ipv4/ip_forward";
    const before = readFileSync(key, "utf8");
    withNetns(A, () => writeFileSync(key, "1"));
    assert.equal(
      withNetns(A, () => readFileSync(key, "utf8").trim()),
      "1",
    );
    assert.equal(
      withNetns(B, () => readFileSync(key, "utf8").trim()),
      "0",
    );
    assert.equal(readFileSync(key, "utf8"), before);
  });

  test("listenUnixAbstract: the socket exists in its namespace only; socat reaches it as the CNI launcher does", async (t) => {
    if (spawnSync("sh", ["-c", "command -v socat"]).status !== 0) return t.skip("socat is not installed");
    const name = `${prefix}-cni`;
    const server: Server = await listenUnixAbstract(A, name);
    server.on("connection", (conn) => conn.end("hello from A\n"));
    try {
      const socat = (path: string) =>
        output(
          spawnInNetns(path, "socat", ["-t", "2", "-", `ABSTRACT-CONNECT:${name},unix-tightsocklen=0`], {
            stdio: ["ignore", "pipe", "ignore"],
          }),
        );
      assert.deepEqual(await socat(A), { code: 0, stdout: "hello from A\n" });
      assert.notEqual((await socat(B)).code, 0);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
