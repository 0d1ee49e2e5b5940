import assert from "node:assert/strict";
import { test } from "node:test";
import { parseIp } from "../../ipam/cidr.js";
import type { CniError } from "../spec.js";
import { type AttachPlan, nodeBatch, podAddresses, podBatch, podRoutes, resultRoutes } from "./dataplane.js";

const addresses = podAddresses(
  {
    cniVersion: "1.1.0",
    ips: [{ address: "10.1.0.5/24", gateway: "10.1.0.1" }, { address: "fd00::5/64" }],
  },
  "podnet-ipam",
);

test("podAddresses reads addresses, subnets and gateways (the first address when IPAM gives none)", () => {
  assert.equal(addresses.length, 2);
  assert.equal(addresses[1]?.gateway.value, parseIp("fd00::1").value);
  assert.equal(addresses[0]?.subnet.prefix, 24);
  assert.throws(
    () => podAddresses({ cniVersion: "1.1.0", ips: [] }, "x"),
    (e: CniError) => e.code === 7,
  );
  assert.throws(
    () => podAddresses({ cniVersion: "1.1.0", ips: [{ address: "10.1.0.5" }] }, "x"),
    (e: CniError) => e.code === 6,
  );
});

test("podRoutes: IPAM routes via the family's gateway, plus one default route per family", () => {
  const routes = podRoutes(
    addresses,
    [{ dst: "192.168.0.0/16" }, { dst: "172.16.0.0/12", gw: "10.1.0.254" }],
    true,
  );
  assert.deepEqual(resultRoutes(routes), [
    { dst: "192.168.0.0/16", gw: "10.1.0.1" },
    { dst: "172.16.0.0/12", gw: "10.1.0.254" },
    { dst: "0.0.0.0/0", gw: "10.1.0.1" },
    { dst: "::/0", gw: "fd00::1" },
  ]);
  // A default route from IPAM is not doubled.
  assert.deepEqual(resultRoutes(podRoutes(addresses, [{ dst: "0.0.0.0/0" }], true)), [
    { dst: "0.0.0.0/0", gw: "10.1.0.1" },
    { dst: "::/0", gw: "fd00::1" },
  ]);
  assert.deepEqual(podRoutes(addresses, [], false), []);
});

const plan: AttachPlan = {
  bridge: "cbr0",
  createBridgeMac: "02:00:00:00:00:01",
  bridgeAddresses: [
    { ip: parseIp("10.1.0.1"), prefix: 24 },
    { ip: parseIp("fd00::1"), prefix: 64 },
  ],
  hostIf: "veth0123abcd",
  hostMac: "02:00:00:00:00:02",
  containerIf: "eth0",
  containerMac: "02:00:00:00:00:03",
  mtu: 1450,
  netns: "/run/netns/pod a",
  hairpin: true,
  addresses,
  routes: podRoutes(addresses, [], true),
};

test("the node batch creates the bridge, the gateways and the veth pair with its peer in the pod", () => {
  const b = nodeBatch(plan);
  assert.deepEqual(b.lines, [
    "link add cbr0 address 02:00:00:00:00:01 type bridge",
    "addr replace 10.1.0.1/24 dev cbr0",
    "addr replace fd00::1/64 dev cbr0 nodad",
    "link set cbr0 up",
    'link add veth0123abcd address 02:00:00:00:00:02 mtu 1450 master cbr0 type veth peer name eth0 address 02:00:00:00:00:03 mtu 1450 netns "/run/netns/pod a"',
    "link set veth0123abcd type bridge_slave hairpin on",
    "link set veth0123abcd up",
    "neigh replace 10.1.0.5 lladdr 02:00:00:00:00:03 dev cbr0 nud stale",
    "neigh replace fd00::5 lladdr 02:00:00:00:00:03 dev cbr0 nud stale",
  ]);
  assert.equal(b.bridgeLine, 1);
  assert.equal(b.vethLine, 5);
  const existing = nodeBatch({ ...plan, createBridgeMac: undefined, bridgeAddresses: [], hairpin: false });
  assert.deepEqual(
    existing.lines.map((l) => l.split(" ").slice(0, 3).join(" ")),
    [
      "link set cbr0",
      "link add veth0123abcd",
      "link set veth0123abcd",
      "neigh replace 10.1.0.5",
      "neigh replace fd00::5",
    ],
  );
  assert.equal(existing.bridgeLine, undefined);
});

test("the pod batch: lo, addresses (IPv6 without DAD), link up, routes", () => {
  assert.deepEqual(podBatch(plan), {
    lines: [
      "link set lo up",
      "addr add 10.1.0.5/24 dev eth0",
      "addr add fd00::5/64 dev eth0 nodad",
      "link set eth0 up",
    ],
    routeLines: ["route add 0.0.0.0/0 via 10.1.0.1 dev eth0", "route add ::/0 via fd00::1 dev eth0"],
  });
});
