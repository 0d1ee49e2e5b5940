/**
 * The upstream Kubernetes e2e NetworkPolicy suite (test/e2e/network/netpol/network_policy.go) as data:
 * its model (namespaces x, y, z; pods a, b, c in each, labelled pod=<name>; ports 80 and 81 with named
 * ports serve-<port>-<proto>; a Service s-<ns>-<pod> per pod), and each scenario's policies, label
 * changes and expected truth tables. Expectations are built with a port of upstream's Reachability
 * helper (reachability.go), the same calls as upstream — never with podnet's own evaluator.
 *
 * Used by the lab conformance test (real packets) and by the unit test of the static evaluator.
 */
import type { Protocol } from "../api/types.js";

export const NAMESPACES = ["x", "y", "z"] as const;
export const POD_NAMES = ["a", "b", "c"] as const;
export const PORTS = [80, 81] as const;
export const PROTOCOLS = ["TCP", "UDP"] as const;
export const ALL_PODS: string[] = NAMESPACES.flatMap((ns) => POD_NAMES.map((p) => `${ns}/${p}`));
const NS_LABEL = "kubernetes.io/metadata.name";

/** upstream Peer: an empty namespace or pod matches any. */
export interface Peer {
  namespace?: string;
  pod?: string;
}

function peerMatches(peer: Peer, pod: string): boolean {
  const [ns, name] = pod.split("/");
  return (!peer.namespace || peer.namespace === ns) && (!peer.pod || peer.pod === name);
}

/** upstream Reachability's Expected truth table and its setters. */
export class Reachability {
  readonly expected = new Map<string, boolean>();
  constructor(
    readonly pods: readonly string[] = ALL_PODS,
    defaultExpectation = true,
  ) {
    for (const f of pods) for (const t of pods) this.expected.set(`${f}|${t}`, defaultExpectation);
  }
  expect(from: string, to: string, connected: boolean): this {
    this.expected.set(`${from}|${to}`, connected);
    return this;
  }
  /** Everything into `pod`. */
  expectAllIngress(pod: string, connected: boolean): this {
    for (const f of this.pods) this.expect(f, pod, connected);
    return this;
  }
  /** Everything out of `pod`. */
  expectAllEgress(pod: string, connected: boolean): this {
    for (const t of this.pods) this.expect(pod, t, connected);
    return this;
  }
  expectPeer(from: Peer, to: Peer, connected: boolean): this {
    for (const f of this.pods)
      if (peerMatches(from, f))
        for (const t of this.pods) if (peerMatches(to, t)) this.expect(f, t, connected);
    return this;
  }
  get(from: string, to: string): boolean {
    return this.expected.get(`${from}|${to}`) ?? false;
  }
}

type Selector = {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
};
type PolicyPeer = {
  podSelector?: Selector;
  namespaceSelector?: Selector;
  ipBlock?: { cidr: string; except?: string[] };
};
type PolicyPort = { protocol?: Protocol; port?: number | string; endPort?: number };
type IngressRule = { from?: PolicyPeer[]; ports?: PolicyPort[] };
type EgressRule = { to?: PolicyPeer[]; ports?: PolicyPort[] };
export type PolicyManifest = {
  apiVersion: "networking.k8s.io/v1";
  kind: "NetworkPolicy";
  metadata: { name: string; namespace: string };
  spec: {
    podSelector: Selector;
    policyTypes?: ("Ingress" | "Egress")[];
    ingress?: IngressRule[];
    egress?: EgressRule[];
  };
};

/** upstream GenNetworkPolicy + SetSpecIngressRules / SetSpecEgressRules (each adds its policy type). */
function policy(
  namespace: string,
  name: string,
  podSelector: Selector,
  rules: { ingress?: IngressRule[]; egress?: EgressRule[]; policyTypes?: ("Ingress" | "Egress")[] },
): PolicyManifest {
  const spec: PolicyManifest["spec"] = { podSelector };
  const types: ("Ingress" | "Egress")[] = [];
  if (rules.ingress) {
    spec.ingress = rules.ingress;
    types.push("Ingress");
  }
  if (rules.egress) {
    spec.egress = rules.egress;
    types.push("Egress");
  }
  spec.policyTypes = rules.policyTypes ?? types;
  return { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name, namespace }, spec };
}

const labels = (l: Record<string, string>): Selector => ({ matchLabels: l });
const podIs = (p: string): Selector => labels({ pod: p });
const nsIs = (ns: string): Selector => labels({ [NS_LABEL]: ns });

export interface ConformanceContext {
  /** The pod's (first) IP. */
  ip(pod: string): string;
}

export type ConformanceStep =
  | { kind: "apply"; policies: (ctx: ConformanceContext) => PolicyManifest[] }
  | { kind: "delete-policies" }
  | { kind: "label-pod"; pod: string; labels: Record<string, string> }
  | { kind: "label-namespace"; namespace: string; labels: Record<string, string> }
  | { kind: "check"; port: number; protocol: Protocol; expected: Reachability };

export interface ConformanceScenario {
  name: string;
  steps: ConformanceStep[];
}

const apply = (...ps: PolicyManifest[]): ConformanceStep => ({ kind: "apply", policies: () => ps });
const applyWith = (f: (ctx: ConformanceContext) => PolicyManifest[]): ConformanceStep => ({
  kind: "apply",
  policies: f,
});
const check = (port: number, protocol: Protocol, expected: Reachability): ConformanceStep => ({
  kind: "check",
  port,
  protocol,
  expected,
});
const r = () => new Reachability();

/** upstream makeLargeCIDRForIP: the /4 that holds the address. */
export function largeCidrFor(ip: string): string {
  const first = Number(ip.split(".")[0]);
  return `${first & 0xf0}.0.0.0/4`;
}

function tcpScenarios(): ConformanceScenario[] {
  const s: ConformanceScenario[] = [];
  const add = (name: string, ...steps: ConformanceStep[]) => s.push({ name, steps });
  const TCP = "TCP" as const;

  add(
    "should support a 'default-deny-ingress' policy",
    apply(policy("x", "deny-ingress", {}, { ingress: [] })),
    check(80, TCP, r().expectPeer({}, { namespace: "x" }, false)),
  );
  add(
    "should support a 'default-deny-all' policy",
    apply(policy("x", "deny-all", {}, { ingress: [], egress: [] })),
    check(80, TCP, r().expectPeer({}, { namespace: "x" }, false).expectPeer({ namespace: "x" }, {}, false)),
  );
  add(
    "should enforce policy to allow traffic from pods within server namespace based on PodSelector",
    apply(policy("x", "x-a-allows-x-b", podIs("a"), { ingress: [{ from: [{ podSelector: podIs("b") }] }] })),
    check(80, TCP, r().expectAllIngress("x/a", false).expect("x/b", "x/a", true)),
  );
  add(
    "should enforce policy to allow ingress traffic for a target",
    apply(
      policy("x", "deny-all", {}, { ingress: [] }),
      policy("x", "allow-all-to-a", podIs("a"), {
        ingress: [{ from: [{ podSelector: {}, namespaceSelector: {} }] }],
      }),
    ),
    check(
      80,
      TCP,
      r().expectAllIngress("x/a", true).expectAllIngress("x/b", false).expectAllIngress("x/c", false),
    ),
  );
  add(
    "should enforce policy to allow ingress traffic from pods in all namespaces",
    apply(
      policy("x", "allow-from-another-ns", podIs("a"), {
        ingress: [{ from: [{ namespaceSelector: { matchLabels: {} } }] }],
      }),
    ),
    check(80, TCP, r()),
  );
  add(
    "should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector",
    apply(
      policy("x", "allow-client-a-via-ns-selector", podIs("a"), {
        ingress: [{ from: [{ namespaceSelector: nsIs("y") }] }],
      }),
    ),
    check(
      80,
      TCP,
      r()
        .expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false)
        .expectPeer({ namespace: "z" }, { namespace: "x", pod: "a" }, false),
    ),
  );
  add(
    "should enforce policy based on PodSelector with MatchExpressions",
    apply(
      policy("x", "x-a-allows-x-b", podIs("a"), {
        ingress: [
          { from: [{ podSelector: { matchExpressions: [{ key: "pod", operator: "In", values: ["b"] }] } }] },
        ],
      }),
    ),
    check(80, TCP, r().expectAllIngress("x/a", false).expect("x/b", "x/a", true)),
  );
  add(
    "should enforce policy based on NamespaceSelector with MatchExpressions",
    apply(
      policy("x", "allow-ns-y-match-selector", podIs("a"), {
        ingress: [
          {
            from: [
              { namespaceSelector: { matchExpressions: [{ key: NS_LABEL, operator: "In", values: ["y"] }] } },
            ],
          },
        ],
      }),
    ),
    check(
      80,
      TCP,
      r()
        .expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false)
        .expectPeer({ namespace: "z" }, { namespace: "x", pod: "a" }, false),
    ),
  );
  const notInX = { matchExpressions: [{ key: NS_LABEL, operator: "NotIn", values: ["x"] }] };
  add(
    "should enforce policy based on PodSelector or NamespaceSelector",
    apply(
      policy("x", "allow-ns-y-match-selector", podIs("a"), {
        ingress: [{ from: [{ namespaceSelector: notInX }, { podSelector: podIs("b") }] }],
      }),
    ),
    check(80, TCP, r().expect("x/a", "x/a", false).expect("x/c", "x/a", false)),
  );
  add(
    "should enforce policy based on PodSelector and NamespaceSelector",
    apply(
      policy("x", "allow-ns-y-podselector-and-nsselector", podIs("a"), {
        ingress: [{ from: [{ namespaceSelector: notInX, podSelector: podIs("b") }] }],
      }),
    ),
    check(80, TCP, r().expectAllIngress("x/a", false).expect("y/b", "x/a", true).expect("z/b", "x/a", true)),
  );
  add(
    "should enforce policy based on Multiple PodSelectors and NamespaceSelectors",
    apply(
      policy("x", "allow-ns-y-z-pod-b-c", podIs("a"), {
        ingress: [
          {
            from: [
              {
                namespaceSelector: notInX,
                podSelector: { matchExpressions: [{ key: "pod", operator: "In", values: ["b", "c"] }] },
              },
            ],
          },
        ],
      }),
    ),
    check(
      80,
      TCP,
      r()
        .expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false)
        .expect("y/a", "x/a", false)
        .expect("z/a", "x/a", false),
    ),
  );
  add(
    "should enforce policy based on any PodSelectors",
    apply(
      policy("x", "allow-ns-x-pod-b-c", podIs("a"), {
        ingress: [{ from: [{ podSelector: podIs("b") }, { podSelector: podIs("c") }] }],
      }),
    ),
    check(80, TCP, r().expectAllIngress("x/a", false).expect("x/b", "x/a", true).expect("x/c", "x/a", true)),
  );
  add(
    "should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector",
    apply(
      policy("x", "allow-ns-y-pod-a-via-namespace-pod-selector", podIs("a"), {
        ingress: [{ from: [{ namespaceSelector: nsIs("y"), podSelector: podIs("a") }] }],
      }),
    ),
    check(80, TCP, r().expectAllIngress("x/a", false).expect("y/a", "x/a", true)),
  );
  const port81FromY = policy("x", "allow-client-a-via-ns-selector", podIs("a"), {
    ingress: [{ from: [{ namespaceSelector: nsIs("y") }], ports: [{ port: 81, protocol: "TCP" }] }],
  });
  const allow81 = () =>
    r()
      .expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false)
      .expectPeer({ namespace: "y" }, { namespace: "x", pod: "a" }, true)
      .expectPeer({ namespace: "z" }, { namespace: "x", pod: "a" }, false);
  add("should enforce policy based on Ports", apply(port81FromY), check(81, TCP, allow81()));
  add(
    "should enforce multiple, stacked policies with overlapping podSelectors",
    apply(port81FromY),
    check(81, TCP, allow81()),
    check(80, TCP, r().expectAllIngress("x/a", false)),
    apply(
      policy("x", "allow-client-a-via-ns-selector-80", podIs("a"), {
        ingress: [{ from: [{ namespaceSelector: nsIs("y") }], ports: [{ port: 80, protocol: "TCP" }] }],
      }),
    ),
    check(80, TCP, allow81()),
  );
  add(
    "should support allow-all policy",
    apply(policy("x", "allow-all", {}, { ingress: [{}] })),
    check(80, TCP, r()),
    check(81, TCP, r()),
  );
  add(
    "should allow ingress access on one named port",
    apply(policy("x", "allow-all", {}, { ingress: [{ ports: [{ port: "serve-81-tcp" }] }] })),
    check(81, TCP, r()),
    check(80, TCP, r().expectPeer({}, { namespace: "x" }, false)),
  );
  add(
    "should allow ingress access from namespace on one named port",
    apply(
      policy("x", "allow-client-a-via-ns-selector-80", podIs("a"), {
        ingress: [
          { from: [{ namespaceSelector: nsIs("y") }], ports: [{ port: "serve-80-tcp", protocol: "TCP" }] },
        ],
      }),
    ),
    check(
      80,
      TCP,
      r()
        .expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false)
        .expectPeer({ namespace: "z" }, { namespace: "x", pod: "a" }, false),
    ),
    check(81, TCP, r().expectAllIngress("x/a", false)),
  );
  add(
    "should allow egress access on one named port",
    apply(policy("x", "allow-egress", {}, { egress: [{ ports: [{ port: "serve-80-tcp" }] }] })),
    check(80, TCP, r()),
    check(81, TCP, r().expectPeer({ namespace: "x" }, {}, false)),
  );
  const mutate = policy("x", "allow-all-mutate-to-deny-all", {}, { ingress: [{}] });
  add(
    "should enforce updated policy",
    apply(mutate),
    check(81, TCP, r()),
    apply({ ...mutate, spec: { ...mutate.spec, ingress: [] } }),
    check(81, TCP, r().expectPeer({}, { namespace: "x" }, false)),
  );
  add(
    "should allow ingress access from updated namespace",
    apply(
      policy("x", "allow-client-a-via-ns-selector", podIs("a"), {
        ingress: [{ from: [{ namespaceSelector: labels({ ns2: "updated" }) }] }],
      }),
    ),
    check(80, TCP, r().expectAllIngress("x/a", false)),
    { kind: "label-namespace", namespace: "y", labels: { ns2: "updated" } },
    check(80, TCP, r().expectAllIngress("x/a", false).expectPeer({ namespace: "y" }, {}, true)),
  );
  add(
    "should allow ingress access from updated pod",
    apply(
      policy("x", "allow-client-a-via-pod-selector", podIs("a"), {
        ingress: [{ from: [{ podSelector: labels({ pod: "b", pod2: "updated" }) }] }],
      }),
    ),
    check(80, TCP, r().expectAllIngress("x/a", false)),
    { kind: "label-pod", pod: "x/b", labels: { pod: "b", pod2: "updated" } },
    check(80, TCP, r().expectAllIngress("x/a", false).expect("x/b", "x/a", true)),
  );
  add(
    "should deny ingress from pods on other namespaces",
    apply(
      policy("x", "deny-empty-policy", {}, { ingress: [{ from: [{ podSelector: { matchLabels: {} } }] }] }),
    ),
    check(
      80,
      TCP,
      r()
        .expectPeer({ namespace: "y" }, { namespace: "x" }, false)
        .expectPeer({ namespace: "z" }, { namespace: "x" }, false),
    ),
  );
  add(
    "should deny ingress access to updated pod",
    apply(policy("x", "deny-ingress-via-label-selector", labels({ target: "isolated" }), { ingress: [] })),
    check(80, TCP, r()),
    { kind: "label-pod", pod: "x/a", labels: { pod: "a", target: "isolated" } },
    check(80, TCP, r().expectAllIngress("x/a", false)),
  );
  add(
    "should deny egress from pods based on PodSelector",
    apply(policy("x", "deny-egress-pod-a", podIs("a"), { egress: [] })),
    check(80, TCP, r().expectAllEgress("x/a", false)),
  );
  add(
    "should deny egress from all pods in a namespace",
    apply(policy("x", "deny-egress-ns-x", {}, { egress: [] })),
    check(80, TCP, r().expectPeer({ namespace: "x" }, {}, false)),
  );
  const ingressEgress = policy("x", "allow-client-a-via-pod-selector", podIs("a"), {
    ingress: [{ from: [{ podSelector: podIs("b") }] }],
    egress: [{ ports: [{ port: 80 }] }],
    policyTypes: ["Egress", "Ingress"],
  });
  add(
    "should work with Ingress, Egress specified together",
    apply(ingressEgress),
    check(80, TCP, r().expectAllIngress("x/a", false).expect("x/b", "x/a", true)),
    check(
      81,
      TCP,
      r().expectAllIngress("x/a", false).expectAllEgress("x/a", false).expect("x/b", "x/a", true),
    ),
  );
  const fromXa = [{ from: [{ namespaceSelector: nsIs("x"), podSelector: podIs("a") }] }];
  add(
    "should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)",
    apply(
      policy("x", "allow-to-ns-y-pod-a", podIs("a"), {
        egress: [{ to: [{ namespaceSelector: nsIs("y"), podSelector: podIs("a") }] }],
      }),
      policy("y", "allow-from-xa-on-ya-match-selector", podIs("a"), { ingress: fromXa }),
      policy("y", "allow-from-xa-on-yb-match-selector", podIs("b"), { ingress: fromXa }),
    ),
    check(
      80,
      TCP,
      r()
        .expectPeer({ namespace: "x", pod: "a" }, {}, false)
        .expectPeer({}, { namespace: "y", pod: "a" }, false)
        .expectPeer({ namespace: "x", pod: "a" }, { namespace: "y", pod: "a" }, true)
        .expectPeer({}, { namespace: "y", pod: "b" }, false),
    ),
  );
  add(
    "should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector",
    apply(
      policy("x", "allow-to-ns-y-pod-a", podIs("a"), {
        egress: [{ to: [{ namespaceSelector: nsIs("y"), podSelector: podIs("a") }] }],
      }),
    ),
    check(80, TCP, r().expectAllEgress("x/a", false).expect("x/a", "y/a", true)),
  );
  add(
    "should enforce ingress policy allowing any port traffic to a server on a specific protocol",
    apply(policy("x", "allow-ingress-by-proto", podIs("a"), { ingress: [{ ports: [{ protocol: "TCP" }] }] })),
    check(80, TCP, r()),
    check(80, "UDP", r().expectPeer({}, { namespace: "x", pod: "a" }, false)),
  );
  add(
    "should enforce multiple ingress policies with ingress allow-all policy taking precedence",
    apply(policy("x", "allow-ingress-port-80", {}, { ingress: [{ ports: [{ port: 80 }] }] })),
    check(81, TCP, r().expectPeer({}, { namespace: "x" }, false)),
    apply(policy("x", "allow-ingress", {}, { ingress: [{}] })),
    check(81, TCP, r()),
  );
  add(
    "should enforce multiple egress policies with egress allow-all policy taking precedence",
    apply(policy("x", "allow-egress-port-80", {}, { egress: [{ ports: [{ port: 80 }] }] })),
    check(81, TCP, r().expectPeer({ namespace: "x" }, {}, false)),
    apply(policy("x", "allow-egress", {}, { egress: [{}] })),
    check(81, TCP, r()),
  );
  add(
    "should stop enforcing policies after they are deleted",
    apply(policy("x", "deny-all", {}, { ingress: [], egress: [] })),
    check(80, TCP, r().expectPeer({ namespace: "x" }, {}, false).expectPeer({}, { namespace: "x" }, false)),
    { kind: "delete-policies" },
    check(80, TCP, r()),
  );
  add(
    "should allow egress access to server in CIDR block",
    applyWith((ctx) => [
      policy("x", "allow-client-a-via-cidr-egress-rule", podIs("a"), {
        egress: [{ to: [{ ipBlock: { cidr: `${ctx.ip("y/b")}/32` } }] }],
      }),
    ]),
    check(80, TCP, r().expectAllEgress("x/a", false).expect("x/a", "y/b", true)),
  );
  const exceptB = (ctx: ConformanceContext) =>
    policy("x", "allow-client-a-via-cidr-egress-rule", podIs("a"), {
      egress: [{ to: [{ ipBlock: { cidr: largeCidrFor(ctx.ip("x/b")), except: [`${ctx.ip("x/b")}/32`] } }] }],
    });
  add(
    "should enforce except clause while egress access to server in CIDR block",
    applyWith((ctx) => [exceptB(ctx)]),
    check(80, TCP, r().expect("x/a", "x/b", false)),
  );
  add(
    "should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed",
    applyWith((ctx) => [exceptB(ctx)]),
    check(80, TCP, r().expect("x/a", "x/b", false)),
    // upstream "updates" with a policy of the same name: it replaces the first one.
    applyWith((ctx) => [
      policy("x", "allow-client-a-via-cidr-egress-rule", podIs("a"), {
        egress: [{ to: [{ ipBlock: { cidr: `${ctx.ip("x/b")}/32` } }] }],
      }),
    ]),
    check(80, TCP, r().expectAllEgress("x/a", false).expect("x/a", "x/b", true)),
  );
  add(
    "should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector",
    apply(policy("x", "allow-egress-for-target", podIs("a"), { egress: [{}] })),
    check(80, TCP, r()),
    apply(policy("x", "deny-ingress-via-label-selector", podIs("a"), { ingress: [] })),
    check(80, TCP, r().expectAllIngress("x/a", false)),
  );
  add(
    "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP",
    apply(
      policy("x", "deny-ingress", {}, { ingress: [] }),
      policy("x", "allow-only-sctp-ingress-on-port-81", podIs("a"), {
        ingress: [{ ports: [{ port: 81, protocol: "SCTP" }] }],
      }),
    ),
    check(81, TCP, r().expectPeer({}, { namespace: "x" }, false)),
  );
  add(
    "should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP",
    apply(
      policy("x", "allow-only-sctp-ingress-on-port-80", podIs("a"), {
        ingress: [{ ports: [{ port: 80, protocol: "SCTP" }] }],
      }),
    ),
    check(81, TCP, r().expectAllIngress("x/a", false)),
  );
  add(
    "should not allow access by TCP when a policy specifies only UDP",
    apply(
      policy("x", "allow-only-udp-ingress-on-port-81", podIs("a"), {
        ingress: [{ ports: [{ port: 81, protocol: "UDP" }] }],
      }),
    ),
    check(81, TCP, r().expectAllIngress("x/a", false)),
  );
  add(
    "should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label",
    apply(
      policy("x", "allow-client-a-via-ns-selector-for-immutable-ns-label", podIs("a"), {
        ingress: [{ from: [{ namespaceSelector: nsIs("y") }] }],
      }),
    ),
    check(
      80,
      TCP,
      r()
        .expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false)
        .expectPeer({ namespace: "z" }, { namespace: "x", pod: "a" }, false),
    ),
  );
  add(
    "should enforce policy based on NamespaceSelector with MatchExpressions using default ns label",
    apply(
      policy("x", "allow-ns-y-match-selector-for-immutable-ns-label", podIs("a"), {
        egress: [
          {
            to: [
              {
                namespaceSelector: {
                  matchExpressions: [{ key: NS_LABEL, operator: "NotIn", values: ["y"] }],
                },
              },
            ],
          },
        ],
      }),
    ),
    check(80, TCP, r().expectPeer({ namespace: "x", pod: "a" }, { namespace: "y" }, false)),
  );
  return s.map((x) => ({ ...x, name: `TCP: ${x.name}` }));
}

function protocolScenarios(protocol: "UDP" | "SCTP"): ConformanceScenario[] {
  return [
    {
      name: `${protocol}: should support a 'default-deny-ingress' policy`,
      steps: [
        apply(policy("x", "deny-all", {}, { ingress: [] })),
        check(80, protocol, r().expectPeer({}, { namespace: "x" }, false)),
      ],
    },
    {
      name: `${protocol}: should enforce policy based on Ports`,
      steps: [
        apply(
          policy("x", "allow-ingress-on-port-81-ns-x", podIs("a"), {
            ingress: [{ from: [{ namespaceSelector: nsIs("y") }], ports: [{ port: 81, protocol }] }],
          }),
        ),
        check(
          81,
          protocol,
          r()
            .expectPeer({ namespace: "x" }, { namespace: "x", pod: "a" }, false)
            .expectPeer({ namespace: "z" }, { namespace: "x", pod: "a" }, false),
        ),
      ],
    },
    {
      name: `${protocol}: should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector`,
      steps: [
        apply(
          policy("x", "allow-ns-y-pod-a-via-namespace-pod-selector", podIs("a"), {
            ingress: [{ from: [{ namespaceSelector: nsIs("y"), podSelector: podIs("a") }] }],
          }),
        ),
        check(80, protocol, r().expectAllIngress("x/a", false).expect("y/a", "x/a", true)),
      ],
    },
  ];
}

/** Every TCP and UDP scenario of the upstream suite, in its order. */
export function conformanceScenarios(): ConformanceScenario[] {
  return [...tcpScenarios(), ...protocolScenarios("UDP")];
}

/** The SCTP scenarios: this kernel has no SCTP sockets, so they cannot be probed here. */
export function sctpScenarios(): ConformanceScenario[] {
  return protocolScenarios("SCTP");
}

/** The upstream model as manifests: a cluster, namespaces x/y/z, pods a/b/c on `nodes` nodes, Services. */
export function conformanceManifests(
  options: { nodes?: number; podCIDR?: string; serviceCIDR?: string; nodeCIDR?: string } = {},
): string {
  const nodes = options.nodes ?? 2;
  const docs: string[] = [
    `apiVersion: podnet.dev/v1alpha1
kind: Cluster
metadata: {name: netpol}
spec:
  nodeCIDR: ${options.nodeCIDR ?? "172.31.70.0/24"}
  podCIDRs: [${options.podCIDR ?? "10.70.0.0/16"}]
  serviceCIDRs: [${options.serviceCIDR ?? "10.71.0.0/16"}]
  nodeCIDRMaskSize: 24`,
  ];
  for (let n = 1; n <= nodes; n++) docs.push(`apiVersion: v1\nkind: Node\nmetadata: {name: n${n}}`);
  let i = 0;
  for (const ns of NAMESPACES) {
    docs.push(`apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}}`);
    for (const pod of POD_NAMES) {
      const node = `n${(i++ % nodes) + 1}`;
      const containers = PORTS.flatMap((port) =>
        PROTOCOLS.map(
          (proto) =>
            `    - name: cont-${port}-${proto.toLowerCase()}\n      image: agnhost\n      ports: [{containerPort: ${port}, name: serve-${port}-${proto.toLowerCase()}, protocol: ${proto}}]`,
        ),
      );
      docs.push(
        `apiVersion: v1\nkind: Pod\nmetadata: {name: ${pod}, namespace: ${ns}, labels: {pod: ${pod}}}\nspec:\n  nodeName: ${node}\n  containers:\n${containers.join("\n")}`,
      );
      const ports = PORTS.flatMap((port) =>
        PROTOCOLS.map(
          (proto) =>
            `{name: service-port-${proto.toLowerCase()}-${port}, protocol: ${proto}, port: ${port}, targetPort: ${port}}`,
        ),
      );
      docs.push(
        `apiVersion: v1\nkind: Service\nmetadata: {name: s-${ns}-${pod}, namespace: ${ns}}\nspec:\n  selector: {pod: ${pod}}\n  ports: [${ports.join(", ")}]`,
      );
    }
  }
  return `${docs.join("\n---\n")}\n`;
}
