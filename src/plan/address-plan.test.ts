import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { loadManifestText } from "../api/index.js";
import { planAddresses } from "./address-plan.js";
import type { AddressPlan, ClusterPlan } from "./types.js";

/** Loads manifests (which must be valid) and plans them. */
function plan(yaml: string, previous?: AddressPlan): AddressPlan {
  const loaded = loadManifestText(yaml, "test.yaml");
  const errors = loaded.diagnostics.filter((d) => d.severity === "error");
  assert.deepEqual(errors, [], "the test manifests must be valid");
  return planAddresses(loaded.state, { previous });
}

function only(p: AddressPlan): ClusterPlan {
  assert.equal(p.clusters.length, 1);
  return p.clusters[0] as ClusterPlan;
}

function errorCodes(p: AddressPlan): string[] {
  return p.diagnostics.filter((d) => d.severity === "error").map((d) => d.code ?? "");
}

function pods(n: number, prefix = "p", extra = ""): string {
  return Array.from(
    { length: n },
    (_, i) =>
      `---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: ${prefix}${i}\nspec:\n${extra}  containers: [{name: c}]\n`,
  ).join("");
}

function services(n: number, prefix = "s"): string {
  return Array.from(
    { length: n },
    (_, i) =>
      `---\napiVersion: v1\nkind: Service\nmetadata:\n  name: ${prefix}${i}\nspec:\n  ports: [{port: 80}]\n`,
  ).join("");
}

const cluster = (spec: string, name = "c1") =>
  `---\napiVersion: podnet.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: ${name}\nspec:\n${spec}\n`;

test("quickstart: nodes, blocks, gateways, pods, services and the DNS address", () => {
  const c = only(plan(readFileSync("examples/quickstart.yaml", "utf8")));
  assert.equal(c.name, "quickstart");
  assert.equal(c.router.nodeNetworkAddress, "172.18.0.1");
  assert.deepEqual(
    c.nodes.map((n) => [n.name, n.address, n.podCIDRs[0], n.gateways[0]]),
    [
      ["node-1", "172.18.0.2", "10.244.0.0/24", "10.244.0.1"],
      ["node-2", "172.18.0.3", "10.244.1.0/24", "10.244.1.1"],
    ],
  );
  assert.equal(c.pods.length, 3);
  for (const pod of c.pods) {
    const node = c.nodes.find((n) => n.name === pod.node);
    assert.ok(node, `${pod.name} is on a known node`);
    assert.ok(
      pod.ips[0]?.startsWith((node.podCIDRs[0] ?? "").replace(/0\/24$/, "")),
      `${pod.name} IP in its block`,
    );
  }
  assert.deepEqual(
    c.nodes.map((n) => n.podCount),
    [2, 1],
  );
  assert.equal(c.dnsServiceIP, "10.96.0.10");
  const web = c.services.find((s) => s.name === "web");
  assert.deepEqual(web?.clusterIPs, ["10.96.0.2"], "offset 1 is the kubernetes API service");
  assert.equal(c.fabric.podsAddressableFromOutside, true);
  assert.deepEqual(
    c.externalHosts.map((h) => h.address),
    ["203.0.113.2"],
  );
});

test("the same input always gives the same plan", () => {
  const yaml = readFileSync("examples/quickstart.yaml", "utf8") + pods(20);
  assert.deepEqual(plan(yaml), plan(yaml));
});

test("pods without nodeName are spread evenly; nodeName is honoured", () => {
  const c = only(plan(`${pods(6)}${pods(2, "pinned", "  nodeName: node-2\n")}`));
  const count = (node: string) => c.pods.filter((p) => p.node === node).length;
  assert.equal(count("node-1"), 4);
  assert.equal(count("node-2"), 4);
  assert.ok(
    c.pods
      .filter((p) => p.name.startsWith("pinned"))
      .every((p) => p.node === "node-2" && p.placedBy === "manifest"),
  );
});

test("appending a pod or a service moves no existing address", () => {
  const base = `${pods(10)}${services(5)}`;
  const before = only(plan(base));
  const after = only(plan(`${base}${pods(1, "new")}${services(1, "new")}`));
  for (const pod of before.pods)
    assert.deepEqual(
      after.pods.find((p) => p.name === pod.name),
      pod,
    );
  for (const svc of before.services)
    assert.deepEqual(
      after.services.find((s) => s.name === svc.name),
      svc,
    );
});

test("with the previous plan, inserting objects anywhere moves no existing address", () => {
  const base = `${pods(10)}${services(5)}`;
  const first = plan(base);
  // New objects first: without the previous plan they would take the lowest addresses.
  const second = plan(`${pods(3, "new")}${services(2, "new")}${base}`, first);
  const before = only(first);
  const after = only(second);
  for (const pod of before.pods) {
    const now = after.pods.find((p) => p.name === pod.name);
    assert.deepEqual([now?.node, now?.ips], [pod.node, pod.ips], pod.name);
  }
  for (const svc of before.services)
    assert.deepEqual(after.services.find((s) => s.name === svc.name)?.clusterIPs, svc.clusterIPs);
  const all = after.pods.flatMap((p) => p.ips);
  assert.equal(new Set(all).size, all.length, "no address handed out twice");
  const vips = after.services.flatMap((s) => s.clusterIPs);
  assert.equal(new Set(vips).size, vips.length);
});

test("too many nodes for the pod CIDR names the numbers", () => {
  const p = plan(cluster("  podCIDR: 10.244.0.0/22\n  nodes: 6"));
  const d = p.diagnostics.find((x) => x.code === "exhausted-pod-blocks");
  assert.ok(d, JSON.stringify(p.diagnostics));
  assert.match(
    d.message,
    /6 nodes need 6 \/24 blocks but pod CIDR 10\.244\.0\.0\/22 holds 4; 2 nodes have no IPv4 block/,
  );
  assert.match(d.hint ?? "", /\/21/);
});

test("too many pods for a node's block names the node and the numbers", () => {
  const p = plan(`${cluster("  nodeCIDRMaskSize: 28\n  nodes: 1")}${pods(15)}`);
  const d = p.diagnostics.find((x) => x.code === "exhausted-pod-addresses");
  assert.ok(d, JSON.stringify(p.diagnostics));
  assert.match(
    d.message,
    /node node-1 has 15 pods but its block 10\.244\.0\.0\/28 holds 13 .*; 2 pods have no address/,
  );
});

test("overlapping ranges in one cluster are errors", () => {
  const p = plan(cluster("  nodeCIDR: 10.244.5.0/24"));
  assert.deepEqual(errorCodes(p), ["range-overlap"]);
  assert.match(
    p.diagnostics[0]?.message ?? "",
    /node CIDR 10\.244\.5\.0\/24 .* overlaps pod CIDR 10\.244\.0\.0\/16|pod CIDR 10\.244\.0\.0\/16 .* overlaps node CIDR/,
  );
});

test("overlapping ranges across clusters are errors", () => {
  const two =
    cluster(
      "  nodeCIDR: 172.18.0.0/24\n  externalCIDR: 203.0.113.0/25\n  loadBalancerCIDRs: [198.51.100.0/25]",
      "one",
    ) +
    cluster(
      "  nodeCIDR: 172.19.0.0/24\n  serviceCIDR: 10.112.0.0/12\n  externalCIDR: 203.0.113.128/25\n  loadBalancerCIDRs: [198.51.100.128/25]",
      "two",
    );
  const p = planAddresses(loadManifestText(two, "two.yaml").state);
  const overlaps = p.diagnostics.filter((d) => d.code === "range-overlap");
  assert.equal(overlaps.length, 1, JSON.stringify(p.diagnostics, null, 1));
  assert.match(
    overlaps[0]?.message ?? "",
    /pod CIDR 10\.244\.0\.0\/16 \(cluster two\) overlaps pod CIDR 10\.244\.0\.0\/16 \(cluster one\)/,
  );
});

test("an external host inside the service range is predicted as a routing black hole", () => {
  const yaml = `${cluster("  serviceCIDR: 10.96.0.0/12")}---\napiVersion: podnet.dev/v1alpha1\nkind: ExternalHost\nmetadata:\n  name: client\nspec:\n  address: 10.96.100.7\n`;
  const p = planAddresses(loadManifestText(yaml, "alias.yaml").state);
  const d = p.diagnostics.find((x) => x.code === "service-range-alias");
  assert.ok(d, JSON.stringify(p.diagnostics));
  assert.equal(d.severity, "error");
  assert.equal(d.object, "ExternalHost client");
  assert.match(
    d.message,
    /service CIDR 10\.96\.0\.0\/12 .* aliases external host client's address 10\.96\.100\.7/,
  );
  assert.match(d.message, /black hole/);
  assert.equal(d.source?.file, "alias.yaml");
});

test("explicit ClusterIPs: honoured, out of range, duplicate and the DNS address", () => {
  const svc = (name: string, ip: string) =>
    `---\napiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\nspec:\n  clusterIP: ${ip}\n  ports: [{port: 80}]\n`;
  const p = planAddresses(
    loadManifestText(
      svc("a", "10.96.5.5") +
        svc("b", "10.96.5.5") +
        svc("c", "192.168.0.1") +
        svc("d", "10.96.0.10") +
        services(1),
      "svc.yaml",
    ).state,
  );
  const c = only(p);
  assert.deepEqual(c.services.find((s) => s.name === "a")?.clusterIPs, ["10.96.5.5"]);
  const messages = p.diagnostics.map((d) => `${d.object}: ${d.message}`);
  assert.equal(messages.length, 3, messages.join("\n"));
  assert.match(messages[0] ?? "", /Service default\/b: clusterIP 10\.96\.5\.5 cannot be used: .*already/);
  assert.match(
    messages[1] ?? "",
    /Service default\/c: clusterIP 192\.168\.0\.1 cannot be used: .*outside|not in/,
  );
  assert.match(
    messages[2] ?? "",
    /Service default\/d: clusterIP 10\.96\.0\.10 cannot be used: it is the cluster DNS address/,
  );
  assert.deepEqual(c.services.find((s) => s.name === "s0")?.clusterIPs, ["10.96.0.2"]);
});

test("NodePorts: allocated from 30000, explicit ones honoured, collisions are errors", () => {
  const np = (name: string, nodePort?: number) =>
    `---\napiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\nspec:\n  type: NodePort\n  ports: [{port: 80${nodePort ? `, nodePort: ${nodePort}` : ""}}]\n`;
  const p = planAddresses(loadManifestText(np("a", 30000) + np("b") + np("c", 30000), "np.yaml").state);
  const c = only(p);
  assert.equal(c.services.find((s) => s.name === "a")?.ports[0]?.nodePort, 30000);
  assert.equal(c.services.find((s) => s.name === "b")?.ports[0]?.nodePort, 30001);
  assert.deepEqual(errorCodes(p), ["node-port"]);
  assert.match(
    p.diagnostics[0]?.message ?? "",
    /nodePort 30000 cannot be used: another service already uses it/,
  );
});

test("NodePorts: ports of one Service with the same number share one nodePort across protocols (as the API server)", () => {
  const svc = (name: string, ports: string) =>
    `---\napiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\nspec:\n  type: NodePort\n  ports: ${ports}\n`;
  const text =
    svc(
      "dns",
      "[{name: u, port: 53, protocol: UDP}, {name: t, port: 53, protocol: TCP}, {name: m, port: 9153}]",
    ) +
    svc(
      "fixed",
      "[{name: u, port: 5353, protocol: UDP, nodePort: 31000}, {name: t, port: 5353, protocol: TCP, nodePort: 31000}]",
    ) +
    svc("other", "[{port: 80}]");
  const p = planAddresses(loadManifestText(text, "np.yaml").state);
  assert.deepEqual(errorCodes(p), []);
  const ports = (name: string) =>
    only(p)
      .services.find((s) => s.name === name)
      ?.ports.map((x) => x.nodePort);
  assert.deepEqual(ports("dns"), [30000, 30000, 30001]);
  assert.deepEqual(ports("fixed"), [31000, 31000]);
  assert.deepEqual(ports("other"), [30002]);
  // The same protocol twice is refused by validation.
  const dup = loadManifestText(
    svc("d", "[{name: a, port: 1, nodePort: 31001}, {name: b, port: 2, nodePort: 31001}]"),
    "d.yaml",
  );
  assert.match(dup.diagnostics.map((d) => d.message).join("\n"), /Duplicate value: nodePort 31001/);
});

test("LoadBalancer services get an address from the pool unless they name one", () => {
  const lb = (name: string, ip?: string) =>
    `---\napiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\nspec:\n  type: LoadBalancer\n${ip ? `  loadBalancerIP: ${ip}\n` : ""}  ports: [{port: 80}]\n`;
  const c = only(plan(lb("a", "198.51.100.1") + lb("b")));
  assert.deepEqual(c.services.find((s) => s.name === "a")?.loadBalancerIPs, ["198.51.100.1"]);
  assert.deepEqual(c.services.find((s) => s.name === "b")?.loadBalancerIPs, ["198.51.100.2"]);
  assert.ok(
    c.services.every((s) => s.ports[0]?.nodePort !== undefined),
    "LoadBalancer services get NodePorts",
  );
});

test("dual-stack: pods get an address per family and PreferDualStack services two ClusterIPs", () => {
  const yaml = `${cluster("  podCIDRs: [10.244.0.0/16, fd00:10:244::/56]\n  serviceCIDRs: [10.96.0.0/12, fd00:10:96::/112]")}${pods(2)}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: both\nspec:\n  ipFamilyPolicy: PreferDualStack\n  ports: [{port: 80}]\n`;
  const c = only(plan(yaml));
  assert.deepEqual(c.nodes[0]?.podCIDRs, ["10.244.0.0/24", "fd00:10:244::/64"]);
  assert.deepEqual(c.nodes[1]?.gateways, ["10.244.1.1", "fd00:10:244:1::1"]);
  assert.deepEqual(c.pods[0]?.ips, ["10.244.0.2", "fd00:10:244::2"]);
  assert.deepEqual(c.services[0]?.clusterIPs, ["10.96.0.2", "fd00:10:96::2"]);
});

test("vxlan lowers the pod MTU by 50 and makes pods unreachable from outside", () => {
  const c = only(plan(cluster("  fabric:\n    mode: vxlan\n    vni: 42\n    mtu: 1500")));
  assert.deepEqual(
    [c.fabric.mode, c.fabric.podMTU, c.fabric.vni, c.fabric.port, c.fabric.podsAddressableFromOutside],
    ["vxlan", 1450, 42, 4789, false],
  );
});

test("hostNetwork pods use their node's address and take none from the block", () => {
  const c = only(
    plan(
      `${pods(1, "host", "  hostNetwork: true\n  nodeName: node-1\n")}${pods(1, "p", "  nodeName: node-1\n")}`,
    ),
  );
  assert.deepEqual(c.pods[0]?.ips, ["172.18.0.2"]);
  assert.equal(c.pods[0]?.hostNetwork, true);
  assert.deepEqual(c.pods[1]?.ips, ["10.244.0.2"]);
});
