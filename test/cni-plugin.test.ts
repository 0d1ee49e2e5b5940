// The podnet and podnet-ipam executables as a runtime runs them: env + stdin, inside a "node" network
// namespace (`ip netns exec NODE podnet`), pods in namespaces of their own, real packets. Root only.
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { hostVethName } from "../src/linux/names.js";
import { CniLab, mustSh, sh } from "./support/cni-harness.js";

const lab = new CniLab();
const P = lab.prefix;
const BRIDGE = `${P}br`;
const NETWORK = `${P}net`;
let node = "";

function config(over: Record<string, unknown> = {}, ipam: Record<string, unknown> = {}) {
  return {
    cniVersion: "1.1.0",
    name: NETWORK,
    type: "podnet",
    bridge: BRIDGE,
    mtu: 1400,
    ipam: {
      type: "podnet-ipam",
      dataDir: lab.dataDir,
      ranges: [[{ subnet: "10.201.0.0/24" }], [{ subnet: "fd20:1::/64" }]],
      ...ipam,
    },
    ...over,
  };
}

interface Attach {
  containerId: string;
  ifname: string;
  netns: string;
}

function attachment(ns: string, ifname = "eth0"): Attach {
  return { containerId: `${ns}-id`, ifname, netns: lab.path(ns) };
}

const podnet = (command: string, a: Partial<Attach>, conf: unknown = config()) =>
  lab.run("podnet", { command, config: conf, ...a }, node);

function allocations(network = NETWORK): string[] {
  const dir = join(lab.dataDir, network);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => !f.startsWith(".") && !f.startsWith("last_reserved"));
}

function json(cmd: string[]): unknown {
  return JSON.parse(mustSh("ip", ["-j", ...cmd]));
}

function nodeLinks(): string[] {
  return (json(["-n", node, "link", "show"]) as { ifname: string }[]).map((l) => l.ifname);
}

before(() => {
  node = lab.netns("node");
});

after(() => {
  const leaked = lab.cleanup();
  assert.deepEqual(leaked, [], "namespaces left behind");
});

describe("ADD", () => {
  const results: Record<string, { ips: { address: string }[] }> = {};

  test("attaches two pods: bridge, veth pair, addresses, routes, MTU, hairpin, lo", async () => {
    for (const pod of ["a", "b"]) {
      const ns = lab.netns(pod);
      const r = await podnet("ADD", attachment(ns));
      assert.equal(r.code, 0, r.stdout + r.stderr);
      results[pod] = r.json;
      const hostIf = hostVethName(`${ns}-id`, "eth0");
      assert.equal(r.json.cniVersion, "1.1.0");
      assert.equal(r.json.interfaces.length, 3);
      assert.equal(r.json.interfaces[0].name, BRIDGE);
      assert.match(r.json.interfaces[0].mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      assert.deepEqual(Object.keys(r.json.interfaces[1]).sort(), ["mac", "mtu", "name"]);
      assert.equal(r.json.interfaces[1].name, hostIf);
      assert.deepEqual(r.json.interfaces[2], {
        name: "eth0",
        mac: r.json.interfaces[2].mac,
        mtu: 1400,
        sandbox: lab.path(ns),
      });
      assert.deepEqual(
        r.json.ips.map((i: { interface: number; gateway: string }) => [i.interface, i.gateway]),
        [
          [2, "10.201.0.1"],
          [2, "fd20:1::1"],
        ],
      );
      assert.deepEqual(r.json.routes, [
        { dst: "0.0.0.0/0", gw: "10.201.0.1" },
        { dst: "::/0", gw: "fd20:1::1" },
      ]);

      // The pod side as the kernel has it.
      const [eth0] = json(["-n", ns, "addr", "show", "dev", "eth0"]) as {
        mtu: number;
        address: string;
        operstate: string;
        addr_info: { local: string; prefixlen: number }[];
      }[];
      assert.equal(eth0?.mtu, 1400);
      assert.equal(eth0?.address, r.json.interfaces[2].mac);
      const addrs = eth0?.addr_info.map((a) => `${a.local}/${a.prefixlen}`) ?? [];
      for (const ip of r.json.ips) assert.ok(addrs.includes(ip.address), `${ip.address} in ${addrs}`);
      const [lo] = json(["-n", ns, "link", "show", "dev", "lo"]) as { flags: string[] }[];
      assert.ok(lo?.flags.includes("UP"));
      const routes = json(["-n", ns, "route", "show", "default"]) as { gateway: string }[];
      assert.equal(routes[0]?.gateway, "10.201.0.1");
      const routes6 = json(["-n", ns, "-6", "route", "show", "default"]) as { gateway: string }[];
      assert.equal(routes6[0]?.gateway, "fd20:1::1");

      // The node side: the host veth on the bridge with hairpin, the bridge with the gateways.
      const [host] = json(["-n", node, "-d", "link", "show", "dev", hostIf]) as {
        master: string;
        mtu: number;
        linkinfo: { info_slave_data: { hairpin: boolean } };
      }[];
      assert.equal(host?.master, BRIDGE);
      assert.equal(host?.mtu, 1400);
      assert.equal(host?.linkinfo.info_slave_data.hairpin, true);
    }
    const [br] = json(["-n", node, "addr", "show", "dev", BRIDGE]) as { addr_info: { local: string }[] }[];
    const brAddrs = br?.addr_info.map((a) => a.local) ?? [];
    assert.ok(brAddrs.includes("10.201.0.1") && brAddrs.includes("fd20:1::1"), String(brAddrs));
    assert.notEqual(results.a?.ips[0]?.address, results.b?.ips[0]?.address);
    assert.equal(allocations().length, 4);
  });

  test("pods reach the gateway and each other over IPv4 and IPv6", async () => {
    const a = `${P}a`;
    const b = `${P}b`;
    const ipB = results.b?.ips[0]?.address.split("/")[0] ?? "";
    const ip6B = results.b?.ips[1]?.address.split("/")[0] ?? "";
    const ipA = results.a?.ips[0]?.address.split("/")[0] ?? "";
    await lab.serve(node, "10.201.0.1", 8080, "node");
    await lab.serve(b, "::", 8080, "pod-b");
    assert.equal(lab.connect(a, "10.201.0.1", 8080), `node ${ipA}`);
    assert.match(lab.connect(a, ipB, 8080), new RegExp(`^pod-b (::ffff:)?${ipA.replaceAll(".", "\\.")}$`));
    assert.match(lab.connect(a, ip6B, 8080), /^pod-b fd20:1::/);
  });

  test("a chained ADD passes prevResult through and appends its own interfaces", async () => {
    const ns = lab.netns("chain");
    const prevResult = {
      cniVersion: "1.0.0",
      interfaces: [{ name: "other0" }],
      ips: [{ address: "192.0.2.9/24", interface: 0 }],
      dns: { nameservers: ["192.0.2.53"] },
    };
    const r = await podnet("ADD", attachment(ns), config({ prevResult }));
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual(
      r.json.interfaces.map((i: { name: string }) => i.name),
      ["other0", BRIDGE, hostVethName(`${ns}-id`, "eth0"), "eth0"],
    );
    assert.deepEqual(
      r.json.ips.map((i: { interface: number }) => i.interface),
      [0, 3, 3],
    );
    assert.deepEqual(r.json.dns, prevResult.dns);
    assert.equal((await podnet("DEL", attachment(ns))).code, 0);
  });
});

describe("concurrency", () => {
  test("parallel ADDs on a fresh node create the bridge once and all succeed", async () => {
    const freshNode = lab.netns("node2");
    const conf = config({ name: `${P}par`, bridge: `${P}b2` }, { ranges: [[{ subnet: "10.205.0.0/24" }]] });
    const pods = Array.from({ length: 6 }, (_, i) => lab.netns(`par${i}`));
    const results = await Promise.all(
      pods.map((ns) => lab.run("podnet", { command: "ADD", config: conf, ...attachment(ns) }, freshNode)),
    );
    for (const r of results) assert.equal(r.code, 0, r.stdout + r.stderr);
    const macs = new Set(results.map((r) => r.json.interfaces[0].mac));
    assert.equal(macs.size, 1, "every result reports the one bridge's MAC");
    const [br] = json(["-n", freshNode, "link", "show", "dev", `${P}b2`]) as { address: string }[];
    assert.equal(br?.address, [...macs][0]);
    const ips = results.map((r) => r.json.ips[0].address);
    assert.equal(new Set(ips).size, 6);
    const dels = await Promise.all(
      pods.map((ns) => lab.run("podnet", { command: "DEL", config: conf, ...attachment(ns) }, freshNode)),
    );
    for (const r of dels) assert.equal(r.code, 0, r.stdout);
    assert.deepEqual(allocations(`${P}par`), []);
  });
});

describe("CHECK", () => {
  // Passing, and failing on a removed address, is in cni-conformance.test.ts (all contenders).
  test("finds a removed host veth and names it", async () => {
    const ns = lab.netns("check");
    const a = attachment(ns);
    const add = await podnet("ADD", a);
    assert.equal(add.code, 0, add.stdout);
    mustSh("ip", ["-n", node, "link", "del", hostVethName(a.containerId, "eth0")]);
    const gone = await podnet("CHECK", a, config({ prevResult: add.json }));
    assert.equal(gone.json.code, 102);
    assert.match(gone.json.msg, /host veth veth[0-9a-f]{8} is missing on the node/);
    assert.equal((await podnet("DEL", a)).code, 0);
  });
});

describe("GC", () => {
  // GC with cni.dev/valid-attachments is in cni-conformance.test.ts.
  test("also accepts the older key cni.dev/attachments", async () => {
    const netName = `${P}gc`;
    const conf = (over: Record<string, unknown> = {}) => config({ name: netName, ...over });
    const ns = lab.netns("gc");
    for (const ifname of ["eth0", "eth1"]) {
      const r = await podnet("ADD", attachment(ns, ifname), conf());
      assert.equal(r.code, 0, r.stdout);
    }
    assert.equal(allocations(netName).length, 4);
    const keep = [{ containerID: `${ns}-id`, ifname: "eth1" }];
    const older = await podnet("GC", {}, conf({ "cni.dev/attachments": keep }));
    assert.equal(older.code, 0, older.stdout);
    assert.equal(allocations(netName).length, 2);
    const none = await podnet("GC", {}, conf({ "cni.dev/attachments": [] }));
    assert.equal(none.code, 0, none.stdout);
    assert.deepEqual(allocations(netName), []);
  });
});

describe("STATUS and errors", () => {
  test("STATUS is fine until the range is exhausted (50); ADD then fails with 100", async () => {
    const tiny = (over: Record<string, unknown> = {}) =>
      config({ name: `${P}tiny`, ...over }, { ranges: [[{ subnet: "10.202.0.0/30" }]] });
    assert.equal((await podnet("STATUS", {}, tiny())).code, 0);
    const ns = lab.netns("tiny");
    const first = await podnet("ADD", attachment(ns), tiny());
    assert.equal(first.code, 0, first.stdout);
    const status = await podnet("STATUS", {}, tiny());
    assert.equal(status.json.code, 50);
    assert.match(status.json.msg, /no free IPv4 address: all 1 addresses of 10\.202\.0\.0\/30/);
    const ipamStatus = await lab.run("podnet-ipam", { command: "STATUS", config: tiny() });
    assert.equal(ipamStatus.json.code, 50);
    const links = nodeLinks();
    const second = await podnet("ADD", attachment(ns, "eth1"), tiny());
    assert.equal(second.json.code, 100);
    assert.match(second.json.msg, /widen the range or release addresses/);
    assert.deepEqual(nodeLinks(), links, "an exhausted ADD creates no link");
    assert.equal((await podnet("STATUS", {}, tiny({ cniVersion: "1.0.0" }))).json.code, 1);
    assert.equal((await podnet("DEL", attachment(ns), tiny())).code, 0);
    assert.equal((await podnet("STATUS", {}, tiny())).code, 0);
  });

  // The codes, for every contender, are in cni-conformance.test.ts; here podnet's messages.
  test("error messages name the problem and the fix; no stack on stdout", async () => {
    const a = attachment(`${P}a`);
    const noEnv = await podnet("ADD", { ifname: "eth0" });
    assert.match(noEnv.json.msg, /CNI_CONTAINERID, CNI_NETNS are not set/);
    const badJson = await lab.run("podnet", { command: "ADD", stdin: "{ nope", ...a }, node);
    assert.match(badJson.json.msg, /not valid JSON/);
    const old = await podnet("ADD", a, config({ cniVersion: "0.2.0" }));
    assert.match(old.json.msg, /"0\.2\.0" is not supported; use one of 0\.3\.0/);
    const badSubnet = await podnet("ADD", a, config({}, { ranges: [[{ subnet: "10.0.0.0/33" }]] }));
    assert.match(
      badSubnet.json.msg,
      /^ipam\.ranges\[0\]\[0\]\.subnet: "10\.0\.0\.0\/33" is not a valid CIDR/,
    );
    const badMtu = await podnet("ADD", a, config({ mtu: "9000" }));
    assert.match(badMtu.json.msg, /mtu must be a whole number/);
    const noNetns = await podnet("ADD", { ...a, netns: "/run/netns/does-not-exist" });
    assert.match(noNetns.json.msg, /CNI_NETNS \/run\/netns\/does-not-exist does not exist/);
    for (const r of [noEnv, badJson, old, badSubnet, badMtu, noNetns]) {
      assert.equal(r.code, 1);
      assert.doesNotMatch(r.stdout, /\n\s+at /);
    }
  });
});

describe("ipMasq", () => {
  test("masquerades pod traffic leaving the node; DEL removes the rules, then the table", async () => {
    const conf = config({ name: `${P}masq`, ipMasq: true }, { ranges: [[{ subnet: "10.203.0.0/24" }]] });
    // An external host behind the node, with no route back to the pods.
    const ext = lab.netns("ext");
    mustSh("ip", [
      "-n",
      node,
      "link",
      "add",
      `${P}x0`,
      "type",
      "veth",
      "peer",
      "name",
      `${P}x1`,
      "netns",
      ext,
    ]);
    mustSh("ip", ["-n", node, "addr", "add", "198.18.0.1/24", "dev", `${P}x0`]);
    mustSh("ip", ["-n", node, "link", "set", `${P}x0`, "up"]);
    mustSh("ip", ["-n", ext, "addr", "add", "198.18.0.2/24", "dev", `${P}x1`]);
    mustSh("ip", ["-n", ext, "link", "set", `${P}x1`, "up"]);
    await lab.serve(ext, "198.18.0.2", 8081, "ext");

    const pods = [lab.netns("m1"), lab.netns("m2")];
    for (const ns of pods) assert.equal((await podnet("ADD", attachment(ns), conf)).code, 0);
    const tables = () => mustSh("ip", ["netns", "exec", node, "nft", "list", "tables"]);
    assert.match(tables(), /table inet podnet-cni-[0-9a-f]{8}/);
    assert.equal(lab.connect(pods[0] as string, "198.18.0.2", 8081), "ext 198.18.0.1");

    // A repeated ADD of a live attachment fails (eth0 exists) and must not disturb it.
    const again = await podnet("ADD", attachment(pods[0] as string), conf);
    assert.equal(again.json.code, 101);
    assert.match(again.json.msg, /interface eth0 already exists/);
    assert.equal(lab.connect(pods[0] as string, "198.18.0.2", 8081), "ext 198.18.0.1");
    assert.equal(allocations(`${P}masq`).length, 2);

    const ruleCount = () =>
      (mustSh("ip", ["netns", "exec", node, "nft", "list", "ruleset"]).match(/masquerade/g) ?? []).length;
    assert.equal(ruleCount(), 2);
    assert.equal((await podnet("DEL", attachment(pods[0] as string), conf)).code, 0);
    assert.equal(ruleCount(), 1);
    assert.throws(() => lab.connect(pods[0] as string, "198.18.0.2", 8081));
    assert.equal((await podnet("DEL", attachment(pods[1] as string), conf)).code, 0);
    assert.doesNotMatch(tables(), /podnet-cni-/);
  });
});

describe("a failed ADD leaves nothing behind", () => {
  test("when the interface exists in the pod", async () => {
    const ns = lab.netns("busy");
    mustSh("ip", ["-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0peer"]);
    const links = nodeLinks();
    const before = allocations().length;
    const r = await podnet("ADD", attachment(ns));
    assert.equal(r.json.code, 101);
    assert.match(r.json.msg, /interface eth0 already exists in/);
    assert.deepEqual(nodeLinks(), links);
    assert.equal(allocations().length, before);
  });

  test("when the pod side fails (a route via an unreachable gateway)", async () => {
    const ns = lab.netns("badroute");
    const links = nodeLinks();
    const before = allocations().length;
    const r = await podnet(
      "ADD",
      attachment(ns),
      config({}, { routes: [{ dst: "192.0.2.0/24", gw: "203.0.113.1" }] }),
    );
    assert.equal(r.json.code, 101, r.stdout);
    assert.match(r.json.msg, /route add 192\.0\.2\.0\/24 via 203\.0\.113\.1 dev eth0/);
    assert.deepEqual(nodeLinks(), links);
    assert.equal(allocations().length, before);
    assert.deepEqual(
      (json(["-n", ns, "link", "show"]) as { ifname: string }[]).map((l) => l.ifname),
      ["lo"],
    );
  });
});

describe("other IPAM plugins", () => {
  // podnet with the reference host-local as IPAM is contender D of cni-conformance.test.ts.
  test("an IPAM type not in CNI_PATH is a configuration error naming it", async () => {
    const ns = lab.netns("noipam");
    const r = await podnet("ADD", attachment(ns), config({}, { type: "no-such-ipam" }));
    assert.equal(r.json.code, 7);
    assert.match(r.json.msg, /no executable named no-such-ipam in CNI_PATH/);
    assert.deepEqual(
      (json(["-n", ns, "link", "show"]) as { ifname: string }[]).map((l) => l.ifname),
      ["lo"],
    );
  });
});

test("nothing of this file's namespaces is visible outside them", () => {
  assert.equal(sh("ip", ["link", "show", BRIDGE]).code, 1, "the bridge is not in the root namespace");
});
