import assert from "node:assert/strict";
import { test } from "node:test";
import { ipLine, parseJsonValues, quoteIpArg } from "./ip.js";

test("quoteIpArg leaves plain tokens alone and quotes the rest for ip -batch", () => {
  assert.equal(quoteIpArg("eth0"), "eth0");
  assert.equal(quoteIpArg("10.1.0.5/24"), "10.1.0.5/24");
  assert.equal(quoteIpArg("/run/netns/pod-a"), "/run/netns/pod-a");
  assert.equal(quoteIpArg("fd00::1"), "fd00::1");
  assert.equal(quoteIpArg("a#b"), '"a#b"');
  assert.equal(quoteIpArg('a"b'), "'a\"b'");
  assert.equal(quoteIpArg(""), '""');
  assert.throws(() => quoteIpArg("a\nb"), /line break/);
  assert.throws(() => quoteIpArg(`a'"b`), /both/);
});

test("ipLine joins tokens", () => {
  assert.equal(ipLine("link", "set", "dev", "a#1", "mtu", 1400), 'link set dev "a#1" mtu 1400');
});

test("parseJsonValues reads the concatenated arrays of ip -j -batch", () => {
  const text = '[{"ifname":"a]b","x":"\\"["}]\n[]\n[{"n":1},{"n":2}]\n';
  assert.deepEqual(parseJsonValues(text), [[{ ifname: "a]b", x: '"[' }], [], [{ n: 1 }, { n: 2 }]]);
  assert.deepEqual(parseJsonValues(""), []);
  assert.throws(() => parseJsonValues("[{"), /truncated/);
});
