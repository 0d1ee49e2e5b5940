// NetworkPolicy semantics, bullet by bullet (networking.k8s.io/v1), on the pure evaluator, plus the
// validation messages of invalid policies and the explain text.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { formatDiagnostic, loadManifestSources } from "../api/index.js";
import type { Protocol } from "../api/types.js";
import { planAddresses } from "../plan/index.js";
import { evaluateConnection, formatVerdict, resolveEnd, type Verdict } from "./evaluate.js";
import { computeReachability, reaches } from "./matrix.js";
import { buildPolicyIndex, type PolicyIndex, policyWorld } from "./model.js";

const BASE = `apiVersion: podnet.dev/v1alpha1
kind: Cluster
metadata: {name: c}
spec: {nodeCIDR: 172.20.0.0/24, podCIDRs: [10.1.0.0/16], serviceCIDRs: [10.2.0.0/16], nodeCIDRMaskSize: 24}
---
apiVersion: v1
kind: Node
metadata: {name: n1}
---
apiVersion: v1
kind: Node
metadata: {name: n2}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: a}}
---
apiVersion: v1
kind: Namespace
metadata: {name: other, labels: {team: b}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  nodeName: n1
  containers: [{name: c, image: x, ports: [{containerPort: 8080, name: http}, {containerPort: 53, name: dns, protocol: UDP}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: web2, namespace: shop, labels: {app: web}}
spec:
  nodeName: n2
  containers: [{name: c, image: x, ports: [{containerPort: 9090, name: http}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop, labels: {app: client}}
spec: {nodeName: n2, containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: other, labels: {app: client}}
spec: {nodeName: n1, containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: agent, namespace: shop, labels: {app: web}}
spec: {nodeName: n1, hostNetwork: true, containers: [{name: c, image: x}]}
`;

function world(policies: string): PolicyIndex {
  const loaded = loadManifestSources([{ file: "t.yaml", text: `${BASE}---\n${policies}` }]);
  const errors = loaded.diagnostics.filter((d) => d.severity === "error");
  assert.deepEqual(errors.map(formatDiagnostic), []);
  const plan = planAddresses(loaded.state).clusters[0];
  assert.ok(plan);
  return buildPolicyIndex(policyWorld(loaded.state, plan));
}

function np(name: string, spec: string, namespace = "shop"): string {
  return `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec:\n${spec
    .trim()
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n")}\n---\n`;
}

function verdict(
  index: PolicyIndex,
  from: string,
  to: string,
  port: number,
  protocol: Protocol = "TCP",
): Verdict {
  const src = resolveEnd(index, from);
  const dst = resolveEnd(index, to);
  assert.ok(src, from);
  assert.ok(dst, to);
  const v = evaluateConnection(index, src, dst, port, protocol);
  // The bitset matrix must say the same for pod pairs.
  if (src.pod !== undefined && dst.pod !== undefined) {
    const m = computeReachability(index, [port], [protocol]);
    assert.equal(reaches(m, src.pod, dst.pod, port, protocol), v.allowed, `matrix agrees on ${from} → ${to}`);
  }
  return v;
}

const allowed = (i: PolicyIndex, from: string, to: string, port: number, p: Protocol = "TCP") =>
  verdict(i, from, to, port, p).allowed;

describe("isolation", () => {
  test("pods are non-isolated until a policy selects them", () => {
    const i = world("");
    const v = verdict(i, "other/client", "shop/web", 8080);
    assert.equal(v.allowed, true);
    assert.equal(v.ingress.reason, "not-isolated");
    assert.equal(v.egress.reason, "not-isolated");
  });

  test("no rules denies all; only selected pods are isolated", () => {
    const i = world(np("deny", "podSelector: {matchLabels: {app: web}}\ningress: []"));
    assert.equal(allowed(i, "other/client", "shop/web", 8080), false);
    assert.equal(allowed(i, "shop/client", "shop/web2", 9090), false);
    assert.equal(allowed(i, "shop/web", "shop/client", 80), true, "egress not isolated");
    assert.equal(allowed(i, "other/client", "shop/client", 80), true, "client not selected");
  });

  test("an empty rule allows all", () => {
    const i = world(np("all", "podSelector: {}\ningress: [{}]"));
    assert.equal(allowed(i, "other/client", "shop/web", 1), true);
    assert.equal(allowed(i, "other/client", "shop/web", 1, "UDP"), true);
  });

  test("policies are additive: any selecting policy's rule allows", () => {
    const i = world(
      np("deny", "podSelector: {}\ningress: []") +
        np(
          "from-client",
          "podSelector: {matchLabels: {app: web}}\ningress: [{from: [{podSelector: {matchLabels: {app: client}}}]}]",
        ),
    );
    const v = verdict(i, "shop/client", "shop/web", 8080);
    assert.equal(v.allowed, true);
    assert.deepEqual(v.ingress.policies, ["shop/deny", "shop/from-client"]);
    assert.deepEqual(v.ingress.allowedBy, {
      policy: "shop/from-client",
      direction: "ingress",
      rule: 0,
      peer: 0,
    });
  });
});

describe("policyTypes", () => {
  test("defaults to Ingress only when no egress rules are given", () => {
    const i = world(np("p", "podSelector: {}\ningress: []"));
    assert.equal(allowed(i, "shop/web", "other/client", 80), true);
    assert.equal(allowed(i, "other/client", "shop/web", 8080), false);
  });

  test("egress rules make it Ingress and Egress", () => {
    const i = world(
      np("p", "podSelector: {matchLabels: {app: client}}\negress: [{ports: [{port: 53, protocol: UDP}]}]"),
    );
    assert.equal(allowed(i, "shop/client", "shop/web", 8080), false, "egress isolated");
    assert.equal(allowed(i, "shop/client", "shop/web", 53, "UDP"), true);
    assert.equal(allowed(i, "shop/web", "shop/client", 80), false, "ingress isolated too (default types)");
  });

  test("explicit policyTypes: Egress only leaves ingress open", () => {
    const i = world(np("p", "podSelector: {matchLabels: {app: client}}\npolicyTypes: [Egress]"));
    assert.equal(allowed(i, "shop/client", "shop/web", 8080), false);
    assert.equal(allowed(i, "shop/web", "shop/client", 80), true);
  });

  test("ingress and egress are independent: a connection needs both", () => {
    const i = world(
      np(
        "out",
        "podSelector: {matchLabels: {app: client}}\npolicyTypes: [Egress]\negress: [{to: [{podSelector: {matchLabels: {app: web}}}]}]",
      ) +
        np(
          "in",
          "podSelector: {matchLabels: {app: web}}\ningress: [{from: [{namespaceSelector: {matchLabels: {team: b}}}]}]",
        ),
    );
    const v = verdict(i, "shop/client", "shop/web", 8080);
    assert.equal(v.egress.allowed, true);
    assert.equal(v.ingress.allowed, false);
    assert.equal(v.allowed, false);
    assert.equal(allowed(i, "other/client", "shop/web", 8080), true);
  });
});

describe("peers", () => {
  test("podSelector alone: pods of the policy's namespace only", () => {
    const i = world(
      np(
        "p",
        "podSelector: {matchLabels: {app: web}}\ningress: [{from: [{podSelector: {matchLabels: {app: client}}}]}]",
      ),
    );
    assert.equal(allowed(i, "shop/client", "shop/web", 8080), true);
    assert.equal(allowed(i, "other/client", "shop/web", 8080), false);
  });

  test("namespaceSelector alone: every pod of the matching namespaces", () => {
    const i = world(
      np("p", "podSelector: {}\ningress: [{from: [{namespaceSelector: {matchLabels: {team: b}}}]}]"),
    );
    assert.equal(allowed(i, "other/client", "shop/web", 8080), true);
    assert.equal(allowed(i, "shop/client", "shop/web", 8080), false);
  });

  test("both in one peer mean AND; in two peers, OR", () => {
    const and = world(
      np(
        "p",
        "podSelector: {}\ningress: [{from: [{namespaceSelector: {matchLabels: {team: b}}, podSelector: {matchLabels: {app: web}}}]}]",
      ),
    );
    assert.equal(allowed(and, "other/client", "shop/web", 8080), false);
    const or = world(
      np(
        "p",
        "podSelector: {}\ningress: [{from: [{namespaceSelector: {matchLabels: {team: b}}}, {podSelector: {matchLabels: {app: web}}}]}]",
      ),
    );
    assert.equal(allowed(or, "other/client", "shop/web", 8080), true);
    assert.deepEqual(verdict(or, "shop/web2", "shop/web", 8080).ingress.allowedBy?.peer, 1);
  });

  test("ipBlock with except matches addresses, pod IPs included", () => {
    const i = world("");
    const web2 = i.world.pods.find((p) => p.key === "shop/web2")?.ips[0] as string;
    const j = world(
      np(
        "p",
        `podSelector: {matchLabels: {app: web}}\ningress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [${web2}/32]}}]}]`,
      ),
    );
    assert.equal(allowed(j, "other/client", "shop/web", 8080), true, "a pod IP inside the block");
    assert.equal(allowed(j, web2, "shop/web", 8080), false, "the excepted address");
    assert.equal(allowed(j, "192.168.1.1", "shop/web", 8080), false, "outside the block");
    assert.equal(allowed(j, "10.99.0.1", "shop/web", 8080), true, "any address in the block");
  });

  test("egress ipBlock to a destination outside the cluster", () => {
    const i = world(
      np(
        "p",
        "podSelector: {matchLabels: {app: client}}\negress: [{to: [{ipBlock: {cidr: 203.0.113.0/24}}]}]",
      ),
    );
    assert.equal(allowed(i, "shop/client", "203.0.113.7", 443), true);
    assert.equal(allowed(i, "shop/client", "198.51.100.1", 443), false);
    assert.equal(allowed(i, "shop/client", "shop/web", 8080), false);
  });
});

describe("ports", () => {
  test("protocol defaults to TCP; UDP and SCTP are distinct", () => {
    const i = world(np("p", "podSelector: {}\ningress: [{ports: [{port: 53}]}]"));
    assert.equal(allowed(i, "other/client", "shop/web", 53), true);
    assert.equal(allowed(i, "other/client", "shop/web", 53, "UDP"), false);
    assert.equal(allowed(i, "other/client", "shop/web", 53, "SCTP"), false);
  });

  test("a protocol without a port allows all its ports", () => {
    const i = world(np("p", "podSelector: {}\ningress: [{ports: [{protocol: UDP}]}]"));
    assert.equal(allowed(i, "other/client", "shop/web", 12345, "UDP"), true);
    assert.equal(allowed(i, "other/client", "shop/web", 12345), false);
  });

  test("endPort makes a range", () => {
    const i = world(np("p", "podSelector: {}\ningress: [{ports: [{port: 8000, endPort: 8999}]}]"));
    assert.equal(allowed(i, "other/client", "shop/web", 8000), true);
    assert.equal(allowed(i, "other/client", "shop/web", 8999), true);
    assert.equal(allowed(i, "other/client", "shop/web", 9000), false);
    assert.equal(verdict(i, "other/client", "shop/web", 8080).ingress.allowedBy?.port, 0);
  });

  test("a named port resolves on each destination pod", () => {
    const i = world(np("p", "podSelector: {matchLabels: {app: web}}\ningress: [{ports: [{port: http}]}]"));
    assert.equal(allowed(i, "other/client", "shop/web", 8080), true);
    assert.equal(allowed(i, "other/client", "shop/web", 9090), false);
    assert.equal(allowed(i, "other/client", "shop/web2", 9090), true);
    assert.equal(allowed(i, "other/client", "shop/web2", 8080), false);
  });

  test("egress named ports resolve on the destination; an address outside the pods never matches", () => {
    const i = world(
      np(
        "p",
        "podSelector: {matchLabels: {app: client}}\npolicyTypes: [Egress]\negress: [{ports: [{port: http}]}]",
      ),
    );
    assert.equal(allowed(i, "shop/client", "shop/web", 8080), true);
    assert.equal(allowed(i, "shop/client", "shop/web2", 9090), true);
    assert.equal(allowed(i, "shop/client", "shop/web2", 8080), false);
    assert.equal(allowed(i, "shop/client", "203.0.113.1", 8080), false);
  });
});

describe("always allowed", () => {
  test("a pod reaches itself; its own node reaches it; other nodes do not", () => {
    const i = world(np("deny", "podSelector: {}\ningress: []\negress: []"));
    assert.equal(verdict(i, "shop/web", "shop/web", 8080).ingress.reason, "loopback");
    const n1 = i.world.nodeAddresses.get("n1")?.[0] as string;
    const n2 = i.world.nodeAddresses.get("n2")?.[0] as string;
    const own = verdict(i, n1, "shop/web", 8080);
    assert.equal(own.allowed, true);
    assert.equal(own.ingress.reason, "own-node");
    assert.equal(allowed(i, n2, "shop/web", 8080), false);
    assert.equal(
      allowed(i, "shop/agent", "shop/web", 8080),
      true,
      "a hostNetwork pod on the same node is the node",
    );
  });

  test("hostNetwork pods are not selected and not matched by selectors", () => {
    const i = world(
      np(
        "p",
        "podSelector: {matchLabels: {app: web}}\ningress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]",
      ),
    );
    const v = verdict(i, "other/client", "shop/agent", 80);
    assert.equal(v.ingress.reason, "host-network");
    assert.equal(v.allowed, true);
    assert.equal(
      allowed(i, "shop/agent", "shop/web2", 9090),
      false,
      "n1's hostNetwork pod is not a peer of app=web",
    );
  });
});

test("explain: the allowing rule, or isolation with no matching rule", () => {
  const i = world(
    np(
      "web-in",
      "podSelector: {matchLabels: {app: web}}\ningress: [{from: [{podSelector: {matchLabels: {app: client}}}], ports: [{port: http}]}]",
    ),
  );
  const ok = verdict(i, "shop/client", "shop/web", 8080);
  assert.equal(
    formatVerdict(ok, "shop/client", "shop/web", 8080, "TCP"),
    [
      "shop/client → shop/web 8080/TCP: ALLOWED",
      "  egress of shop/client: allowed — selected by no policy, so not isolated for egress",
      "  ingress of shop/web: allowed by shop/web-in ingress[0] (from[0]; ports[0]) — selected by shop/web-in",
    ].join("\n"),
  );
  // With the index, the rule's peer and port are spelled out, the named port as resolved on the destination.
  assert.match(
    formatVerdict(ok, "shop/client", "shop/web", 8080, "TCP", i),
    /allowed by shop\/web-in ingress\[0\] \(from\[0\] pods \{app=client\} in namespace shop; ports\[0\] http\/TCP \(8080 on shop\/web\)\)/,
  );
  const denied = verdict(i, "other/client", "shop/web", 8080);
  assert.match(
    formatVerdict(denied, "other/client", "shop/web", 8080, "TCP"),
    /ingress of shop\/web: DENIED — isolated for ingress \(selected by shop\/web-in\) and no rule of them matches/,
  );
});

describe("invalid policies are rejected with file:line and a fix", () => {
  const cases: [string, string, RegExp][] = [
    [
      "bad selector operator values",
      "podSelector: {matchExpressions: [{key: app, operator: In}]}",
      /bad\.yaml:\d+.*must be specified when `operator` is 'In' or 'NotIn'/s,
    ],
    [
      "bad CIDR",
      "podSelector: {}\ningress: [{from: [{ipBlock: {cidr: 10.0.0.300/8}}]}]",
      /bad\.yaml:\d+.*10\.0\.0\.300/s,
    ],
    [
      "except outside cidr",
      "podSelector: {}\ningress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [192.168.0.0/16]}}]}]",
      /must be a strict subset of `cidr`/,
    ],
    [
      "bad port",
      "podSelector: {}\ningress: [{ports: [{port: 70000}]}]",
      /bad\.yaml:\d+.*invalid port 70000/s,
    ],
    [
      "endPort without port",
      "podSelector: {}\ningress: [{ports: [{endPort: 90}]}]",
      /bad\.yaml:\d+.*may not be specified when `port` is not specified/s,
    ],
    [
      "endPort before port",
      "podSelector: {}\ningress: [{ports: [{port: 90, endPort: 80}]}]",
      /must be greater than or equal to `port`/,
    ],
    ["missing podSelector", "ingress: []", /bad\.yaml:\d+.*podSelector: \{\}/s],
  ];
  for (const [name, spec, message] of cases) {
    test(name, () => {
      const loaded = loadManifestSources([{ file: "bad.yaml", text: `${BASE}---\n${np("bad", spec)}` }]);
      const errors = loaded.diagnostics.filter((d) => d.severity === "error").map(formatDiagnostic);
      assert.ok(errors.length > 0, "rejected");
      assert.match(errors.join("\n"), message);
    });
  }
});
