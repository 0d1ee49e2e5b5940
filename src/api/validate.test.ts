/** Name, label, port and address syntax; selector matching. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { CidrError, containsCidr, formatIp, nthAddress, parseCidr, parseIp } from "../ipam/cidr.js";
import { matchesSelector } from "./selector.js";
import {
  dns1035Label,
  dns1123Label,
  dns1123Subdomain,
  ianaSvcName,
  labelValue,
  qualifiedName,
  specialIpProblem,
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

test("IP and CIDR syntax (src/ipam/cidr.ts) as the API reports it", () => {
  assert.deepEqual(parseIp("10.1.2.3"), { family: 4, value: 0x0a010203n });
  assert.equal(parseIp("2001:db8::1").family, 6);
  assert.throws(() => parseIp("010.1.2.3"), { name: "CidrError", message: /write 10\.1\.2\.3/ });
  for (const bad of ["10.1.2", "fe80::1%eth0", "10.0.0.0/8", " 10.0.0.1", ""])
    assert.throws(() => parseIp(bad), CidrError, bad);
  assert.throws(() => parseCidr("10.96.0.1/12"), {
    message: '"10.96.0.1/12" has host bits set; did you mean 10.96.0.0/12?',
  });
  assert.throws(() => parseCidr("fd00:10:244::1/56"), { message: /did you mean fd00:10:244::\/56\?/ });
  for (const bad of ["10.0.0.0/33", "10.0.0.0", "10.0.0.0/08"])
    assert.throws(() => parseCidr(bad), CidrError, bad);
  const outer = parseCidr("10.0.0.0/8");
  const inner = parseCidr("10.1.0.0/16");
  assert.ok(containsCidr(outer, inner));
  assert.ok(!containsCidr(inner, outer));
  assert.equal(formatIp(nthAddress(outer, 10)), "10.0.0.10");
  assert.equal(formatIp(nthAddress(outer, 256)), "10.0.1.0");
  assert.throws(() => nthAddress(parseCidr("10.0.0.0/29"), 10), RangeError);
});

test("special addresses (Kubernetes' ValidateNonSpecialIP)", () => {
  const problem = (text: string) => specialIpProblem(parseIp(text));
  assert.equal(problem("0.0.0.0"), "may not be unspecified (0.0.0.0 or ::)");
  assert.equal(problem("::"), "may not be unspecified (0.0.0.0 or ::)");
  assert.equal(problem("127.1.2.3"), "may not be in the loopback range (127.0.0.0/8)");
  assert.equal(problem("169.254.169.254"), "may not be in the link-local range (169.254.0.0/16)");
  assert.equal(problem("239.255.255.250"), "may not be in the multicast range (224.0.0.0/4)");
  assert.equal(problem("::1"), "may not be the loopback address (::1)");
  assert.equal(problem("febf::1"), "may not be in the link-local range (fe80::/10)");
  assert.equal(problem("ff02::1"), "may not be in the multicast range (ff00::/8)");
  for (const ok of [
    "10.0.0.1",
    "198.51.100.7",
    "240.0.0.1",
    "::2",
    "fec0::1",
    "2001:db8::1",
    "::ffff:127.0.0.1",
  ])
    assert.equal(problem(ok), undefined, ok);
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
