// The certificates are checked with Node's own X.509 code (an independent decoder and verifier), and
// used in a real TLS handshake on loopback.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { connect, createServer } from "node:tls";
import { createCa, issueCertificate, PkiError } from "./certificates.js";
import { ensureCa, writeDnsCertificates } from "./files.js";

const dir = mkdtempSync(join(tmpdir(), "podnet-pki-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const caPromise = createCa({ commonName: "test CA", validDays: 30 });

test("a CA is a self-signed P-256 CA certificate with its PKCS#8 key", async () => {
  const ca = await caPromise;
  const cert = new X509Certificate(ca.certPem);
  assert.equal(cert.subject, "CN=test CA");
  assert.equal(cert.issuer, "CN=test CA");
  assert.equal(cert.ca, true);
  assert.equal(cert.publicKey.asymmetricKeyType, "ec");
  assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
  assert.ok(cert.verify(cert.publicKey));
  assert.match(ca.keyPem, /^-----BEGIN PRIVATE KEY-----/);
  assert.ok(cert.checkPrivateKey((await import("node:crypto")).createPrivateKey(ca.keyPem)));
  const days = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000;
  assert.ok(days > 30 && days < 31, `validity ${days} days`);
});

test("a server certificate has its SANs, usage, issuer, and verifies with the CA", async () => {
  const ca = await caPromise;
  const leaf = await issueCertificate(ca, {
    commonName: "dns.remote.test",
    dnsNames: ["dns.remote.test", "*.svc.remote.test"],
    ipAddresses: ["10.245.1.3", "fd00::53"],
    usage: "server",
  });
  const cert = new X509Certificate(leaf.certPem);
  const caCert = new X509Certificate(ca.certPem);
  assert.equal(cert.subject, "CN=dns.remote.test");
  assert.equal(cert.issuer, "CN=test CA");
  assert.equal(cert.ca, false);
  assert.ok(cert.checkIssued(caCert));
  assert.ok(cert.verify(caCert.publicKey));
  assert.equal(
    cert.subjectAltName,
    "DNS:dns.remote.test, DNS:*.svc.remote.test, IP Address:10.245.1.3, IP Address:FD00:0:0:0:0:0:0:53",
  );
  assert.deepEqual(cert.keyUsage, ["1.3.6.1.5.5.7.3.1"]);
  assert.equal(cert.checkHost("dns.remote.test"), "dns.remote.test");
  assert.equal(cert.checkHost("x.svc.remote.test"), "*.svc.remote.test"); // the SAN that matched
  assert.equal(cert.checkHost("other.test"), undefined);
  assert.equal(cert.checkIP("10.245.1.3"), "10.245.1.3");
  // Another CA did not issue it.
  const other = new X509Certificate((await createCa({ commonName: "other CA" })).certPem);
  assert.equal(cert.checkIssued(other), false);
  assert.equal(cert.verify(other.publicKey), false);
});

test("client and both usages", async () => {
  const ca = await caPromise;
  const client = new X509Certificate(
    (await issueCertificate(ca, { commonName: "fwd", usage: "client" })).certPem,
  );
  assert.deepEqual(client.keyUsage, ["1.3.6.1.5.5.7.3.2"]);
  assert.equal(client.subjectAltName, undefined);
  const both = await issueCertificate(ca, { commonName: "b", dnsNames: ["b.test"], usage: "both" });
  assert.deepEqual(new X509Certificate(both.certPem).keyUsage?.sort(), [
    "1.3.6.1.5.5.7.3.1",
    "1.3.6.1.5.5.7.3.2",
  ]);
});

test("bad input is refused with what and how to fix it", async () => {
  const ca = await caPromise;
  const refuses = (options: Parameters<typeof issueCertificate>[1], message: RegExp) =>
    assert.rejects(issueCertificate(ca, options), (e: unknown) => {
      assert.ok(e instanceof PkiError);
      assert.match(e.message, message);
      assert.ok(e.hint.length > 0);
      return true;
    });
  await refuses({ commonName: "s", usage: "server" }, /has no DNS name or IP address/);
  await refuses({ commonName: "s", dnsNames: ["bad name"], usage: "server" }, /"bad name" is not a DNS name/);
  await refuses({ commonName: "s", ipAddresses: ["10.0.0.300"], usage: "server" }, /is not an IP address/);
  await refuses({ commonName: "", usage: "client" }, /must have 1 to 64 characters/);
  await refuses({ commonName: "s", usage: "client", validDays: 0 }, /is not a whole number/);
  await assert.rejects(
    issueCertificate({ certPem: ca.certPem, keyPem: "junk" }, { commonName: "c", usage: "client" }),
    /the CA key cannot be read/,
  );
});

test("certificates work in a TLS handshake with mutual authentication", async () => {
  const ca = await caPromise;
  const server = await issueCertificate(ca, { commonName: "srv", dnsNames: ["srv.test"], usage: "server" });
  const client = await issueCertificate(ca, { commonName: "cli", usage: "client" });
  const tlsServer = createServer({
    cert: server.certPem,
    key: server.keyPem,
    ca: ca.certPem,
    requestCert: true,
    rejectUnauthorized: true,
  });
  const peer = new Promise<string>((resolve) =>
    tlsServer.once("secureConnection", (s) => {
      resolve(String(s.getPeerCertificate().subject.CN));
      s.end();
    }),
  );
  await new Promise<void>((r) => tlsServer.listen(0, "127.0.0.1", r));
  const port = (tlsServer.address() as { port: number }).port;
  try {
    const socket = connect({
      host: "127.0.0.1",
      port,
      servername: "srv.test",
      ca: ca.certPem,
      cert: client.certPem,
      key: client.keyPem,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", resolve);
      socket.once("error", reject);
    });
    assert.equal(socket.authorized, true);
    assert.equal(await peer, "cli");
    socket.destroy();
  } finally {
    await new Promise((r) => tlsServer.close(r));
  }
});

test("files: keys 0600, the CA kept on a second run unless forced", async () => {
  const out = join(dir, "certs");
  const first = await writeDnsCertificates({
    dir: out,
    name: "dns.remote.test",
    ipAddresses: ["10.245.1.3"],
    clients: ["forwarder"],
  });
  assert.equal(first.caCreated, true);
  assert.equal(statSync(join(out, "ca-key.pem")).mode & 0o777, 0o600);
  assert.equal(statSync(first.server.keyPath).mode & 0o777, 0o600);
  assert.equal(statSync(first.clients[0]?.keyPath as string).mode & 0o777, 0o600);
  assert.equal(statSync(first.server.certPath).mode & 0o777, 0o644);
  const caPem = readFileSync(join(out, "ca.pem"), "utf8");
  const server = new X509Certificate(readFileSync(join(out, "dns.remote.test.pem")));
  assert.equal(server.subjectAltName, "DNS:dns.remote.test, IP Address:10.245.1.3");
  assert.ok(server.checkIssued(new X509Certificate(caPem)));

  const second = await writeDnsCertificates({ dir: out, name: "other.remote.test" });
  assert.equal(second.caCreated, false);
  assert.equal(readFileSync(join(out, "ca.pem"), "utf8"), caPem);
  // The first server certificate still verifies with the CA on disk.
  assert.ok(server.verify(new X509Certificate(readFileSync(join(out, "ca.pem"))).publicKey));

  const forced = await ensureCa(out, { commonName: "new CA", force: true });
  assert.equal(forced.created, true);
  assert.notEqual(readFileSync(join(out, "ca.pem"), "utf8"), caPem);
  rmSync(join(out, "ca-key.pem"));
  await assert.rejects(ensureCa(out, { commonName: "x" }), /has ca.pem without ca-key.pem/);
});
