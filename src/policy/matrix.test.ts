// The bitset matrix against the per-pair evaluator on a synthetic cluster that mixes every kind of peer
// and port (pod, namespace and ipBlock peers; numeric, ranged and named ports; ingress and egress).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Protocol } from "../api/types.js";
import { evaluateConnection } from "./evaluate.js";
import { computeReachability, formatReachability, reaches } from "./matrix.js";
import { buildPolicyIndex } from "./model.js";
import { syntheticWorld } from "./synthetic.js";

test("bitset matrix = per-pair evaluator on every pair, port and protocol", () => {
  const index = buildPolicyIndex(syntheticWorld({ pods: 150, nodes: 5, namespaces: 6, policies: 60 }));
  const checks: [number, Protocol][] = [
    [80, "TCP"],
    [8080, "TCP"],
    [8050, "TCP"],
    [53, "UDP"],
    [81, "TCP"],
  ];
  const m = computeReachability(
    index,
    checks.map((c) => c[0]),
    ["TCP", "UDP"],
  );
  let allowed = 0;
  let denied = 0;
  const pods = index.world.pods;
  for (const [port, protocol] of checks) {
    for (let s = 0; s < pods.length; s++) {
      for (let d = 0; d < pods.length; d++) {
        const v = evaluateConnection(
          index,
          { pod: s, ip: pods[s]?.ips[0] as string },
          { pod: d, ip: pods[d]?.ips[0] as string },
          port,
          protocol,
        ).allowed;
        assert.equal(
          reaches(m, s, d, port, protocol),
          v,
          `${pods[s]?.key} → ${pods[d]?.key} ${port}/${protocol}`,
        );
        if (v) allowed++;
        else denied++;
      }
    }
  }
  // Both verdicts occur plenty: the comparison is not vacuous.
  assert.ok(allowed > 1000 && denied > 1000, `allowed ${allowed}, denied ${denied}`);
});

test("formatReachability: the lab matrix's sections", () => {
  const index = buildPolicyIndex(syntheticWorld({ pods: 3, nodes: 1, namespaces: 1, policies: 0 }));
  const text = formatReachability(computeReachability(index, [80], ["TCP"]), undefined, "3 verdicts");
  assert.equal(
    text,
    "80/TCP:\nfrom \\ to   1 2 3\n1 ns-0/p-0  . . .\n2 ns-0/p-1  . . .\n3 ns-0/p-2  . . .\n\n. connected   X blocked\n\n\n3 verdicts",
  );
});
