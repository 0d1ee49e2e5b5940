import assert from "node:assert/strict";
import { test } from "node:test";
import { parseCidr, parseIp } from "../../ipam/cidr.js";
import { attachmentTag, masqAddScript, masqRemoveScript, masqTableName } from "./masq.js";

test("table and tag names are stable hashes", () => {
  assert.match(masqTableName("pods"), /^podnet-cni-[0-9a-f]{8}$/);
  assert.equal(masqTableName("pods"), masqTableName("pods"));
  assert.match(attachmentTag("c1", "eth0"), /^podnet:[0-9a-f]{16}$/);
  assert.notEqual(attachmentTag("c1", "eth0"), attachmentTag("c1", "eth1"));
});

test("the add script creates table and chain idempotently and one rule per address", () => {
  const s = masqAddScript("podnet-cni-x", "podnet:t", [
    { ip: parseIp("10.1.0.5"), subnet: parseCidr("10.1.0.0/24") },
    { ip: parseIp("fd00::5"), subnet: parseCidr("fd00::/64") },
  ]);
  assert.equal(
    s,
    [
      "add table inet podnet-cni-x",
      "add chain inet podnet-cni-x postrouting { type nat hook postrouting priority 100 ; policy accept ; }",
      'add rule inet podnet-cni-x postrouting ip saddr 10.1.0.5 ip daddr != { 10.1.0.0/24, 224.0.0.0/4 } masquerade comment "podnet:t"',
      'add rule inet podnet-cni-x postrouting ip6 saddr fd00::5 ip6 daddr != { fd00::/64, ff00::/8 } masquerade comment "podnet:t"',
      "",
    ].join("\n"),
  );
});

test("the remove script deletes the rules, or the whole table when they are the last ones", () => {
  const rules = [
    { handle: 3, comment: "podnet:a" },
    { handle: 4, comment: "podnet:a" },
    { handle: 5, comment: "podnet:b" },
  ];
  assert.equal(
    masqRemoveScript("t", rules, (r) => r.comment === "podnet:a"),
    "delete rule inet t postrouting handle 3\ndelete rule inet t postrouting handle 4\n",
  );
  assert.equal(
    masqRemoveScript("t", rules.slice(0, 2), (r) => r.comment === "podnet:a"),
    "delete table inet t\n",
  );
  assert.equal(
    masqRemoveScript("t", rules, () => false),
    "",
  );
});
