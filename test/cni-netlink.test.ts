// The plugin's netlink applier against its `ip -batch` applier: the same steps give the same kernel state
// (veth ends in the right namespaces, planned MACs, MTU, addresses, routes, neighbours, hairpin) and the
// same errors; DEL removes the pair. Then the plugin executable, which takes the netlink path when the
// addon is built. Root only: real namespaces, all with this file's prefix, removed at the end.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ipApplier, netlinkApplier, type StepApplier } from "../src/cni/bridge/apply.js";
import {
  type AttachPlan,
  type DataplaneStep,
  nodeSteps,
  podAddresses,
  podRoutes,
  podSteps,
} from "../src/cni/bridge/dataplane.js";
import { IpBatchError } from "../src/linux/ip.js";
import { deterministicMac, hostVethName } from "../src/linux/names.js";
import { netlinkAddon } from "../src/linux/netlink.js";
import { runInNetnsContext, useNetnsSwitcher } from "../src/linux/netns-context.js";
import { withNetns } from "../src/linux/netns-native.js";
import { CniLab, mustSh, sh } from "./support/cni-harness.js";

const isRoot = process.getuid?.() === 0;
const skip = !isRoot
  ? "needs root"
  : netlinkAddon()
    ? false
    : "the netlink addon is not built (npm run build)";

const lab = new CniLab("pnl");
const P = lab.prefix;
const BRIDGE = `${P}br`;
let node = "";

// biome-ignore lint/suspicious/noExplicitAny: ip -j output
function ipj(ns: string, ...args: string[]): any[] {
  return JSON.parse(mustSh("ip", ["-j", "-n", ns, ...args]) || "[]");
}

/** The plan an ADD of `pod` (10.210.0.N/24 and fd21::N/64) makes, with the bridge to be created when asked. */
function planFor(
  pod: string,
  n: number,
  createBridge: boolean,
  ipamRoutes: { dst: string; gw?: string }[] = [],
) {
  const addresses = podAddresses(
    { cniVersion: "1.1.0", ips: [{ address: `10.210.0.${n}/24` }, { address: `fd21::${n}/64` }] },
    "test",
  );
  const plan: AttachPlan = {
    bridge: BRIDGE,
    ...(createBridge ? { createBridgeMac: "02:aa:00:00:00:01" } : {}),
    bridgeAddresses: addresses.map((a) => ({ ip: a.gateway, prefix: a.subnet.prefix })),
    hostIf: hostVethName(pod, "eth0"),
    hostMac: deterministicMac("host", pod, "eth0"),
    containerIf: "eth0",
    containerMac: deterministicMac("container", pod, "eth0"),
    mtu: 1420,
    netns: lab.path(pod),
    hairpin: true,
    addresses,
    routes: podRoutes(addresses, ipamRoutes, true),
  };
  return plan;
}

/** The node side runs in the node's namespace as the lab agent runs it: in a context, not by path. */
function onNode(applier: StepApplier, steps: DataplaneStep[]): Promise<void> {
  return runInNetnsContext(lab.path(node), () => applier.run(steps));
}

async function attach(applier: StepApplier, plan: AttachPlan): Promise<void> {
  await onNode(applier, nodeSteps(plan).steps);
  const pod = podSteps(plan);
  await applier.run([...pod.steps, ...pod.routeSteps], plan.netns);
}

/** What the kernel holds for an attachment, with the attachment's own names and addresses abstracted. */
function kernelView(plan: AttachPlan, pod: string) {
  const [host] = ipj(node, "-d", "link", "show", "dev", plan.hostIf);
  const [eth0] = ipj(pod, "addr", "show", "dev", "eth0");
  const [lo] = ipj(pod, "link", "show", "dev", "lo");
  const routes = [...ipj(pod, "route", "show"), ...ipj(pod, "-6", "route", "show")]
    .filter((r) => !String(r.dst).startsWith("fe80"))
    .map((r) => ({ dst: r.dst, gateway: r.gateway, protocol: r.protocol, scope: r.scope, dev: r.dev }));
  const neigh = ipj(node, "neigh", "show", "dev", BRIDGE)
    .filter((e) => e.lladdr === plan.containerMac)
    .map((e) => e.state);
  return {
    host: {
      mac: host?.address === plan.hostMac,
      mtu: host?.mtu,
      master: host?.master,
      up: host?.flags.includes("UP"),
      hairpin: host?.linkinfo?.info_slave_data?.hairpin,
      peerInPod: host?.link_netnsid !== undefined,
    },
    pod: {
      mac: eth0?.address === plan.containerMac,
      mtu: eth0?.mtu,
      up: eth0?.flags.includes("UP"),
      lo: lo?.flags.includes("UP"),
      addresses: (eth0?.addr_info ?? [])
        .filter((a: { scope: string }) => a.scope === "global")
        .map((a: { local: string; prefixlen: number }) => a.prefixlen),
      routes,
    },
    neigh,
  };
}

/** Runs `run` expecting an IpBatchError; returns what both appliers must agree on. */
async function failure(run: () => Promise<void>) {
  try {
    await run();
  } catch (e) {
    assert.ok(e instanceof IpBatchError, `an IpBatchError, got ${e}`);
    return { lineNumber: e.lineNumber, line: e.line, reason: e.reason, message: e.message };
  }
  assert.fail("the steps did not fail");
}

before(() => {
  if (skip) return;
  useNetnsSwitcher(withNetns);
  node = lab.netns("node");
});

after(() => {
  const leaked = lab.cleanup();
  assert.deepEqual(leaked, [], "namespaces left behind");
});

describe("the netlink applier", { skip }, () => {
  const pods: Record<string, { plan: AttachPlan; ns: string }> = {};

  test("creates the pair in the right namespaces with the planned MACs, MTU, addresses, routes", async () => {
    const ns = lab.netns("nl1");
    const plan = planFor(ns, 2, true);
    await attach(netlinkApplier, plan);
    pods.nl = { plan, ns };
    const view = kernelView(plan, ns);
    assert.deepEqual(view.host, {
      mac: true,
      mtu: 1420,
      master: BRIDGE,
      up: true,
      hairpin: true,
      peerInPod: true,
    });
    assert.deepEqual(
      { ...view.pod, routes: undefined },
      { mac: true, mtu: 1420, up: true, lo: true, addresses: [24, 64], routes: undefined },
    );
    const [eth0] = ipj(ns, "addr", "show", "dev", "eth0");
    assert.deepEqual(
      eth0.addr_info
        .filter((a: { scope: string }) => a.scope === "global")
        .map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`),
      ["10.210.0.2/24", "fd21::2/64"],
    );
    assert.deepEqual(
      view.pod.routes.filter((r) => r.dst === "default"),
      [
        { dst: "default", gateway: "10.210.0.1", protocol: undefined, scope: undefined, dev: "eth0" },
        { dst: "default", gateway: "fd21::1", protocol: undefined, scope: undefined, dev: "eth0" },
      ],
    );
    assert.deepEqual(view.neigh, [["STALE"], ["STALE"]]);
    const [bridge] = ipj(node, "addr", "show", "dev", BRIDGE);
    assert.equal(bridge.address, "02:aa:00:00:00:01");
    assert.deepEqual(
      bridge.addr_info
        .filter((a: { scope: string }) => a.scope === "global")
        .map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`),
      ["10.210.0.1/24", "fd21::1/64"],
    );
    assert.equal(sh("ip", ["link", "show", plan.hostIf]).code, 1, "nothing in the root namespace");
    // A packet goes through: the node reaches the pod over the bridge.
    mustSh("ip", ["netns", "exec", node, "ping", "-c1", "-W2", "10.210.0.2"]);
  });

  test("gives the kernel state the ip -batch applier gives", async () => {
    const ns = lab.netns("ip1");
    const plan = planFor(ns, 3, false);
    await attach(ipApplier, plan);
    pods.ip = { plan, ns };
    const viaIp = kernelView(plan, ns);
    const nl = pods.nl as { plan: AttachPlan; ns: string };
    const viaNetlink = kernelView(nl.plan, nl.ns);
    // Same subnet, same routes; the rest is abstracted by kernelView (MACs as "the planned one").
    // (Neighbour states move on with traffic: the first test pinged its pod.)
    assert.deepEqual(
      { ...viaNetlink, neigh: viaNetlink.neigh.length },
      { ...viaIp, neigh: viaIp.neigh.length },
    );
    assert.deepEqual(viaIp.neigh, [["STALE"], ["STALE"]]);
  });

  test("a name clash fails with the words and line ip gives", async () => {
    const nl = pods.nl as { plan: AttachPlan; ns: string };
    const again = { ...nl.plan, createBridgeMac: undefined };
    const steps = nodeSteps(again);
    const byNetlink = await failure(() => onNode(netlinkApplier, steps.steps));
    const byIp = await failure(() => onNode(ipApplier, steps.steps));
    assert.deepEqual(byNetlink, byIp);
    assert.equal(byNetlink.lineNumber, steps.vethStep);
    assert.equal(byNetlink.reason, "RTNETLINK answers: File exists");
    assert.match(byNetlink.message, /^"ip link add veth[0-9a-f]{8} .* type veth peer name eth0 .*" failed: /);

    // eth0 taken in the pod, host side free.
    const busy = lab.netns("busy");
    mustSh("ip", ["-n", busy, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0peer"]);
    const clash = nodeSteps(planFor(busy, 9, false)).steps;
    const inPod = await failure(() => onNode(netlinkApplier, clash));
    assert.equal(inPod.reason, "RTNETLINK answers: File exists");
    assert.deepEqual(await failure(() => onNode(ipApplier, clash)), inPod);
    assert.equal(sh("ip", ["-n", node, "link", "show", hostVethName(busy, "eth0")]).code, 1);

    // A bridge created meanwhile: the plugin's raced-bridge check reads the first step's number.
    const bridgeAgain = nodeSteps({ ...nl.plan, createBridgeMac: "02:aa:00:00:00:09" });
    const raced = await failure(() => onNode(netlinkApplier, bridgeAgain.steps));
    assert.equal(raced.lineNumber, bridgeAgain.bridgeStep);
    assert.deepEqual(await failure(() => onNode(ipApplier, bridgeAgain.steps)), raced);
  });

  test("kernel refusals and missing devices read as ip reports them", async () => {
    const nl = pods.nl as { plan: AttachPlan; ns: string };
    const badRoute: DataplaneStep[] = podSteps({
      ...nl.plan,
      routes: podRoutes(nl.plan.addresses, [{ dst: "192.0.2.0/24", gw: "203.0.113.1" }], false),
    }).routeSteps;
    const viaNetlink = await failure(() => netlinkApplier.run(badRoute, nl.plan.netns));
    assert.deepEqual(await failure(() => ipApplier.run(badRoute, nl.plan.netns)), viaNetlink);
    assert.equal(viaNetlink.line, "route add 192.0.2.0/24 via 203.0.113.1 dev eth0");
    assert.match(viaNetlink.reason, /^Error: .+\.$/);

    const missing: DataplaneStep[] = [{ op: "link-up", dev: `${P}none` }];
    const gone = await failure(() => onNode(netlinkApplier, missing));
    assert.deepEqual(await failure(() => onNode(ipApplier, missing)), gone);
    assert.equal(gone.reason, `Cannot find device "${P}none"`);
  });

  test("an existing route: the plugin skips it by step number (both appliers stop at the same step)", async () => {
    const nl = pods.nl as { plan: AttachPlan; ns: string };
    const { routeSteps } = podSteps(nl.plan);
    const viaNetlink = await failure(() => netlinkApplier.run(routeSteps, nl.plan.netns));
    assert.deepEqual(await failure(() => ipApplier.run(routeSteps, nl.plan.netns)), viaNetlink);
    assert.equal(viaNetlink.lineNumber, 1);
    assert.match(viaNetlink.reason, /File exists/);
  });

  test("DEL: deleting the host side removes both ends; a second DEL finds nothing, as with ip", async () => {
    for (const { plan, ns } of Object.values(pods)) {
      const del: DataplaneStep[] = [{ op: "link-del", dev: plan.hostIf }];
      await onNode(netlinkApplier, del);
      assert.equal(sh("ip", ["-n", node, "link", "show", plan.hostIf]).code, 1);
      assert.deepEqual(
        ipj(ns, "link", "show").map((l) => l.ifname),
        ["lo"],
      );
      const again = await failure(() => onNode(netlinkApplier, del));
      assert.deepEqual(await failure(() => onNode(ipApplier, del)), again);
      assert.match(again.reason, /Cannot find device/);
    }
  });
});

describe("the plugin executable", { skip }, () => {
  const config = {
    cniVersion: "1.1.0",
    name: `${P}net`,
    type: "podnet",
    bridge: `${P}b2`,
    mtu: 1400,
    ipam: {
      type: "podnet-ipam",
      dataDir: lab.dataDir,
      ranges: [[{ subnet: "10.211.0.0/24" }], [{ subnet: "fd22::/64" }]],
    },
  };
  const call = (command: string, pod: string, applier?: string) =>
    lab.run(
      "podnet",
      {
        command,
        config,
        containerId: pod,
        ifname: "eth0",
        netns: lab.path(pod),
        env: { PODNET_CNI_TRACE: "1", ...(applier ? { PODNET_CNI_APPLIER: applier } : {}) },
      },
      node,
    );

  test("takes the netlink path when the addon is built, with the result and state of the ip path", async () => {
    const a = lab.netns("exe-a");
    const b = lab.netns("exe-b");
    const viaNetlink = await call("ADD", a);
    assert.equal(viaNetlink.code, 0, viaNetlink.stdout + viaNetlink.stderr);
    assert.match(viaNetlink.stderr, /kernel steps by netlink/);
    const viaIp = await call("ADD", b, "ip");
    assert.equal(viaIp.code, 0, viaIp.stdout + viaIp.stderr);
    assert.match(viaIp.stderr, /kernel steps by ip/);
    const shape = (r: typeof viaIp.json) => ({
      ...r,
      interfaces: r.interfaces.map((i: { name: string; mtu?: number }) => i.mtu ?? i.name),
      ips: r.ips.map((i: { gateway: string }) => i.gateway),
    });
    assert.deepEqual(shape(viaNetlink.json), shape(viaIp.json));
    for (const [pod, r] of [
      [a, viaNetlink],
      [b, viaIp],
    ] as const) {
      const [eth0] = ipj(pod, "addr", "show", "dev", "eth0");
      assert.equal(eth0.address, r.json.interfaces[2].mac);
      assert.equal(eth0.mtu, 1400);
    }
    // The same pod again: the message the ip path gives (cni-plugin.test.ts checks its wording).
    const again = await call("ADD", a);
    assert.equal(again.json.code, 101);
    assert.match(again.json.msg, /RTNETLINK answers: File exists; interface eth0 already exists in/);
    assert.equal((await call("CHECK", a)).code, 1, "CHECK needs prevResult: a configuration error");
    for (const pod of [a, b]) {
      const del = await call("DEL", pod);
      assert.equal(del.code, 0, del.stdout + del.stderr);
      assert.deepEqual(
        ipj(pod, "link", "show").map((l) => l.ifname),
        ["lo"],
      );
    }
    assert.deepEqual(
      ipj(node, "link", "show")
        .map((l) => l.ifname)
        .filter((n: string) => n.startsWith("veth")),
      [],
    );
  });
});
