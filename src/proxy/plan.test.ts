import assert from "node:assert/strict";
import { test } from "node:test";
import { loadManifestText } from "../api/index.js";
import { planAddresses } from "../plan/index.js";
import type { ClusterPlan } from "../plan/types.js";
import { elementText } from "./nft-model.js";
import { ProxyPlanner, type ProxyRuleset, planProxyRules, proxyInputFor, proxySyncScript } from "./plan.js";
import { syntheticProxyInput, withExtraService, withoutLastEndpoint } from "./synthetic.js";

const CLUSTER = `apiVersion: podnet.dev/v1alpha1
kind: Cluster
metadata: {name: c}
spec: {nodes: 2, nodeCIDR: 172.18.0.0/24, loadBalancerCIDRs: [198.51.100.0/24]}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: shop, labels: {app: web}}
spec: {nodeName: node-1, containers: [{name: c, ports: [{name: http, containerPort: 8080}, {name: dns, containerPort: 5353, protocol: UDP}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: shop, labels: {app: web}}
spec: {nodeName: node-2, containers: [{name: c, ports: [{name: http, containerPort: 9090}, {name: dns, containerPort: 5353, protocol: UDP}]}]}
`;

function rules(yaml: string, node = "node-1", cluster = CLUSTER): { plan: ClusterPlan; r: ProxyRuleset } {
  const loaded = loadManifestText(`${cluster}---\n${yaml}`, "t.yaml");
  assert.deepEqual(
    loaded.diagnostics.filter((d) => d.severity === "error").map((d) => d.message),
    [],
  );
  const plan = planAddresses(loaded.state).clusters[0] as ClusterPlan;
  return { plan, r: planProxyRules(proxyInputFor(loaded.state, plan, node)) };
}

function set(r: ProxyRuleset, name: string, family: "ip" | "ip6" = "ip"): string[] {
  const table = r.tables.find((t) => t.family === family);
  const s = table?.sets.find((x) => x.name === name);
  assert.ok(s, `no set ${name} in ${family}`);
  return s.elements.map(elementText);
}

function chain(r: ProxyRuleset, name: string, family: "ip" | "ip6" = "ip"): string[] {
  const c = r.tables.find((t) => t.family === family)?.chains.find((x) => x.name === name);
  assert.ok(c, `no chain ${name} in ${family}`);
  return c.rules;
}

const ip = (plan: ClusterPlan, pod: string) => plan.pods.find((p) => p.name === pod)?.ips[0] as string;
const vip = (plan: ClusterPlan, svc: string) =>
  plan.services.find((s) => s.name === svc)?.clusterIPs[0] as string;

test("ClusterIP with several ports: one services element and one slot per endpoint, per port", () => {
  const { plan, r } = rules(`
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}, {name: dns, port: 53, protocol: UDP, targetPort: dns}]
`);
  const v = vip(plan, "web");
  assert.deepEqual(set(r, "services"), [
    `${v} . tcp . 80 comment "shop/web:http clusterIP" : goto endpoints-2`,
    `${v} . udp . 53 comment "shop/web:dns clusterIP" : goto endpoints-2`,
  ]);
  // The named targetPort resolved per pod: a serves http on 8080, b on 9090.
  assert.deepEqual(set(r, "tcp-backends"), [
    `${v} . 80 . 0 : ${ip(plan, "a")} . 8080`,
    `${v} . 80 . 1 : ${ip(plan, "b")} . 9090`,
  ]);
  assert.deepEqual(set(r, "udp-backends"), [
    `${v} . 53 . 0 : ${ip(plan, "a")} . 5353`,
    `${v} . 53 . 1 : ${ip(plan, "b")} . 5353`,
  ]);
  assert.deepEqual(chain(r, "endpoints-2"), [
    "meta l4proto tcp dnat ip to ip daddr . th dport . numgen random mod 2 map @tcp-backends",
    "meta l4proto udp dnat ip to ip daddr . th dport . numgen random mod 2 map @udp-backends",
  ]);
  assert.deepEqual(set(r, "cluster-ips"), [`${v} comment "shop/web"`]);
  assert.deepEqual(set(r, "hairpin-endpoints"), [`${ip(plan, "a")} . ${ip(plan, "a")}`], "a is node-1's");
  assert.deepEqual(
    r.entries.map(
      (e) => `${e.kind} ${e.address}:${e.port}/${e.protocol} -> ${e.endpoints.join(",")} ${e.source}`,
    ),
    [
      `clusterIP ${v}:80/TCP -> ${ip(plan, "a")}:8080,${ip(plan, "b")}:9090 masqueraded-from-outside`,
      `clusterIP ${v}:53/UDP -> ${ip(plan, "a")}:5353,${ip(plan, "b")}:5353 masqueraded-from-outside`,
    ],
  );
});

test("no ready endpoint: not in the services map, so the post-DNAT check rejects it (NodePort too)", () => {
  const { plan, r } = rules(`
apiVersion: v1
kind: Service
metadata: {name: none, namespace: shop}
spec: {type: NodePort, selector: {app: nothing}, ports: [{port: 80, nodePort: 30080}]}
`);
  const node = plan.nodes[0]?.address;
  assert.deepEqual(set(r, "services"), []);
  assert.deepEqual(set(r, "cluster-ips"), [`${vip(plan, "none")} comment "shop/none"`]);
  assert.deepEqual(set(r, "no-endpoint-entries"), [`${node} . tcp . 30080 comment "shop/none:80 nodePort"`]);
  assert.deepEqual(chain(r, "unserved"), [
    "ip daddr . meta l4proto . th dport @no-endpoint-entries reject",
    "ip daddr @cluster-ips reject",
    "ip daddr @service-cidrs drop",
  ]);
  assert.deepEqual(
    r.entries.map((e) => e.ifNoEndpoint),
    ["reject", "reject"],
  );
});

test("terminating-but-serving endpoints are used only when nothing is ready", () => {
  const slices = (readyB: boolean) => `
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec: {ports: [{port: 5432}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: db, namespace: shop, labels: {kubernetes.io/service-name: db}}
addressType: IPv4
endpoints:
  - {addresses: [192.0.2.1], conditions: {ready: false, serving: true, terminating: true}}
  - {addresses: [192.0.2.2], conditions: {ready: ${readyB}, serving: ${readyB}, terminating: false}}
  - {addresses: [192.0.2.3], conditions: {ready: false, serving: false, terminating: true}}
ports: [{port: 5432}]
`;
  assert.deepEqual(rules(slices(true)).r.entries[0]?.endpoints, ["192.0.2.2:5432"]);
  assert.deepEqual(rules(slices(false)).r.entries[0]?.endpoints, ["192.0.2.1:5432"]);
});

test("NodePort, load-balancer IP and external IP with externalTrafficPolicy Cluster: masqueraded", () => {
  const { plan, r } = rules(`
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: shop}
spec:
  type: LoadBalancer
  selector: {app: web}
  externalIPs: [192.0.2.50]
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
`);
  const lb = plan.services[0]?.loadBalancerIPs[0] as string;
  const node = plan.nodes[0]?.address;
  const keys = [`${node} . tcp . 30080`, `${lb} . tcp . 80`, `192.0.2.50 . tcp . 80`];
  assert.deepEqual(
    set(r, "masquerade-entries").map((e) => e.split(" comment")[0]),
    keys,
  );
  for (const k of keys)
    assert.ok(set(r, "services").some((e) => e.startsWith(`${k} `) && e.endsWith("goto endpoints-2")));
  assert.deepEqual(set(r, "local-policy-services"), []);
});

test("externalTrafficPolicy Local: outside clients reach this node's endpoints only, client IP kept", () => {
  const svc = `
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: shop}
spec: {type: NodePort, externalTrafficPolicy: Local, selector: {app: web}, ports: [{port: 80, targetPort: 8080, nodePort: 30080}]}
`;
  const one = rules(svc, "node-1");
  const node1 = one.plan.nodes[0]?.address;
  assert.deepEqual(set(one.r, "local-policy-services"), [
    `${node1} . tcp . 30080 comment "shop/lb:80 nodePort" : goto local-endpoints-1`,
  ]);
  assert.deepEqual(set(one.r, "tcp-local-backends"), [`${node1} . 30080 . 0 : ${ip(one.plan, "a")} . 8080`]);
  // Pods and the node itself still reach every endpoint (kube-proxy's short-circuit), client IP kept.
  assert.ok(set(one.r, "services")[1]?.endsWith("goto endpoints-2"));
  assert.deepEqual(set(one.r, "masquerade-entries"), []);
  assert.equal(one.r.entries[1]?.source, "kept");
  assert.deepEqual(chain(one.r, "services").slice(2, 4), [
    "fib saddr type local ip daddr . meta l4proto . th dport @local-policy-entries meta mark set meta mark | 0x4000",
    "ip saddr != @pod-cidrs fib saddr type != local ip daddr . meta l4proto . th dport vmap @local-policy-services",
  ]);
  // node-2 hosts b: its own endpoint.
  const two = rules(svc, "node-2");
  assert.ok(set(two.r, "local-policy-services")[0]?.endsWith("goto local-endpoints-1"));
  // No endpoint anywhere: rejected (as kube-proxy), not dropped.
  const none = rules(svc.replace("selector: {app: web}", "selector: {app: nobody}"), "node-2");
  assert.deepEqual(set(none.r, "local-policy-services"), []);
  assert.equal(set(none.r, "no-endpoint-entries").length, 1);
});

test("externalTrafficPolicy Local on a node without a local endpoint: drop", () => {
  const yaml = `
apiVersion: v1
kind: Pod
metadata: {name: c, namespace: shop, labels: {app: solo}}
spec: {nodeName: node-2, containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: solo, namespace: shop}
spec: {type: NodePort, externalTrafficPolicy: Local, internalTrafficPolicy: Local, selector: {app: solo}, ports: [{port: 80, nodePort: 30090}]}
`;
  const { plan, r } = rules(yaml, "node-1");
  const node = plan.nodes[0]?.address;
  assert.deepEqual(set(r, "local-policy-services"), [
    `${node} . tcp . 30090 comment "shop/solo:80 nodePort" : drop`,
  ]);
  // internalTrafficPolicy Local: the ClusterIP drops too on a node without an endpoint.
  assert.deepEqual(
    set(r, "services").filter((e) => e.includes("clusterIP")),
    [`${vip(plan, "solo")} . tcp . 80 comment "shop/solo:80 clusterIP" : drop`],
  );
  assert.equal(r.entries[0]?.ifNoEndpoint, "drop");
});

test("sessionAffinity ClientIP: a chain per service port, a timed set of clients per endpoint", () => {
  const { plan, r } = rules(`
apiVersion: v1
kind: Service
metadata: {name: s, namespace: shop}
spec:
  selector: {app: web}
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 300}}
  ports: [{port: 80, targetPort: 8080}]
`);
  const value = set(r, "services")[0] as string;
  const chainName = value.slice(value.indexOf("goto ") + 5);
  assert.match(chainName, /^sticky-[0-9a-f]{10}$/);
  const rulesOf = chain(r, chainName);
  const [a, b] = [ip(plan, "a"), ip(plan, "b")];
  const sets = rulesOf.slice(0, 2).map((rule) => /@(sticky-[0-9a-f]+)/.exec(rule)?.[1] as string);
  assert.deepEqual(rulesOf, [
    `meta l4proto tcp ip saddr @${sets[0]} update @${sets[0]} { ip saddr } dnat ip to ${a}:8080`,
    `meta l4proto tcp ip saddr @${sets[1]} update @${sets[1]} { ip saddr } dnat ip to ${b}:8080`,
    `meta l4proto tcp numgen random mod 2 0 update @${sets[0]} { ip saddr } dnat ip to ${a}:8080`,
    `meta l4proto tcp update @${sets[1]} { ip saddr } dnat ip to ${b}:8080`,
  ]);
  const table = r.tables[0];
  assert.deepEqual(table?.sets.find((s) => s.name === sets[0])?.spec, [
    "type ipv4_addr",
    "flags dynamic,timeout",
    "timeout 300s",
  ]);
  assert.equal(r.entries[0]?.affinitySeconds, 300);
});

test("loadBalancerSourceRanges: other sources are dropped before DNAT", () => {
  const { plan, r } = rules(`
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: shop}
spec: {type: LoadBalancer, selector: {app: web}, loadBalancerSourceRanges: [203.0.113.0/24], ports: [{port: 443, targetPort: 8080}]}
`);
  const lb = plan.services[0]?.loadBalancerIPs[0] as string;
  assert.deepEqual(set(r, "firewall-entries"), [`${lb} . tcp . 443 comment "shop/lb:443 loadBalancer"`]);
  assert.deepEqual(set(r, "firewall-allowed"), [`${lb} . tcp . 443 . 203.0.113.0/24`]);
  assert.deepEqual(chain(r, "filter-prerouting"), [
    "ip daddr . meta l4proto . th dport @firewall-entries ip daddr . meta l4proto . th dport . ip saddr != @firewall-allowed drop",
  ]);
});

test("SCTP ports get a clear diagnostic and no rules; headless and ExternalName are not proxied", () => {
  const { r } = rules(`
apiVersion: v1
kind: Service
metadata: {name: sig, namespace: shop}
spec: {selector: {app: web}, ports: [{name: s, port: 3868, protocol: SCTP}, {name: t, port: 3869}]}
---
apiVersion: v1
kind: Service
metadata: {name: head, namespace: shop}
spec: {clusterIP: None, selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: shop}
spec: {type: ExternalName, externalName: example.com}
`);
  assert.deepEqual(
    r.diagnostics.map((d) => [d.code, d.object, d.path, d.message]),
    [
      [
        "proxy-sctp-unsupported",
        "Service shop/sig",
        "spec.ports[0]",
        "port 3868/SCTP: SCTP is not supported on this kernel (no SCTP module): this port is not proxied",
      ],
    ],
  );
  assert.deepEqual(
    r.entries.map((e) => `${e.owner} ${e.protocol}`),
    ["shop/sig:t TCP"],
  );
});

test("dual-stack: an ip and an ip6 table, each with its family's addresses", () => {
  const cluster = CLUSTER.replace(
    "spec: {nodes: 2,",
    "spec: {podCIDRs: [10.244.0.0/16, fd00:10:244::/56], serviceCIDRs: [10.96.0.0/12, fd00:10:96::/112], nodes: 2,",
  );
  const { plan, r } = rules(
    `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {ipFamilyPolicy: RequireDualStack, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
`,
    "node-1",
    cluster,
  );
  assert.deepEqual(
    r.tables.map((t) => `${t.family} ${t.name}`),
    ["ip podnet-proxy", "ip6 podnet-proxy"],
  );
  const [v4, v6] = plan.services[0]?.clusterIPs ?? [];
  assert.ok(set(r, "services", "ip")[0]?.startsWith(`${v4} . tcp . 80`));
  assert.ok(set(r, "services", "ip6")[0]?.startsWith(`${v6} . tcp . 80`));
  assert.deepEqual(set(r, "pod-cidrs", "ip6"), ["fd00:10:244::/56"]);
  assert.match(r.text, /table ip6 podnet-proxy \{/);
  assert.match(chain(r, "endpoints-2", "ip6")[0] as string, /^meta l4proto tcp dnat ip6 to ip6 daddr/);
});

test("hostPort: the node's address and port go to the pod (and the pod may reach itself)", () => {
  const { plan, r } = rules(`
apiVersion: v1
kind: Pod
metadata: {name: h, namespace: shop}
spec: {nodeName: node-1, containers: [{name: c, ports: [{containerPort: 80, hostPort: 8088}]}]}
`);
  const node = plan.nodes[0]?.address;
  assert.deepEqual(set(r, "services"), [`${node} . tcp . 8088 comment "shop/h hostPort" : goto endpoints-1`]);
  assert.deepEqual(set(r, "tcp-backends"), [`${node} . 8088 . 0 : ${ip(plan, "h")} . 80`]);
  assert.ok(set(r, "hairpin-endpoints").includes(`${ip(plan, "h")} . ${ip(plan, "h")}`));
  // Another node does not map it.
  assert.deepEqual(
    set(
      rules(
        `
apiVersion: v1
kind: Pod
metadata: {name: h, namespace: shop}
spec: {nodeName: node-1, containers: [{name: c, ports: [{containerPort: 80, hostPort: 8088}]}]}
`,
        "node-2",
      ).r,
      "services",
    ),
    [],
  );
});

test("the layout: no rule binds an anonymous set, and the rules do not grow with the number of services", () => {
  const shape = (n: number) => {
    const r = planProxyRules(syntheticProxyInput({ services: n, endpointsPerService: 3 }));
    const table = r.tables[0];
    assert.ok(table);
    // The only braces allowed are a dynamic set's update key: `update @sticky-… { ip saddr }`.
    for (const c of table.chains)
      for (const rule of c.rules)
        assert.doesNotMatch(rule.replace(/update @\S+ \{ ip6? saddr \}/g, ""), /[{}]/, `${c.name}: ${rule}`);
    return { chains: table.chains.length, rules: table.chains.reduce((k, c) => k + c.rules.length, 0) };
  };
  assert.deepEqual(shape(10), shape(2000));
});

test("the sync script replaces both families' tables in one transaction", () => {
  const r = planProxyRules(syntheticProxyInput({ services: 1, endpointsPerService: 1 }));
  assert.match(
    proxySyncScript(r),
    /^add table ip podnet-proxy\ndelete table ip podnet-proxy\nadd table ip6 podnet-proxy\ndelete table ip6 podnet-proxy\ntable ip podnet-proxy \{/,
  );
});

test("ProxyPlanner: a re-plan replays unchanged Services and equals planning afresh", () => {
  const planner = new ProxyPlanner();
  const base = syntheticProxyInput({ services: 300, endpointsPerService: 3 });
  const same = (input: typeof base) => {
    const r = planner.plan(input);
    assert.equal(r.text, planProxyRules(input).text);
    assert.deepEqual(r.entries, planProxyRules(input).entries);
    return planner.lastRun;
  };
  assert.deepEqual(same(base), { replayed: 0, planned: 300 });
  assert.deepEqual(same(base), { replayed: 300, planned: 0 });
  assert.deepEqual(same(withExtraService(base, 3)), { replayed: 300, planned: 1 });
  const fewer = withoutLastEndpoint(base, 7);
  assert.deepEqual(same(fewer), { replayed: 299, planned: 1 });
  // Equal content in new objects (as after re-reading the store) is recognised too.
  assert.deepEqual(same(structuredClone(fewer)), { replayed: 300, planned: 0 });
  // Another node: nothing carries over.
  assert.deepEqual(same({ ...base, node: { name: "node-9", addresses: ["172.18.0.9"] } }).replayed, 0);
});

test("ProxyPlanner: a Service that loses its address to an earlier one is planned afresh, as planProxyRules does", () => {
  const svc = (name: string) => `---
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: shop}
spec: {selector: {app: web}, externalIPs: [203.0.113.7], ports: [{port: 80, targetPort: 8080}]}
`;
  const load = (yaml: string) => {
    const loaded = loadManifestText(`${CLUSTER}${yaml}`, "t.yaml");
    const plan = planAddresses(loaded.state).clusters[0] as ClusterPlan;
    return proxyInputFor(loaded.state, plan, "node-1");
  };
  const planner = new ProxyPlanner();
  const one = load(svc("b"));
  planner.plan(one);
  const both = load(`${svc("a")}${svc("b")}`); // a comes first now and takes 203.0.113.7:80
  const r = planner.plan(both);
  assert.equal(r.text, planProxyRules(both).text);
  assert.deepEqual(
    r.diagnostics.map((d) => d.object),
    planProxyRules(both).diagnostics.map((d) => d.object),
  );
  assert.ok(r.diagnostics.some((d) => d.code === "proxy-address-conflict" && d.object === "Service shop/b"));
});
