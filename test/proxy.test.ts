// The service proxy's ruleset with real packets: a client namespace — a node namespace holding the rules —
// two backend namespaces (pods) with a TCP and UDP server each that answers with its namespace's name.
//
//   client 172.31.0.100 ── node 172.31.0.2 (nft podnet-proxy) ──┬── pod a 10.244.0.x
//                                                               └── pod b 10.244.0.y
// Pods are routed /32s (no bridge), so hairpin and replies go through the node's rules.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { loadManifestText } from "../src/api/index.js";
import { ipBatch } from "../src/linux/ip.js";
import { connectTcp, udpSocket } from "../src/linux/netns-native.js";
import { nftApply } from "../src/linux/nft.js";
import { planAddresses } from "../src/plan/index.js";
import type { ClusterPlan } from "../src/plan/types.js";
import { planProxyUpdate } from "../src/proxy/diff.js";
import { type ProxyRuleset, planProxyRules, proxyInputFor, proxySyncScript } from "../src/proxy/plan.js";

const prefix = `pnp${randomBytes(3).toString("hex")}`;
const ns = { client: `${prefix}-client`, node: `${prefix}-node`, a: `${prefix}-a`, b: `${prefix}-b` };
const path = (name: string) => `/run/netns/${name}`;
const made: string[] = [];
const servers: ChildProcess[] = [];

const CLUSTER = `
apiVersion: podnet.dev/v1alpha1
kind: Cluster
metadata: {name: t}
spec: {nodeCIDR: 172.31.0.0/24, podCIDRs: [10.244.0.0/16], serviceCIDRs: [10.96.0.0/16], nodes: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: default, labels: {app: web}}
spec: {nodeName: node-1, containers: [{name: c, ports: [{name: http, containerPort: 8080}, {name: dns, containerPort: 5353, protocol: UDP}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: default, labels: {app: web}}
spec: {nodeName: node-1, containers: [{name: c, ports: [{name: http, containerPort: 8080}, {name: dns, containerPort: 5353, protocol: UDP}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}, {name: dns, port: 53, protocol: UDP, targetPort: dns}]
---
apiVersion: v1
kind: Service
metadata: {name: sticky, namespace: default}
spec:
  selector: {app: web}
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: default}
spec: {selector: {app: nothing}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: np, namespace: default}
spec: {type: NodePort, selector: {app: web}, ports: [{port: 80, targetPort: 8080, nodePort: 30080}]}
`;

const LATE = `
---
apiVersion: v1
kind: Service
metadata: {name: late, namespace: default}
spec: {selector: {app: web}, ports: [{port: 8000, targetPort: 8080}]}
`;

function plan(yaml: string) {
  const loaded = loadManifestText(yaml, "proxy-test.yaml");
  const errors = loaded.diagnostics.filter((d) => d.severity === "error");
  assert.deepEqual(errors, []);
  const cluster = planAddresses(loaded.state).clusters[0] as ClusterPlan;
  return {
    state: loaded.state,
    cluster,
    rules: planProxyRules(proxyInputFor(loaded.state, cluster, "node-1")),
  };
}

const first = plan(CLUSTER);
const cluster = first.cluster;
const nodeAddress = cluster.nodes[0]?.address as string;
const podIp = (name: string) => cluster.pods.find((p) => p.name === name)?.ips[0] as string;
const vip = (name: string) => cluster.services.find((s) => s.name === name)?.clusterIPs[0] as string;

/** A tiny server in the namespace: TCP 8080 answers its name then echoes lines; UDP 5353 answers its name. */
const SERVER = `
const [name, addr] = process.argv.slice(1);
const net = require("node:net"), dgram = require("node:dgram");
const tcp = net.createServer((s) => { s.write(name + "\\n"); s.on("data", (d) => s.write(d)); s.on("error", () => {}); });
tcp.listen(8080, addr, () => {
  const udp = dgram.createSocket("udp4");
  udp.on("message", (m, r) => udp.send(name + "\\n", r.port, r.address));
  udp.bind(5353, addr, () => console.log("ready"));
});`;

function startServer(netns: string, name: string, address: string): Promise<void> {
  const child = spawn("ip", ["netns", "exec", netns, process.execPath, "-e", SERVER, name, address], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  servers.push(child);
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`server in ${netns} exited with ${code}`)));
    child.stdout?.once("data", () => resolve());
  });
}

/** Connects from the client namespace (or another), returns the first line the server sent. */
async function ask(host: string, port: number, from = ns.client): Promise<string> {
  const socket = await connectTcp(path(from), host, port, { timeoutMs: 3000 });
  return new Promise((resolve, reject) => {
    let data = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer from ${host}:${port}`));
    }, 3000);
    socket.on("data", (d) => {
      data += d.toString();
      if (data.includes("\n")) {
        clearTimeout(timer);
        socket.destroy();
        resolve(data.trim());
      }
    });
    socket.on("error", reject);
  });
}

async function askUdp(host: string, port: number): Promise<string> {
  const socket = await udpSocket(path(ns.client));
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no UDP answer from ${host}:${port}`)), 3000);
      socket.once("message", (m) => {
        clearTimeout(timer);
        resolve(m.toString().trim());
      });
      socket.send("hello", port, host);
    });
  } finally {
    socket.close();
  }
}

async function connectError(host: string, port: number): Promise<{ code: string | undefined }> {
  try {
    (await connectTcp(path(ns.client), host, port, { timeoutMs: 3000 })).destroy();
    return { code: "connected" };
  } catch (e) {
    return { code: (e as { code?: string }).code };
  }
}

function sh(cmd: string, args: string[]) {
  return spawnSync(cmd, args, { encoding: "utf8", timeout: 10_000 });
}

let applied: ProxyRuleset = first.rules;

before(async () => {
  assert.equal(sh("id", ["-u"]).stdout.trim(), "0", "these tests need root");
  const all = Object.values(ns);
  await ipBatch(all.map((n) => `netns add ${n}`));
  made.push(...all);
  // Links are made inside the node's namespace, the peers straight into theirs: none in the root namespace.
  await ipBatch(
    [
      `link add vc type veth peer name eth0 netns ${path(ns.client)}`,
      ...(["a", "b"] as const).map((p) => `link add v${p} type veth peer name eth0 netns ${path(ns[p])}`),
    ],
    { netns: path(ns.node) },
  );
  sh("ip", ["netns", "exec", ns.node, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  await ipBatch(
    [
      "link set lo up",
      `addr add ${nodeAddress}/24 dev vc`,
      "link set vc up",
      ...(["a", "b"] as const).flatMap((p) => [
        `addr add 10.244.0.1/32 dev v${p}`,
        `link set v${p} up`,
        `route add ${podIp(p)}/32 dev v${p}`,
      ]),
    ],
    { netns: path(ns.node) },
  );
  await ipBatch(
    [
      "link set lo up",
      "addr add 172.31.0.100/24 dev eth0",
      "link set eth0 up",
      `route add default via ${nodeAddress}`,
    ],
    { netns: path(ns.client) },
  );
  for (const p of ["a", "b"] as const) {
    await ipBatch(
      [
        "link set lo up",
        `addr add ${podIp(p)}/32 dev eth0`,
        "link set eth0 up",
        "route add 10.244.0.1 dev eth0",
        "route add default via 10.244.0.1",
      ],
      { netns: path(ns[p]) },
    );
    await startServer(ns[p], p, podIp(p));
  }
  await nftApply(first.rules.text, { netns: path(ns.node) });
});

after(() => {
  for (const s of servers) if (s.pid !== undefined && s.exitCode === null) process.kill(s.pid, "SIGKILL");
  for (const n of made.reverse()) sh("ip", ["netns", "del", n]);
});

describe("service proxy with real packets", () => {
  test("a ClusterIP spreads connections over both endpoints (named targetPort)", async () => {
    const seen = new Map<string, number>();
    for (let i = 0; i < 100; i++) {
      const who = await ask(vip("web"), 80);
      seen.set(who, (seen.get(who) ?? 0) + 1);
    }
    assert.deepEqual([...seen.keys()].sort(), ["a", "b"], JSON.stringify([...seen]));
  });

  test("UDP through a ClusterIP gets an answer from an endpoint", async () => {
    assert.match(await askUdp(vip("web"), 53), /^(a|b)$/);
  });

  test("a Service without endpoints, and an unknown port of a ClusterIP, are refused at once", async () => {
    for (const [host, port] of [
      [vip("empty"), 80],
      [vip("web"), 81],
    ] as const) {
      const r = await connectError(host, port);
      // Refused (an RST or ICMP answer), not timed out: a timeout would be another code.
      assert.equal(r.code, "ECONNREFUSED", `${host}:${port}`);
    }
  });

  test("a NodePort answers on the node's address", async () => {
    assert.match(await ask(nodeAddress, 30080), /^(a|b)$/);
  });

  test("sessionAffinity ClientIP sends one client to one endpoint", async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) seen.add(await ask(vip("sticky"), 80));
    assert.equal(seen.size, 1, [...seen].join(","));
  });

  test("hairpin: a pod reaches itself through its Service", async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) seen.add(await ask(vip("web"), 80, ns.a));
    assert.ok(seen.has("a"), "pod a was never picked (1 in 10^9)");
  });

  test("a diff transaction adds a Service; a full re-sync keeps an open connection", async () => {
    const next = plan(CLUSTER + LATE).rules;
    const update = planProxyUpdate(applied, next);
    assert.ok(update.commands.length <= 6, update.text);
    await nftApply(update.text, { netns: path(ns.node) });
    applied = next;
    const lateVip = next.entries.find((e) => e.owner.startsWith("default/late:"))?.address as string;
    assert.match(await ask(lateVip, 8000), /^(a|b)$/);

    const socket = await connectTcp(path(ns.client), vip("web"), 80, { timeoutMs: 3000 });
    const lines: string[] = [];
    let buffered = "";
    const nextLine = () =>
      new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no line")), 3000);
        const check = () => {
          const i = buffered.indexOf("\n");
          if (i < 0) return;
          clearTimeout(timer);
          socket.off("data", onData);
          const line = buffered.slice(0, i);
          buffered = buffered.slice(i + 1);
          resolve(line);
        };
        const onData = (d: Buffer) => {
          buffered += d.toString();
          check();
        };
        socket.on("data", onData);
        check();
      });
    try {
      lines.push(await nextLine());
      await nftApply(proxySyncScript(next), { netns: path(ns.node) });
      socket.write("still there\n");
      lines.push(await nextLine());
    } finally {
      socket.destroy();
    }
    assert.match(lines[0] as string, /^(a|b)$/);
    assert.equal(lines[1], "still there");
  });

  test("a diff transaction removes an endpoint: pod b unready, every connection goes to a", async () => {
    const unready = CLUSTER.replace(
      "metadata: {name: b, namespace: default, labels: {app: web}}",
      'metadata: {name: b, namespace: default, labels: {app: web}, annotations: {podnet.dev/ready: "false"}}',
    );
    const next = plan(unready + LATE).rules;
    const update = planProxyUpdate(applied, next);
    await nftApply(update.text, { netns: path(ns.node) });
    applied = next;
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) seen.add(await ask(vip("web"), 80));
    assert.deepEqual([...seen], ["a"]);
    assert.deepEqual(
      update.staleUdp.map((f) => f.endpoint),
      [`${podIp("b")}:5353`],
      "b's UDP flows are reported for a conntrack cleanup",
    );
  });
});
