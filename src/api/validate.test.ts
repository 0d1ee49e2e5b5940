/** Name, label, port and address syntax; selector matching. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { cidrContainsCidr, isNetError, nthAddress, parseCidr, parseIp } from "./net.js";
import { matchesSelector } from "./selector.js";
import {
  dns1035Label,
  dns1123Label,
  dns1123Subdomain,
  ianaSvcName,
  labelValue,
  qualifiedName,
  suggestName,
} from "./validate.js";

test("DNS names", () => {
  assert.deepEqual(dns1123Label("my-name"), []);
  assert.deepEqual(dns1123Label("123-abc"), []);
  assert.equal(dns1123Label("My-Name").length, 1);
  assert.equal(dns1123Label("a".repeat(64))[0], "must be no more than 63 characters");
  assert.deepEqual(dns1123Subdomain("example.com"), []);
  assert.equal(dns1123Subdomain("example..com").length, 1);
  assert.deepEqual(dns1035Label("abc-123"), []);
  assert.equal(dns1035Label("1abc").length, 1);
  assert.equal(suggestName("dns1123Label", "My_App"), "my-app");
  assert.equal(suggestName("dns1035Label", "9lives"), "lives");
  assert.equal(suggestName("dns1123Subdomain", "Web.App_1"), "web.app-1");
});

test("label keys and values", () => {
  for (const ok of ["app", "app.kubernetes.io/name", "a_b.c-d", "A1"])
    assert.deepEqual(qualifiedName(ok), [], ok);
  assert.deepEqual(qualifiedName("/x"), ["prefix part must be non-empty"]);
  assert.deepEqual(qualifiedName("x/"), ["name part must be non-empty"]);
  assert.match(qualifiedName("a/b/c")[0] ?? "", /a qualified name must consist of/);
  assert.match(qualifiedName(`${"a".repeat(64)}`)[0] ?? "", /name part must be no more than 63 characters/);
  assert.deepEqual(labelValue(""), []);
  assert.deepEqual(labelValue("v1.2_3-x"), []);
  assert.equal(labelValue("-x").length, 1);
});

test("IANA service names (named ports)", () => {
  assert.deepEqual(ianaSvcName("http"), []);
  assert.deepEqual(ianaSvcName("http-alt2"), []);
  assert.ok(
    ianaSvcName("Http").includes("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"),
  );
  assert.ok(ianaSvcName("8080").includes("must contain at least one letter (a-z)"));
  assert.ok(ianaSvcName("a--b").includes("must not contain consecutive hyphens"));
  assert.ok(ianaSvcName("a-").includes("must not begin or end with a hyphen"));
  assert.ok(ianaSvcName("abcdefghijklmnop").includes("must be no more than 15 characters"));
});

test("IP and CIDR syntax", () => {
  assert.deepEqual(parseIp("10.1.2.3"), { family: "IPv4", bytes: [10, 1, 2, 3], text: "10.1.2.3" });
  assert.equal((parseIp("2001:db8::1") as { family: string }).family, "IPv6");
  const lead = parseIp("010.1.2.3");
  assert.ok(isNetError(lead) && lead.hint === "write 10.1.2.3");
  assert.ok(isNetError(parseIp("10.1.2")));
  assert.ok(isNetError(parseIp("fe80::1%eth0")));
  assert.ok(isNetError(parseIp("10.0.0.0/8")));
  const hostBits = parseCidr("10.96.0.1/12");
  assert.ok(isNetError(hostBits));
  assert.equal(hostBits.error, "10.96.0.1/12 has host bits set; did you mean 10.96.0.0/12?");
  const v6 = parseCidr("fd00:10:244::1/56");
  assert.ok(isNetError(v6) && v6.error.includes("did you mean fd00:10:244::/56?"));
  assert.ok(isNetError(parseCidr("10.0.0.0/33")));
  assert.ok(isNetError(parseCidr("10.0.0.0")));
  const outer = parseCidr("10.0.0.0/8");
  const inner = parseCidr("10.1.0.0/16");
  assert.ok(!isNetError(outer) && !isNetError(inner));
  assert.ok(cidrContainsCidr(outer, inner));
  assert.ok(!cidrContainsCidr(inner, outer));
  assert.equal(nthAddress(outer, 10), "10.0.0.10");
  assert.equal(nthAddress(outer, 256), "10.0.1.0");
  const small = parseCidr("10.0.0.0/29");
  assert.ok(!isNetError(small));
  assert.equal(nthAddress(small, 10), undefined);
});

test("matchesSelector: matchLabels and every operator", () => {
  const labels = { app: "web", tier: "front" };
  const sel = (
    matchLabels: Record<string, string>,
    ...exprs: [string, "In" | "NotIn" | "Exists" | "DoesNotExist", string[]][]
  ) => ({
    matchLabels,
    matchExpressions: exprs.map(([key, operator, values]) => ({ key, operator, values })),
  });
  assert.ok(matchesSelector(sel({}), labels), "empty selector matches everything");
  assert.ok(matchesSelector(sel({}), {}));
  assert.ok(matchesSelector(sel({ app: "web" }), labels));
  assert.ok(!matchesSelector(sel({ app: "db" }), labels));
  assert.ok(matchesSelector(sel({}, ["tier", "In", ["front", "back"]]), labels));
  assert.ok(!matchesSelector(sel({}, ["tier", "In", ["back"]]), labels));
  assert.ok(!matchesSelector(sel({}, ["zone", "In", ["a"]]), labels));
  assert.ok(
    matchesSelector(sel({}, ["zone", "NotIn", ["a"]]), labels),
    "NotIn matches when the key is absent",
  );
  assert.ok(!matchesSelector(sel({}, ["app", "NotIn", ["web"]]), labels));
  assert.ok(matchesSelector(sel({}, ["app", "Exists", []]), labels));
  assert.ok(matchesSelector(sel({}, ["zone", "DoesNotExist", []]), labels));
  assert.ok(
    !matchesSelector(sel({ app: "web" }, ["tier", "DoesNotExist", []]), labels),
    "all requirements must hold",
  );
});
