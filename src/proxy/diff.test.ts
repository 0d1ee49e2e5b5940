import assert from "node:assert/strict";
import { test } from "node:test";
import type { Service } from "../api/types.js";
import { conntrackDeleteArgs, planProxyUpdate } from "./diff.js";
import { type ProxyInput, planProxyRules } from "./plan.js";
import { syntheticProxyInput, withExtraService, withoutLastEndpoint } from "./synthetic.js";

const base = syntheticProxyInput({ services: 10_000, endpointsPerService: 3 });
const before = planProxyRules(base);

/** A transaction's size in lines of nft input (what the kernel has to process). */
const lines = (text: string) => text.split("\n").filter(Boolean).length;

test("one new Service among 10,000 is ONE small transaction of element commands", () => {
  const u = planProxyUpdate(before, planProxyRules(withExtraService(base, 3)));
  assert.deepEqual(u.commands, [
    'add element ip podnet-proxy cluster-ips { 10.96.39.17 comment "bench/svc-10000" }',
    'add element ip podnet-proxy services { 10.96.39.17 . tcp . 80 comment "bench/svc-10000:http clusterIP" : goto endpoints-3 }',
    "add element ip podnet-proxy tcp-backends { 10.96.39.17 . 80 . 0 : 10.245.117.48 . 8080, 10.96.39.17 . 80 . 1 : 10.245.117.49 . 8080, 10.96.39.17 . 80 . 2 : 10.245.117.50 . 8080 }",
  ]);
  assert.equal(lines(u.text), 3);
  assert.deepEqual(
    { ...u.summary },
    {
      tablesAdded: 0,
      tablesDeleted: 0,
      setsAdded: 0,
      setsDeleted: 0,
      chainsAdded: 0,
      chainsDeleted: 0,
      chainsRewritten: 0,
      elementsAdded: 5,
      elementsDeleted: 0,
    },
  );
});

test("one endpoint fewer: the Service's last slot goes and its entry points at endpoints-2", () => {
  const u = planProxyUpdate(before, planProxyRules(withoutLastEndpoint(base, 5000)));
  assert.ok(lines(u.text) <= 8, u.text);
  assert.deepEqual(
    u.commands.filter((c) => c.startsWith("add chain") || c.startsWith("add rule")).length,
    3,
    "endpoints-2 is new here: the chain and its two rules",
  );
  assert.ok(
    u.commands.some((c) => /^delete element ip podnet-proxy tcp-backends \{ \S+ \. 80 \. 2 \}$/.test(c)),
  );
  assert.ok(u.commands.some((c) => c.includes(": goto endpoints-2 }")));
  // Deletions come before additions, the new chain before the element that jumps to it.
  const at = (p: string) => u.commands.findIndex((c) => c.startsWith(p));
  assert.ok(at("delete element") < at("add chain"));
  assert.ok(at("add chain") < at("add element"));
});

test("a Service removed among 10,000: only its elements are deleted", () => {
  const removed: ProxyInput = {
    ...base,
    services: base.services.filter((_, i) => i !== 42),
    endpoints: base.endpoints.filter((_, i) => i !== 42),
  };
  const u = planProxyUpdate(before, planProxyRules(removed));
  assert.equal(lines(u.text), 3);
  assert.ok(u.commands.every((c) => c.startsWith("delete element")));
  assert.equal(u.summary.elementsDeleted, 5);
});

test("nothing changed: an empty transaction", () => {
  const u = planProxyUpdate(before, planProxyRules(base));
  assert.deepEqual(u.commands, []);
  assert.equal(u.text, "");
});

test("session affinity switched on: the sticky chain and sets come, in an order the kernel accepts", () => {
  const small = syntheticProxyInput({ services: 3, endpointsPerService: 2 });
  const sticky = (s: Service): Service => ({
    ...s,
    sessionAffinity: "ClientIP",
    sessionAffinityTimeoutSeconds: 60,
  });
  const on: ProxyInput = {
    ...small,
    serviceObjects: small.serviceObjects.map((s, i) => (i === 1 ? sticky(s) : s)),
  };
  const a = planProxyRules(small);
  const b = planProxyRules(on);
  const up = planProxyUpdate(a, b);
  const at = (p: string) => up.commands.findIndex((c) => c.startsWith(p));
  assert.ok(at("add set") >= 0 && at("add set") < at("add chain"), up.text);
  assert.ok(at("add chain") < at("add rule"));
  assert.ok(at("add rule") < at("add element"));
  assert.equal(up.summary.setsAdded, 2);
  assert.equal(up.summary.chainsAdded, 1);
  // And back: rules go (flush) before the sets they use, the chain after the element that jumped to it.
  const down = planProxyUpdate(b, a);
  const dat = (p: string) => down.commands.findIndex((c) => c.startsWith(p));
  assert.ok(dat("delete element") < dat("flush chain"), down.text);
  assert.ok(dat("flush chain") < dat("delete set"));
  assert.ok(dat("delete set") < dat("delete chain"));
});

test("a family appearing or going is a whole table added or deleted", () => {
  const v4 = syntheticProxyInput({ services: 2, endpointsPerService: 1 });
  const dual: ProxyInput = { ...v4, podCIDRs: [...v4.podCIDRs, "fd00:10:244::/56"] };
  const up = planProxyUpdate(planProxyRules(v4), planProxyRules(dual));
  assert.equal(up.summary.tablesAdded, 1);
  assert.match(up.commands[0] as string, /^table ip6 podnet-proxy \{/);
  const down = planProxyUpdate(planProxyRules(dual), planProxyRules(v4));
  assert.deepEqual(down.commands, ["delete table ip6 podnet-proxy"]);
});

test("UDP endpoints that went away are reported for a conntrack cleanup", () => {
  const udp = (input: ProxyInput): ProxyInput => ({
    ...input,
    services: input.services.map((s) => ({
      ...s,
      ports: s.ports.map((p) => ({ ...p, protocol: "UDP" as const })),
    })),
  });
  const small = udp(syntheticProxyInput({ services: 2, endpointsPerService: 2 }));
  const u = planProxyUpdate(planProxyRules(small), planProxyRules(withoutLastEndpoint(small, 1)));
  assert.deepEqual(u.staleUdp, [{ family: 4, address: "10.96.0.2", port: 80, endpoint: "10.245.0.3:8080" }]);
});

test("conntrackDeleteArgs: the flows of a UDP Service port whose replies came from the endpoint that went", () => {
  assert.deepEqual(
    conntrackDeleteArgs({ family: 4, address: "10.96.0.2", port: 53, endpoint: "10.245.0.3:5353" }).join(" "),
    "-D -f ipv4 -p udp --orig-dst 10.96.0.2 --orig-port-dst 53 --reply-src 10.245.0.3 --reply-port-src 5353",
  );
  assert.deepEqual(
    conntrackDeleteArgs({ family: 6, address: "fd00::a", port: 53, endpoint: "[fd00:1::3]:5353" }).slice(-4),
    ["--reply-src", "fd00:1::3", "--reply-port-src", "5353"],
  );
});
