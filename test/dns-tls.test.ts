// DNS over TLS between two real podnet DNS servers on loopback (and inside a network namespace made
// here): server A serves a zone on a tls:// listener with a certificate from podnet's PKI, server B
// forwards the zone to A over TLS and verifies A by name against the CA. Real TLS handshakes, real
// certificates, dig as an independent client. Every server is closed and every namespace removed in
// `after`, also when a test fails.
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";
import dnsPacket from "dns-packet";
import { InvalidInputError } from "../src/api/diagnostics.js";
import { parseDnsConfig } from "../src/dns/server/config.js";
import { type DnsServerHandle, type DnsServerOptions, startDnsServer } from "../src/dns/server/server.js";
import { createCa, issueCertificate } from "../src/pki/certificates.js";
import { writeDnsCertificates, writePemPair } from "../src/pki/files.js";

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), `podnet-dot-${randomBytes(3).toString("hex")}-`));
const handles: DnsServerHandle[] = [];
const namespaces: string[] = [];
const children: ChildProcess[] = [];

after(async () => {
  for (const child of children) if (child.exitCode === null && child.pid) process.kill(child.pid, "SIGKILL");
  await Promise.all(handles.map((h) => h.close()));
  for (const ns of namespaces) spawnSync("ip", ["netns", "del", ns]);
  rmSync(dir, { recursive: true, force: true });
});

// The PKI: our CA with A's server certificate (name and loopback IP) and B's client certificate, and a
// certificate for the same name from another CA (an impostor).
const pki = (async () => {
  const ours = await writeDnsCertificates({
    dir: join(dir, "pki"),
    name: "dns.remote.test",
    ipAddresses: ["127.0.0.1"],
    clients: ["forwarder"],
  });
  const otherCa = await createCa({ commonName: "other CA" });
  writePemPair(
    join(dir, "other"),
    "dns.remote.test",
    await issueCertificate(otherCa, {
      commonName: "dns.remote.test",
      dnsNames: ["dns.remote.test"],
      ipAddresses: ["127.0.0.1"],
      usage: "server",
    }),
  );
  return ours;
})();

interface Started {
  handle: DnsServerHandle;
  port: number;
  logs: string[];
}

/** Writes the Corefile into the test directory (relative certificate paths start there) and starts it. */
async function start(text: string, name: string, extra: DnsServerOptions = {}): Promise<Started> {
  await pki;
  const file = join(dir, name);
  writeFileSync(file, text);
  const { config, diagnostics } = parseDnsConfig(text, file);
  assert.deepEqual(diagnostics, []);
  const logs: string[] = [];
  const handle = await startDnsServer(config, { log: (m) => logs.push(m), ...extra });
  handles.push(handle);
  return { handle, port: handle.listeners[0]?.port as number, logs };
}

/** Server A: DNS over TLS for remote.test with A's certificate (client_auth as given). */
function serverA(
  name: string,
  clientAuth = "nocert",
  cert = "pki/dns.remote.test",
  extra: DnsServerOptions = {},
) {
  return start(
    `tls://remote.test:0 {
    tls ${cert}.pem ${cert}-key.pem pki/ca.pem {
        client_auth ${clientAuth}
    }
    hosts {
        10.9.0.1 www.remote.test
        10.9.0.2 db.remote.test
    }
}
`,
    name,
    extra,
  );
}

/** Server B: plain DNS, forwarding remote.test to A over TLS. */
function serverB(name: string, portA: number, options: string, extra: DnsServerOptions = {}) {
  return start(
    `.:0 {
    forward remote.test tls://127.0.0.1:${portA} {
${options
  .split("\n")
  .map((l) => `        ${l}`)
  .join("\n")}
        timeout 1s
        max_fails 0
    }
}
`,
    name,
    extra,
  );
}

async function dig(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run("dig", ["@127.0.0.1", "-p", String(port), "+time=4", "+tries=1", ...args], {
    timeout: 20_000,
    cwd: dir,
  });
  return stdout;
}

const status = (out: string) => /status: (\w+)/.exec(out)?.[1];
const addresses = (out: string) => [...out.matchAll(/\tIN\tA\t(\S+)$/gm)].map((m) => m[1]);

/** A metric's value from the text format (0 when absent). */
function metric(handle: DnsServerHandle, name: string): number {
  const line = handle
    .renderMetrics()
    .split("\n")
    .find((l) => l.startsWith(`${name}{`));
  return line ? Number(line.split(" ").pop()) : 0;
}

/** Many queries at once over UDP to B (they share B's one TLS connection to A). */
async function queryMany(port: number, names: string[]): Promise<string[]> {
  const socket = createSocket("udp4");
  await new Promise<void>((r) => socket.bind(0, "127.0.0.1", r));
  try {
    const answers = new Map<number, string>();
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${answers.size}/${names.length} answered`)), 10_000);
      socket.on("message", (msg) => {
        const decoded = dnsPacket.decode(msg) as dnsPacket.DecodedPacket & { rcode: string };
        const a = decoded.answers?.find((r) => r.type === "A") as { data: string } | undefined;
        answers.set(decoded.id ?? -1, `${decoded.rcode} ${a ? String(a.data) : "-"}`);
        if (answers.size === names.length) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    for (const [id, name] of names.entries())
      socket.send(
        dnsPacket.encode({
          type: "query",
          id,
          flags: dnsPacket.RECURSION_DESIRED,
          questions: [{ type: "A", name }],
        }),
        port,
        "127.0.0.1",
      );
    await done;
    return names.map((_, id) => answers.get(id) as string);
  } finally {
    socket.close();
  }
}

test("forward over TLS: answers, verified by name against the CA, one connection for many queries", async () => {
  const a = await serverA("a.conf");
  const b = await serverB("b.conf", a.port, "tls pki/ca.pem\ntls_servername dns.remote.test");
  const first = await dig(b.port, "www.remote.test");
  assert.equal(status(first), "NOERROR");
  assert.deepEqual(addresses(first), ["10.9.0.1"]);
  for (let i = 0; i < 4; i++) assert.deepEqual(addresses(await dig(b.port, "db.remote.test")), ["10.9.0.2"]);
  // Pipelined: 40 queries in flight at once on the same connection.
  const many = await queryMany(
    b.port,
    Array.from({ length: 40 }, (_, i) => (i % 2 ? "www.remote.test" : "db.remote.test")),
  );
  for (const [i, answer] of many.entries())
    assert.equal(answer, i % 2 ? "NOERROR 10.9.0.1" : "NOERROR 10.9.0.2");
  // One handshake on A's side, one connection on B's: no handshake per query.
  assert.equal(metric(a.handle, "podnet_dns_tls_handshakes_total"), 1);
  assert.equal(metric(b.handle, "podnet_dns_forward_tls_connections_total"), 1);
  assert.equal(metric(b.handle, "podnet_dns_forward_requests_total"), 45);
  assert.match(
    a.handle.renderMetrics(),
    /podnet_dns_requests_total\{server="tls:\/\/127\.0\.0\.1:\d+",zone="remote\.test",proto="tcp",type="A"\} 45/,
  );
  assert.deepEqual(a.logs, []);
  assert.deepEqual(b.logs, []);

  // A restarts on the same port: B's connection is gone, the next query opens a new one.
  await a.handle.close();
  const again = await start(
    `tls://remote.test:${a.port} {\n    tls pki/dns.remote.test.pem pki/dns.remote.test-key.pem\n    hosts {\n        10.9.0.3 www.remote.test\n    }\n}\n`,
    "a-again.conf",
  );
  assert.deepEqual(addresses(await dig(b.port, "www.remote.test")), ["10.9.0.3"]);
  assert.equal(metric(b.handle, "podnet_dns_forward_tls_connections_total"), 2);
  assert.equal(metric(again.handle, "podnet_dns_tls_handshakes_total"), 1);
});

test("verified against the upstream's IP address when there is no tls_servername", async () => {
  const a = await serverA("a-ip.conf");
  const b = await serverB("b-ip.conf", a.port, "tls pki/ca.pem");
  assert.deepEqual(addresses(await dig(b.port, "www.remote.test")), ["10.9.0.1"]);
});

test("a wrong tls_servername fails closed: SERVFAIL and one log line naming upstream, name and reason", async () => {
  const a = await serverA("a-name.conf");
  const b = await serverB("b-name.conf", a.port, "tls pki/ca.pem\ntls_servername dns.elsewhere.test");
  for (let i = 0; i < 3; i++) assert.equal(status(await dig(b.port, "www.remote.test")), "SERVFAIL");
  const rejected = b.logs.filter((l) => l.includes("certificate rejected"));
  assert.equal(rejected.length, 1, b.logs.join("\n"));
  assert.match(
    rejected[0] as string,
    new RegExp(
      `^forward remote\\.test: tls://127\\.0\\.0\\.1:${a.port}: certificate rejected: Hostname/IP does not match certificate's altnames: .*DNS:dns\\.remote\\.test.* \\(tls_servername dns\\.elsewhere\\.test\\)$`,
    ),
  );
  // A never answered a query: nothing was sent over the unverified connection.
  assert.equal(metric(a.handle, "podnet_dns_requests_total"), 0);
  assert.equal(metric(a.handle, "podnet_dns_tls_handshakes_total"), 0);
});

test("a certificate from another CA fails closed: SERVFAIL and the log line names the CA", async () => {
  const impostor = await serverA("a-other.conf", "nocert", "other/dns.remote.test");
  const b = await serverB("b-other.conf", impostor.port, "tls pki/ca.pem\ntls_servername dns.remote.test");
  for (let i = 0; i < 3; i++) assert.equal(status(await dig(b.port, "www.remote.test")), "SERVFAIL");
  const rejected = b.logs.filter((l) => l.includes("certificate rejected"));
  assert.equal(rejected.length, 1, b.logs.join("\n"));
  assert.match(
    rejected[0] as string,
    new RegExp(
      `^forward remote\\.test: tls://127\\.0\\.0\\.1:${impostor.port}: certificate rejected: (unable to verify the first certificate|unable to get local issuer certificate|self-signed certificate in certificate chain) \\(CA pki/ca\\.pem\\)$`,
    ),
  );
  assert.equal(metric(impostor.handle, "podnet_dns_requests_total"), 0);
});

test("mutual TLS (client_auth require_and_verify): without a client certificate SERVFAIL and A logs it; with one, answers", async () => {
  const a = await serverA("a-mtls.conf", "require_and_verify");
  const without = await serverB("b-nocert.conf", a.port, "tls pki/ca.pem\ntls_servername dns.remote.test");
  assert.equal(status(await dig(without.port, "www.remote.test")), "SERVFAIL");
  assert.equal(status(await dig(without.port, "www.remote.test")), "SERVFAIL");
  const handshakeLogs = a.logs.filter((l) => l.startsWith("tls handshake from"));
  assert.equal(handshakeLogs.length, 1, a.logs.join("\n"));
  assert.match(
    handshakeLogs[0] as string,
    /^tls handshake from 127\.0\.0\.1:\d+ on tls:\/\/127\.0\.0\.1:\d+ failed: client certificate required \(client_auth require_and_verify\)$/,
  );
  assert.ok(metric(a.handle, "podnet_dns_tls_handshake_failures_total") >= 2);
  assert.equal(metric(a.handle, "podnet_dns_requests_total"), 0);
  assert.equal(
    without.logs.filter((l) =>
      /: the upstream closed the connection before answering \(does it require a client certificate\? give one with tls CERT KEY CA\)$/.test(
        l,
      ),
    ).length,
    1,
    without.logs.join("\n"),
  );

  const withCert = await serverB(
    "b-cert.conf",
    a.port,
    "tls pki/forwarder.pem pki/forwarder-key.pem pki/ca.pem\ntls_servername dns.remote.test",
  );
  assert.deepEqual(addresses(await dig(withCert.port, "www.remote.test")), ["10.9.0.1"]);
  assert.deepEqual(addresses(await dig(withCert.port, "db.remote.test")), ["10.9.0.2"]);
  assert.equal(metric(a.handle, "podnet_dns_tls_handshakes_total"), 1);

  // A client certificate from another CA is refused too.
  writePemPair(
    join(dir, "other"),
    "forwarder",
    await issueCertificate(await createCa({ commonName: "rogue CA" }), {
      commonName: "forwarder",
      usage: "client",
    }),
  );
  const rogue = await serverB(
    "b-rogue.conf",
    a.port,
    "tls other/forwarder.pem other/forwarder-key.pem pki/ca.pem\ntls_servername dns.remote.test",
  );
  assert.equal(status(await dig(rogue.port, "www.remote.test")), "SERVFAIL");
  assert.ok(
    a.logs.some((l) =>
      /failed: client certificate rejected: (unable to verify the first certificate|unable to get local issuer certificate) \(CA pki\/ca\.pem\) \(client_auth require_and_verify\)$/.test(
        l,
      ),
    ),
    a.logs.join("\n"),
  );
});

test("dig +tls against the DoT listener", {
  skip: !/\+\[no\]tls\b/.test(spawnSync("dig", ["-h"]).stdout.toString()),
}, async () => {
  const a = await serverA("a-dig.conf");
  const out = await dig(
    a.port,
    "+tls",
    "+tls-ca=pki/ca.pem",
    "+tls-hostname=dns.remote.test",
    "www.remote.test",
  );
  assert.equal(status(out), "NOERROR");
  assert.deepEqual(addresses(out), ["10.9.0.1"]);
  // Plain DNS over TCP to the TLS port is a failed handshake, not an answer.
  await assert.rejects(dig(a.port, "+tcp", "www.remote.test"));
  assert.ok(
    a.logs.some((l) => /failed: /.test(l)),
    a.logs.join("\n"),
  );
});

test("certificate problems stop the start with file:line", async () => {
  await pki;
  const file = join(dir, "bad.conf");
  const attempt = async (text: string) => {
    const { config, diagnostics } = parseDnsConfig(text, file);
    assert.deepEqual(diagnostics, []);
    try {
      const handle = await startDnsServer(config, { log: () => {} });
      handles.push(handle);
    } catch (e) {
      assert.ok(e instanceof InvalidInputError, String(e));
      for (const d of e.diagnostics) assert.equal(d.source?.file, file);
      return e.diagnostics.map((d) => `${d.source?.line}: ${d.message}`);
    }
    assert.fail("the server started");
  };
  assert.deepEqual(await attempt("tls://.:0 {\n  tls missing.pem pki/ca-key.pem\n}\n"), [
    "2: cannot read the certificate missing.pem: ENOENT",
  ]);
  assert.deepEqual(await attempt("tls://.:0 {\n  tls pki/ca.pem pki/forwarder-key.pem\n}\n"), [
    "2: the key pki/forwarder-key.pem is not the key of the certificate pki/ca.pem",
  ]);
  const notCa = await attempt(
    ".:0 {\n  forward . tls://127.0.0.1 {\n    tls pki/forwarder-key.pem\n  }\n}\n",
  );
  assert.equal(notCa.length, 1);
  assert.match(
    notCa[0] as string,
    /^3: the CA certificate pki\/forwarder-key.pem holds no readable certificate/,
  );
});

test("inside a network namespace: the DoT listener and the TLS upstream connection are made there", async () => {
  const ns = `pdot${randomBytes(3).toString("hex")}`;
  assert.equal(spawnSync("ip", ["netns", "add", ns]).status, 0);
  namespaces.push(ns);
  assert.equal(spawnSync("ip", ["-n", ns, "link", "set", "lo", "up"]).status, 0);
  const netns = `/run/netns/${ns}`;
  const a = await serverA("a-ns.conf", "require_and_verify", "pki/dns.remote.test", { netns });
  const b = await serverB(
    "b-ns.conf",
    a.port,
    "tls pki/forwarder.pem pki/forwarder-key.pem pki/ca.pem\ntls_servername dns.remote.test",
    { netns },
  );
  const { stdout } = await run(
    "ip",
    [
      "netns",
      "exec",
      ns,
      "dig",
      "@127.0.0.1",
      "-p",
      String(b.port),
      "+time=4",
      "+tries=1",
      "www.remote.test",
    ],
    { timeout: 20_000 },
  );
  assert.deepEqual(addresses(stdout), ["10.9.0.1"]);
  assert.equal(metric(a.handle, "podnet_dns_tls_handshakes_total"), 1);
  // Nothing listens on A's port in this (the root) namespace: the listener is in the pod's.
  await assert.rejects(
    dig(a.port, "+tls", "+tls-ca=pki/ca.pem", "+tls-hostname=dns.remote.test", "www.remote.test"),
  );
});

test("client_auth require takes any client certificate; verify_if_given verifies one when given", async () => {
  const rogueCa = await createCa({ commonName: "rogue CA 2" });
  writePemPair(
    join(dir, "other"),
    "any-client",
    await issueCertificate(rogueCa, { commonName: "any-client", usage: "client" }),
  );
  const forwards = {
    none: "tls pki/ca.pem\ntls_servername dns.remote.test",
    rogue: "tls other/any-client.pem other/any-client-key.pem pki/ca.pem\ntls_servername dns.remote.test",
    ours: "tls pki/forwarder.pem pki/forwarder-key.pem pki/ca.pem\ntls_servername dns.remote.test",
  };
  const expect = {
    require: { none: "SERVFAIL", rogue: "NOERROR", ours: "NOERROR" },
    verify_if_given: { none: "NOERROR", rogue: "SERVFAIL", ours: "NOERROR" },
    request: { none: "NOERROR", rogue: "NOERROR", ours: "NOERROR" },
  };
  for (const [mode, outcomes] of Object.entries(expect)) {
    const a = await serverA(`a-${mode}.conf`, mode);
    for (const [client, wanted] of Object.entries(outcomes)) {
      const b = await serverB(`b-${mode}-${client}.conf`, a.port, forwards[client as keyof typeof forwards]);
      assert.equal(
        status(await dig(b.port, "www.remote.test")),
        wanted,
        `${mode} with client cert ${client}`,
      );
    }
  }
});

test("podnet dns certs, then podnet dns serve with a tls:// block, queried with dig +tls", async () => {
  const cli = join(process.cwd(), "dist/src/cli/main.js");
  const out = join(dir, "cli-pki");
  const first = await run(process.execPath, [
    cli,
    "dns",
    "certs",
    "--out",
    out,
    "--name",
    "dns.cli.test",
    "--ip",
    "127.0.0.1",
    "--client",
    "c1",
  ]);
  assert.match(
    first.stdout,
    /^created CA .*ca\.pem\nwrote .*dns\.cli\.test\.pem and .*dns\.cli\.test-key\.pem\nwrote .*c1\.pem/,
  );
  const second = await run(process.execPath, [cli, "dns", "certs", "--out", out, "--name", "dns2.cli.test"]);
  assert.match(second.stdout, /^kept CA /);
  const bad = await run(process.execPath, [
    cli,
    "dns",
    "certs",
    "--out",
    out,
    "--name",
    "x",
    "--ip",
    "300.1.1.1",
  ]).then(
    () => assert.fail("a bad address must fail"),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /"300\.1\.1\.1" is not an IP address\n {4}fix: /);

  const conf = join(out, "Corefile");
  writeFileSync(
    conf,
    "tls://cli.test:0 {\n  tls dns.cli.test.pem dns.cli.test-key.pem\n  hosts {\n    10.5.0.9 www.cli.test\n  }\n}\n",
  );
  const child = spawn(process.execPath, [cli, "dns", "serve", "--config", conf], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  const line = await new Promise<string>((resolve, reject) => {
    let text = "";
    child.stdout?.on("data", (d: Buffer) => {
      text += d.toString();
      if (text.includes("\n")) resolve(text);
    });
    child.once("exit", (code) => reject(new Error(`podnet dns serve exited with ${code}`)));
  });
  const port = Number(/listening on 127\.0\.0\.1 port (\d+) \(DNS over TLS\) for cli\.test/.exec(line)?.[1]);
  assert.ok(port > 0, line);
  const answer = await dig(
    port,
    "+tls",
    `+tls-ca=${join(out, "ca.pem")}`,
    "+tls-hostname=dns.cli.test",
    "www.cli.test",
  );
  assert.deepEqual(addresses(answer), ["10.5.0.9"]);
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  if (child.pid) process.kill(child.pid, "SIGTERM");
  assert.equal(await exited, 0);
});
