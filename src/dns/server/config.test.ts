import assert from "node:assert/strict";
import { test } from "node:test";
import { formatDiagnostic } from "../../api/diagnostics.js";
import { inZone, normalizeZone, parseDnsConfig, parseDuration } from "./config.js";

const FULL = `# the cluster's DNS
cluster.local:1053 in-addr.arpa:1053 {
    bind 127.0.0.1 ::1
    kubernetes cluster.local in-addr.arpa {
        pods insecure
        ttl 10
        fallthrough in-addr.arpa
    }
    hosts ./extra.hosts example.internal {
        10.0.0.5 db.example.internal
        ttl 60; fallthrough
    }
    forward remote.svc.cluster.local 10.96.0.10 10.96.0.11:5353 [fd00::10]:53 {
        policy round_robin
        failover SERVFAIL refused
        health_check 250ms
        max_fails 3
        timeout 1.5s
    }
    forward . dns://10.0.0.1 {
        except corp.example
        force_tcp
    }
    cache 30 {
        success 1000 60 1
        denial 500 10
    }
    prometheus 127.0.0.1:9153
    errors
}
.:1054 {
    forward . 10.0.0.1
}
`;

test("a full configuration parses into typed blocks", () => {
  const { config, diagnostics } = parseDnsConfig(FULL, "Corefile");
  assert.deepEqual(diagnostics, []);
  assert.equal(config.servers.length, 2);
  const [main, other] = config.servers;
  assert.ok(main && other);
  assert.deepEqual(main.zones, ["cluster.local", "in-addr.arpa"]);
  assert.equal(main.port, 1053);
  assert.equal(main.line, 2);
  assert.deepEqual(main.bind, ["127.0.0.1", "::1"]);
  assert.deepEqual(main.clusterZone, {
    zones: ["cluster.local", "in-addr.arpa"],
    pods: "insecure",
    ttl: 10,
    fallthrough: ["in-addr.arpa"],
    line: 4,
  });
  assert.equal(main.hosts[0]?.file, "./extra.hosts");
  assert.deepEqual(main.hosts[0]?.zones, ["example.internal"]);
  assert.deepEqual(main.hosts[0]?.entries, [
    { address: "10.0.0.5", names: ["db.example.internal"], line: 10 },
  ]);
  assert.equal(main.hosts[0]?.ttl, 60);
  assert.equal(main.hosts[0]?.fallthrough, true);
  const [remote, rest] = main.forwards;
  assert.equal(remote?.from, "remote.svc.cluster.local");
  assert.deepEqual(remote?.to, [
    { address: "10.96.0.10", port: 53 },
    { address: "10.96.0.11", port: 5353 },
    { address: "fd00::10", port: 53 },
  ]);
  assert.equal(remote?.policy, "round_robin");
  assert.deepEqual(remote?.failoverRcodes, [2, 5]);
  assert.equal(remote?.healthCheckMs, 250);
  assert.equal(remote?.maxFails, 3);
  assert.equal(remote?.timeoutMs, 1500);
  assert.equal(rest?.from, ".");
  assert.deepEqual(rest?.except, ["corp.example"]);
  assert.equal(rest?.forceTcp, true);
  assert.equal(rest?.timeoutMs, 2000);
  assert.equal(rest?.policy, "random");
  assert.deepEqual(main.cache?.success, { capacity: 1000, maxTtl: 60, minTtl: 1 });
  assert.deepEqual(main.cache?.denial, { capacity: 500, maxTtl: 10, minTtl: 5 });
  assert.deepEqual(main.metrics, { address: "127.0.0.1", port: 9153, line: 28 });
  assert.deepEqual(other.zones, ["."]);
  assert.equal(other.port, 1054);
});

function errorsOf(text: string): string[] {
  return parseDnsConfig(text, "dns.conf").diagnostics.map(formatDiagnostic);
}

test("every error names file and line, says what is wrong and how to fix it", () => {
  const errors = errorsOf(`.:1053 {
  forward . 10.0.0.300 {
    policy fastest
    max_fails -1
    health_check soon
  }
  cache 30 {
    success 0
  }
  prometheus 0.0.0.0:9153
  kubernetes cluster.local {
    pods maybe
  }
  frobnicate
}
`);
  assert.deepEqual(
    errors.map((e) => e.split("\n")[0]),
    [
      'dns.conf:2: error: "10.0.0.300" is not an upstream address',
      'dns.conf:3: error: policy "fastest" is not a forward policy',
      'dns.conf:4: error: max_fails "-1" is not a whole number from 0 to 1000',
      'dns.conf:5: error: health_check "soon" is not a duration',
      'dns.conf:8: error: success capacity "0" is not a whole number from 1 to 10000000',
      "dns.conf:10: error: prometheus address 0.0.0.0 is not a loopback address",
      'dns.conf:12: error: pods "maybe" is not a pods mode',
      'dns.conf:14: error: unknown directive "frobnicate"',
    ],
  );
  for (const e of errors) assert.match(e, /\n {4}fix: \S/, `no hint in: ${e}`);
});

test("structural errors: unclosed and stray braces, directives outside blocks, bad keys", () => {
  assert.deepEqual(
    errorsOf(".:53 {\n  cache 30\n").map((e) => e.split("\n")[0]),
    ["dns.conf:1: error: block opened here is never closed"],
  );
  assert.match(errorsOf(".:53 {\n}\n}\n")[0] ?? "", /^dns.conf:3: error: `}` without a matching `{`/);
  assert.match(
    errorsOf("forward . 10.0.0.1\n")[0] ?? "",
    /^dns.conf:1: error: "forward . 10.0.0.1" is outside any server block/,
  );
  assert.match(
    errorsOf("bad_zone!:53 {\n}\n")[0] ?? "",
    /^dns.conf:1: error: "bad_zone!:53" is not a server block key/,
  );
  assert.match(errorsOf("a.test:53 b.test:54 {\n}\n")[0] ?? "", /different ports/);
  assert.match(errorsOf("")[0] ?? "", /no server block/);
  assert.match(
    errorsOf('.:53 {\n  hosts {\n    "10.0.0.1\n')[0] ?? "",
    /^dns.conf:3: error: unterminated quoted string/,
  );
});

test("duplicates: a zone served twice on a port, a zone forwarded twice, a directive given twice", () => {
  assert.match(
    errorsOf("a.test:53 {\n}\na.test:53 {\n}\n")[0] ?? "",
    /^dns.conf:3: error: zone a.test on port 53 is already served by the block at line 1/,
  );
  assert.match(
    errorsOf(".:53 {\n  forward . 10.0.0.1\n  forward . 10.0.0.2\n}\n")[0] ?? "",
    /^dns.conf:3: error: zone \. is already forwarded at line 2/,
  );
  assert.match(
    errorsOf(".:53 {\n  cache\n  cache 10\n}\n")[0] ?? "",
    /^dns.conf:3: error: cache is given twice/,
  );
  // Same zone on another port or address is fine.
  assert.deepEqual(errorsOf("a.test:53 {\n}\na.test:54 {\n}\n"), []);
  assert.deepEqual(errorsOf("a.test:53 {\n  bind 127.0.0.1\n}\na.test:53 {\n  bind 127.0.0.2\n}\n"), []);
});

test("comments, semicolons, quotes and defaults", () => {
  const { config, diagnostics } = parseDnsConfig(
    '# top\n:1053 { # the root\n  forward . "10.0.0.1" ; cache\n}\n',
    "x",
  );
  assert.deepEqual(diagnostics, []);
  const block = config.servers[0];
  assert.deepEqual(block?.zones, ["."]);
  assert.equal(block?.port, 1053);
  assert.equal(block?.forwards[0]?.maxFails, 2);
  assert.equal(block?.forwards[0]?.healthCheckMs, 500);
  assert.deepEqual(block?.cache?.success, { capacity: 9984, maxTtl: 3600, minTtl: 5 });
  assert.deepEqual(block?.cache?.denial, { capacity: 9984, maxTtl: 1800, minTtl: 5 });
  assert.equal(parseDnsConfig("cluster.local {\n}\n", "x").config.servers[0]?.port, 53);
});

test("a hosts name outside the block's zones is an error", () => {
  assert.match(
    errorsOf("example.test:53 {\n  hosts {\n    10.0.0.1 www.other.test\n  }\n}\n")[0] ?? "",
    /^dns.conf:3: error: www.other.test is outside the zones of this hosts block \(example.test\)/,
  );
});

test("a one-line kubernetes block, as CoreDNS writes it", () => {
  const { config, diagnostics } = parseDnsConfig(
    ".:53 {\n  kubernetes cluster.local in-addr.arpa ip6.arpa { pods insecure; ttl 5 }\n  forward . 10.0.0.1\n}\n",
    "Corefile",
  );
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(config.servers[0]?.clusterZone, {
    zones: ["cluster.local", "in-addr.arpa", "ip6.arpa"],
    pods: "insecure",
    ttl: 5,
    fallthrough: [],
    line: 2,
  });
  assert.equal(config.servers[0]?.forwards[0]?.line, 3);
});

test("zones and durations", () => {
  assert.equal(normalizeZone("Cluster.Local."), "cluster.local");
  assert.equal(normalizeZone("."), ".");
  assert.equal(normalizeZone("a..b"), undefined);
  assert.ok(inZone("a.b.cluster.local", "cluster.local"));
  assert.ok(inZone("cluster.local", "cluster.local"));
  assert.ok(!inZone("xcluster.local", "cluster.local"));
  assert.ok(inZone("anything", "."));
  assert.equal(parseDuration("500ms"), 500);
  assert.equal(parseDuration("0.5s"), 500);
  assert.equal(parseDuration("2s"), 2000);
  assert.equal(parseDuration("1m"), 60_000);
  assert.equal(parseDuration("2"), undefined);
});
