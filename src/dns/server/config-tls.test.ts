// DNS over TLS in the configuration: tls:// server blocks with CoreDNS's `tls` directive, and forward
// to tls:// upstreams with `tls` and `tls_servername`. Every error: file:line, what, how to fix.
import assert from "node:assert/strict";
import { test } from "node:test";
import { formatDiagnostic } from "../../api/diagnostics.js";
import { parseDnsConfig, resolveConfigPath } from "./config.js";

function errorsOf(text: string): string[] {
  return parseDnsConfig(text, "dns.conf").diagnostics.map(formatDiagnostic);
}

function firstLines(text: string): string[] {
  const errors = errorsOf(text);
  for (const e of errors) assert.match(e, /\n {4}fix: \S/, `no hint in: ${e}`);
  return errors.map((e) => e.split("\n")[0] as string);
}

test("a tls:// block with its certificate and client_auth; forward over TLS", () => {
  const { config, diagnostics } = parseDnsConfig(
    `tls://.:8853 tls://remote.test:8853 {
    bind 127.0.0.1
    tls certs/dns.pem certs/dns-key.pem /etc/podnet/ca.pem {
        client_auth require_and_verify
    }
    hosts { 10.0.0.1 a.remote.test }
}
.:1053 {
    forward remote.test tls://10.245.1.3 tls://[fd00::3]:8853 {
        tls client.pem client-key.pem ca.pem
        tls_servername DNS.Remote.Test.
        policy sequential
    }
    forward other.test tls://10.245.1.4 { tls ca.pem }
    forward . 10.0.0.1
}
`,
    "/etc/podnet/Corefile",
  );
  assert.deepEqual(diagnostics, []);
  const [dot, plain] = config.servers;
  assert.equal(dot?.transport, "tls");
  assert.equal(dot?.port, 8853);
  assert.deepEqual(dot?.zones, [".", "remote.test"]);
  assert.deepEqual(dot?.tls, {
    cert: "certs/dns.pem",
    key: "certs/dns-key.pem",
    ca: "/etc/podnet/ca.pem",
    clientAuth: "require_and_verify",
    line: 3,
  });
  assert.equal(plain?.transport, "dns");
  assert.equal(plain?.tls, undefined);
  const [remote, other, rest] = plain?.forwards ?? [];
  assert.equal(remote?.transport, "tls");
  assert.deepEqual(remote?.to, [
    { address: "10.245.1.3", port: 853 },
    { address: "fd00::3", port: 8853 },
  ]);
  assert.deepEqual(remote?.tls, {
    cert: "client.pem",
    key: "client-key.pem",
    ca: "ca.pem",
    serverName: "dns.remote.test",
    line: 10,
  });
  assert.deepEqual(other?.tls, { ca: "ca.pem", line: 14 });
  assert.equal(rest?.transport, "dns");
  assert.equal(rest?.tls, undefined);
  assert.equal(resolveConfigPath("/etc/podnet/Corefile", "certs/dns.pem"), "/etc/podnet/certs/dns.pem");
  assert.equal(resolveConfigPath("/etc/podnet/Corefile", "/abs/ca.pem"), "/abs/ca.pem");
});

test("defaults: tls:// listens on 853, client_auth nocert, forward over TLS without tls options", () => {
  const { config, diagnostics } = parseDnsConfig(
    "tls://. {\n  tls a.pem a-key.pem\n}\n.:53 {\n  forward . tls://10.0.0.1\n}\n",
    "x",
  );
  assert.deepEqual(diagnostics, []);
  assert.equal(config.servers[0]?.port, 853);
  assert.deepEqual(config.servers[0]?.tls, {
    cert: "a.pem",
    key: "a-key.pem",
    clientAuth: "nocert",
    line: 2,
  });
  assert.deepEqual(config.servers[1]?.forwards[0]?.tls, { line: 5 });
  assert.deepEqual(config.servers[1]?.forwards[0]?.to, [{ address: "10.0.0.1", port: 853 }]);
});

test("tls errors in server blocks", () => {
  assert.deepEqual(firstLines("tls://.:853 {\n  forward . 10.0.0.1\n}\n"), [
    "dns.conf:1: error: server block tls://.:853 serves DNS over TLS but has no certificate",
  ]);
  assert.deepEqual(firstLines(".:53 {\n  tls a.pem a-key.pem\n}\n"), [
    "dns.conf:2: error: tls in a server block that serves plain DNS",
  ]);
  assert.deepEqual(firstLines("tls://.:853 {\n  tls a.pem\n}\n"), [
    "dns.conf:2: error: tls needs a certificate and a key, and takes an optional CA (1 file given)",
  ]);
  assert.deepEqual(firstLines("tls://.:853 {\n  tls a.pem b.pem c.pem d.pem\n}\n"), [
    "dns.conf:2: error: tls needs a certificate and a key, and takes an optional CA (4 files given)",
  ]);
  assert.deepEqual(firstLines("tls://.:853 {\n  tls a.pem b.pem c.pem {\n    client_auth always\n  }\n}\n"), [
    'dns.conf:3: error: client_auth "always" is not a client_auth mode',
  ]);
  assert.deepEqual(firstLines("tls://.:853 {\n  tls a.pem b.pem {\n    verify yes\n  }\n}\n"), [
    'dns.conf:3: error: unknown tls option "verify"',
  ]);
  assert.deepEqual(firstLines("tls://.:853 {\n  tls a.pem b.pem\n  tls c.pem d.pem\n}\n"), [
    "dns.conf:3: error: tls is given twice in this server block",
  ]);
  assert.deepEqual(firstLines("tls://a.test:853 b.test:853 {\n  tls a.pem b.pem\n}\n"), [
    "dns.conf:1: error: server block keys mix tls:// and plain DNS",
  ]);
  assert.deepEqual(firstLines("https://.:443 {\n}\n"), [
    'dns.conf:1: error: "https://.:443" is not a server block key',
  ]);
  assert.deepEqual(
    firstLines(".:853 {\n  forward . 10.0.0.1\n}\ntls://a.test:853 {\n  tls a.pem b.pem\n}\n"),
    ["dns.conf:4: error: port 853 serves DNS over TLS here and plain DNS in the block at line 1"],
  );
  // Two transports on one port are fine on different addresses.
  assert.deepEqual(
    errorsOf(".:853 {\n  bind 127.0.0.1\n}\ntls://.:853 {\n  bind 127.0.0.2\n  tls a.pem b.pem\n}\n"),
    [],
  );
});

test("tls errors in forward", () => {
  assert.deepEqual(firstLines(".:53 {\n  forward . tls://10.0.0.1 10.0.0.2\n}\n"), [
    "dns.conf:2: error: forward mixes DNS over TLS (tls://10.0.0.1) and plain DNS (10.0.0.2) upstreams",
  ]);
  assert.deepEqual(firstLines(".:53 {\n  forward . 10.0.0.1 {\n    tls ca.pem\n  }\n}\n"), [
    "dns.conf:3: error: tls applies to DNS over TLS upstreams only, and this forward has none",
  ]);
  assert.deepEqual(firstLines(".:53 {\n  forward . 10.0.0.1 {\n    tls_servername dns.test\n  }\n}\n"), [
    "dns.conf:3: error: tls_servername applies to DNS over TLS upstreams only, and this forward has none",
  ]);
  assert.deepEqual(firstLines(".:53 {\n  forward . tls://10.0.0.1 {\n    tls a b c d\n  }\n}\n"), [
    "dns.conf:3: error: tls takes at most 3 files, not 4",
  ]);
  assert.deepEqual(firstLines(".:53 {\n  forward . tls://10.0.0.1 {\n    tls a\n    tls b\n  }\n}\n"), [
    "dns.conf:4: error: tls is given twice in this forward (line 3)",
  ]);
  assert.deepEqual(firstLines(".:53 {\n  forward . tls://10.0.0.1 {\n    tls_servername a b\n  }\n}\n"), [
    'dns.conf:3: error: tls_servername "a b" is not one DNS name',
  ]);
  assert.deepEqual(
    firstLines(".:53 {\n  forward . tls://10.0.0.1 {\n    tls_servername 10.0.0.1\n  }\n}\n"),
    ['dns.conf:3: error: tls_servername "10.0.0.1" is not one DNS name'],
  );
  assert.deepEqual(firstLines(".:53 {\n  forward . tls://dns.test https://10.0.0.1\n}\n"), [
    'dns.conf:2: error: "tls://dns.test" is not an upstream address',
    'dns.conf:2: error: "https://10.0.0.1" is not an upstream address',
  ]);
});
