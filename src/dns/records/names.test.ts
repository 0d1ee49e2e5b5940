import assert from "node:assert/strict";
import { test } from "node:test";
import { addressFromReverse, dashedIp, parseRequest, podNameAddress, reverseName } from "./names.js";

test("parseRequest reads names as CoreDNS's parse.go", () => {
  const r = (
    port: string,
    protocol: string,
    endpoint: string,
    service: string,
    namespace: string,
    podOrSvc: string,
  ) => ({
    port,
    protocol,
    endpoint,
    service,
    namespace,
    podOrSvc,
  });
  assert.deepEqual(parseRequest(""), r("", "", "", "", "", ""), "apex");
  assert.deepEqual(parseRequest("svc"), r("", "", "", "", "", ""), "svc.<zone>");
  assert.deepEqual(parseRequest("pod"), r("", "", "", "", "", ""), "pod.<zone>");
  assert.deepEqual(parseRequest("shop.svc"), r("", "", "", "", "shop", "svc"));
  assert.deepEqual(parseRequest("web.shop.svc"), r("", "", "", "web", "shop", "svc"));
  assert.deepEqual(parseRequest("db-0.db.shop.svc"), r("", "", "db-0", "db", "shop", "svc"));
  assert.deepEqual(parseRequest("_http._tcp.web.shop.svc"), r("http", "tcp", "", "web", "shop", "svc"));
  assert.deepEqual(
    parseRequest("http.tcp.web.shop.svc"),
    r("http", "tcp", "", "web", "shop", "svc"),
    "underscores optional",
  );
  assert.deepEqual(parseRequest("1-2-3-4.shop.pod"), r("", "", "", "1-2-3-4", "shop", "pod"));
  assert.equal(parseRequest("a.b.c.web.shop.svc"), undefined, "too long");
  assert.equal(parseRequest("web.shop.other"), undefined, "last label neither svc nor pod");
  assert.equal(parseRequest("dns-version"), undefined);
});

test("dashed addresses: CoreDNS's endpointHostname and findPods", () => {
  assert.equal(dashedIp("10.244.1.5"), "10-244-1-5");
  assert.equal(dashedIp("fd00::5"), "fd00--5");
  assert.equal(podNameAddress("10-244-1-5"), "10.244.1.5");
  assert.equal(podNameAddress("fd00--5"), "fd00::5");
  assert.equal(podNameAddress("fd00-0-0-0-0-0-0-5"), "fd00::5", "IPv6 written out in full");
  assert.equal(podNameAddress("1-2-3-256"), undefined);
  assert.equal(
    podNameAddress("01-2-3-4"),
    undefined,
    "leading zeros are ambiguous (Go's ParseIP rejects them)",
  );
  assert.equal(podNameAddress("web"), undefined);
});

test("reverse names both ways", () => {
  assert.equal(reverseName("10.96.0.1"), "1.0.96.10.in-addr.arpa");
  assert.equal(addressFromReverse("1.0.96.10.in-addr.arpa"), "10.96.0.1");
  const v6 = reverseName("fd00:10:96::a");
  assert.equal(v6, "a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa");
  assert.equal(addressFromReverse(v6), "fd00:10:96::a");
  assert.equal(addressFromReverse("0.96.10.in-addr.arpa"), undefined, "three labels");
  assert.equal(addressFromReverse("01.0.96.10.in-addr.arpa"), undefined, "not canonical: matches nothing");
  assert.equal(addressFromReverse("a.b.ip6.arpa"), undefined);
  assert.equal(addressFromReverse("example.com"), undefined);
});
