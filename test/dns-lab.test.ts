// The cluster DNS in a running lab: the DNS pod behind kube-system/kube-dns, each pod's resolv.conf, and
// real `dig` and `getent` run inside the pods (through `ip netns exec`, which mounts the pod's resolv.conf),
// plus the lab's probe by name. One lab, taken down in after() (also on failure).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { labApply, labDown, labUp } from "../src/lab/lab.js";
import { netnsNames } from "../src/lab/names.js";
import { readLabState } from "../src/lab/store.js";

const lab = `d${randomBytes(3).toString("hex")}`;
const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const src = (text: string, file = "dns-lab.yaml") => [{ file, text }];
const clientNs = () => netnsNames.pod(lab, "c1", "shop", "client");

const MANIFEST = `apiVersion: podnet.dev/v1alpha1
kind: Cluster
metadata: {name: c1}
spec:
  nodeCIDR: 172.28.0.0/24
  podCIDRs: [10.80.0.0/16]
  serviceCIDRs: [10.81.0.0/16]
  nodes: 2
  dns: {podRecords: verified}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: x, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop}
spec:
  serviceName: db
  replicas: 3
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: x, ports: [{name: sql, containerPort: 5432}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec: {clusterIP: None, selector: {app: db}, ports: [{name: sql, port: 5432}]}
---
apiVersion: v1
kind: Service
metadata: {name: search-engine, namespace: shop}
spec: {type: ExternalName, externalName: search.example.com}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop}
spec: {containers: [{name: c, image: x}]}
`;

/** Runs a command inside the client pod, as a program of the pod would run. */
function inClient(cmd: string, args: string[]): string {
  const r = spawnSync("ip", ["netns", "exec", clientNs(), cmd, ...args], {
    encoding: "utf8",
    timeout: 15_000,
  });
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")}: ${r.stderr}${r.stdout}`);
  return r.stdout.trim();
}
const dig = (...args: string[]) => inClient("dig", ["+short", "+time=2", "+tries=2", ...args]);
/** The status word of a dig answer (NOERROR, NXDOMAIN, …). */
const digStatus = (...args: string[]) =>
  /status: (\w+)/.exec(inClient("dig", ["+time=2", "+tries=2", ...args]))?.[1];

function plan() {
  const c = readLabState(lab)?.plan?.clusters[0];
  assert.ok(c);
  return c;
}
const svcIp = (name: string, ns = "shop") =>
  plan().services.find((s) => s.name === name && s.namespace === ns)?.clusterIPs[0];
const podIp = (name: string) => plan().pods.find((p) => p.name === name)?.ips[0];

describe("cluster DNS in a lab", () => {
  before(async () => {
    const up = await labUp({ lab }, src(MANIFEST));
    assert.deepEqual(up.report.failures, []);
  });
  after(async () => {
    await labDown({ lab });
    assert.ok(!existsSync(`/etc/netns/${clientNs()}`), "down removes the pods' resolv.conf");
  });

  test("the DNS pod runs behind kube-dns on the 10th address; pods get the Kubernetes resolv.conf", () => {
    assert.equal(svcIp("kube-dns", "kube-system"), "10.81.0.10");
    assert.ok(podIp("cluster-dns"), "the DNS pod is attached");
    assert.equal(
      readFileSync(`/etc/netns/${clientNs()}/resolv.conf`, "utf8"),
      "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.81.0.10\noptions ndots:5\n",
    );
  });

  test("A records of a ClusterIP Service: full name, search path (dig +search, getent), UDP and TCP", () => {
    const ip = svcIp("web") as string;
    assert.equal(dig("web.shop.svc.cluster.local"), ip);
    assert.equal(dig("+search", "web"), ip);
    assert.equal(dig("+search", "web.shop"), ip);
    assert.equal(dig("+tcp", "web.shop.svc.cluster.local"), ip);
    assert.match(
      inClient("getent", ["hosts", "web"]),
      new RegExp(`^${ip.replaceAll(".", "\\.")}\\s+web\\.shop\\.svc\\.cluster\\.local`),
    );
  });

  test("headless StatefulSet: A per member, hostname records, SRV per member with their names", () => {
    const members = ["db-0", "db-1", "db-2"];
    const ips = members.map((m) => podIp(m) as string);
    assert.deepEqual(dig("db.shop.svc.cluster.local").split("\n").sort(), [...ips].sort());
    for (const [i, m] of members.entries()) assert.equal(dig(`${m}.db.shop.svc.cluster.local`), ips[i]);
    const srv = dig("SRV", "_sql._tcp.db.shop.svc.cluster.local").split("\n").sort();
    assert.deepEqual(
      srv.map((line) => line.split(" ").slice(2).join(" ")),
      members.map((m) => `5432 ${m}.db.shop.svc.cluster.local.`),
    );
  });

  test("SRV of a named port, PTR, ExternalName CNAME, dns-version, pod records (verified)", () => {
    assert.equal(dig("SRV", "_http._tcp.web.shop.svc.cluster.local"), "0 100 80 web.shop.svc.cluster.local.");
    assert.equal(dig("-x", svcIp("web") as string), "web.shop.svc.cluster.local.");
    assert.equal(dig("CNAME", "search-engine.shop.svc.cluster.local"), "search.example.com.");
    assert.equal(dig("TXT", "dns-version.cluster.local"), '"1.1.0"');
    const client = podIp("client") as string;
    assert.equal(dig(`${client.replaceAll(".", "-")}.shop.pod.cluster.local`), client);
    // verified: an address no pod of that namespace has does not resolve.
    assert.equal(digStatus("10-80-250-250.shop.pod.cluster.local"), "NXDOMAIN");
  });

  test("rcodes: NXDOMAIN for unknown names, NOERROR without answers for a known name's missing type", () => {
    assert.equal(digStatus("nosuch.shop.svc.cluster.local"), "NXDOMAIN");
    assert.equal(digStatus("AAAA", "web.shop.svc.cluster.local"), "NOERROR");
    assert.equal(dig("AAAA", "web.shop.svc.cluster.local"), "");
  });

  test("records follow a change within a second: a new Service resolves right after apply", async () => {
    await labApply(
      { lab },
      src(
        `apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec: {selector: {app: web}, ports: [{port: 8000, targetPort: 8080}]}
`,
        "api.yaml",
      ),
    );
    const ip = svcIp("api") as string;
    const start = Date.now();
    let got = "";
    while (Date.now() - start < 1000 && got !== ip) got = dig("+search", "api");
    assert.equal(got, ip);
  });

  test("podnet lab probe resolves a name through the pod's DNS and connects", () => {
    const r = spawnSync(
      process.execPath,
      [CLI, "lab", "probe", "--name", lab, "-n", "shop", "client", "web", "80"],
      {
        encoding: "utf8",
        timeout: 20_000,
      },
    );
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /connected shop\/client → web \(DNS: web\.shop\.svc\.cluster\.local\)/);
    const bad = spawnSync(
      process.execPath,
      [CLI, "lab", "probe", "--name", lab, "-n", "shop", "client", "nosuch", "80"],
      {
        encoding: "utf8",
        timeout: 20_000,
      },
    );
    assert.equal(bad.status, 1);
    assert.match(
      bad.stderr,
      /"nosuch" does not resolve from the pod \(nameserver 10\.81\.0\.10\): nosuch\.shop\.svc\.cluster\.local: NXDOMAIN/,
    );
  });
});
