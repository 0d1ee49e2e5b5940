// The fabric planner's output applied to real namespaces: an underlay switch, two nodes, a pod on each,
// pod-to-pod packets across nodes in routed and in VXLAN mode, and the VXLAN MTU facts.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { loadManifestText } from "../src/api/index.js";
import { fabricCommands, planFabric } from "../src/fabric/plan.js";
import { ipBatch } from "../src/linux/ip.js";
import { planAddresses } from "../src/plan/index.js";
import type { ClusterPlan } from "../src/plan/types.js";

const prefix = `pnf${randomBytes(3).toString("hex")}`;
const made: string[] = [];
const nsPath = (name: string) => `/run/netns/${name}`;

function sh(cmd: string, args: string[]) {
  return spawnSync(cmd, args, { encoding: "utf8", timeout: 10_000 });
}

async function addNamespaces(names: string[]): Promise<void> {
  await ipBatch(names.map((n) => `netns add ${n}`));
  made.push(...names);
}

function clusterPlan(fabric: string): ClusterPlan {
  const yaml = `apiVersion: podnet.dev/v1alpha1\nkind: Cluster\nmetadata: {name: c}\nspec:\n  nodeCIDR: 172.18.0.0/24\n  nodes: 2\n  fabric: ${fabric}\n`;
  return planAddresses(loadManifestText(yaml, "c.yaml").state).clusters[0] as ClusterPlan;
}

/** Builds underlay + nodes + one pod per node (by hand: the CNI plugin is tested elsewhere), then the fabric. */
async function buildCluster(tag: string, plan: ClusterPlan): Promise<{ pods: string[]; podIps: string[] }> {
  const ul = `${prefix}-${tag}-ul`;
  const nodes = plan.nodes.map((_, i) => `${prefix}-${tag}-n${i + 1}`);
  const pods = plan.nodes.map((_, i) => `${prefix}-${tag}-p${i + 1}`);
  await addNamespaces([ul, ...nodes, ...pods]);
  const mtu = plan.fabric.underlayMTU;
  await ipBatch(
    [
      "link add sw0 type bridge",
      `addr add ${plan.router.nodeNetworkAddress}/24 dev sw0`,
      "link set sw0 up",
      ...plan.nodes.flatMap((_, i) => [
        `link add ul${i} mtu ${mtu} type veth peer name eth0 netns ${nsPath(nodes[i] as string)}`,
        `link set ul${i} master sw0 up`,
      ]),
    ],
    { netns: nsPath(ul) },
  );
  const podIps: string[] = [];
  for (const [i, node] of plan.nodes.entries()) {
    const block = node.podCIDRs[0] as string;
    const podIp = block.replace(/\.0\/24$/, ".2");
    podIps.push(podIp);
    sh("ip", ["netns", "exec", nodes[i] as string, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    await ipBatch(
      [
        `addr add ${node.address}/24 dev eth0`,
        "link set eth0 up",
        "link set lo up",
        "link add cbr0 type bridge",
        `addr add ${node.gateways[0]}/24 dev cbr0`,
        "link set cbr0 up",
        `link add vp mtu ${plan.fabric.podMTU} type veth peer name eth0 netns ${nsPath(pods[i] as string)}`,
        "link set vp master cbr0 up",
      ],
      { netns: nsPath(nodes[i] as string) },
    );
    await ipBatch(
      [
        "link set lo up",
        `addr add ${podIp}/24 dev eth0`,
        "link set eth0 up",
        `route add default via ${node.gateways[0]}`,
      ],
      { netns: nsPath(pods[i] as string) },
    );
  }
  const fabric = planFabric(plan);
  for (const [i, nodeFabric] of fabric.nodes.entries()) {
    const { ip, bridge } = fabricCommands(nodeFabric);
    await ipBatch(ip, { netns: nsPath(nodes[i] as string) });
    if (bridge.length > 0) {
      const r = spawnSync("ip", ["netns", "exec", nodes[i] as string, "bridge", "-batch", "-"], {
        input: `${bridge.join("\n")}\n`,
        encoding: "utf8",
      });
      assert.equal(r.status, 0, r.stderr);
    }
  }
  return { pods, podIps };
}

function ping(fromNs: string, to: string, extra: string[] = []) {
  return sh("ip", ["netns", "exec", fromNs, "ping", "-c1", "-W2", ...extra, to]);
}

before(() => {
  assert.equal(sh("id", ["-u"]).stdout.trim(), "0", "these tests need root");
});

after(() => {
  for (const ns of made.reverse()) sh("ip", ["netns", "del", ns]);
});

describe("routed fabric (host-gw)", () => {
  test("a pod reaches a pod on the other node by its IP, through the nodes' routes", async () => {
    const { pods, podIps } = await buildCluster("r", clusterPlan("{mode: routed}"));
    const r = ping(pods[0] as string, podIps[1] as string);
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });
});

describe("VXLAN fabric", () => {
  let built: { pods: string[]; podIps: string[] };
  before(async () => {
    built = await buildCluster("v", clusterPlan("{mode: vxlan, vni: 42, mtu: 1500}"));
  });

  test("a pod reaches a pod on the other node through the overlay", () => {
    const r = ping(built.pods[0] as string, built.podIps[1] as string);
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  test("pod MTU is 1450: 1422 bytes of ICMP payload with DF pass, 1423 do not", () => {
    const [from, to] = [built.pods[0] as string, built.podIps[1] as string];
    const fits = ping(from, to, ["-M", "do", "-s", "1422"]);
    assert.equal(fits.status, 0, fits.stdout + fits.stderr);
    const tooBig = ping(from, to, ["-M", "do", "-s", "1423"]);
    assert.notEqual(tooBig.status, 0);
    assert.match(tooBig.stdout + tooBig.stderr, /message too long|mtu/i);
  });
});
