// Black-box CNI conformance: one table of the spec's behaviours, run against four pairs of main + IPAM plugin
// executed as a runtime executes them (env + stdin, inside a node namespace, pods in namespaces of their
// own, real packets). Root only.
//
//   A  podnet + podnet-ipam                  B  reference bridge + host-local (Debian's plugins, spec ≤ 1.0.0)
//   C  reference bridge + podnet-ipam        D  podnet + reference host-local
//
// podnet must do what the spec says. Where a pair with a reference plugin does something else (than the spec,
// or than podnet where the spec names no answer), the test asserts what it does — so a change shows — and
// lists the difference at the end; src/cni/README.md ("Conformance and differences") has the same list.
// Also here: the result shapes of A and B for one configuration, and both IPAMs under concurrency (8
// processes × 125 ADD/DEL cycles, SIGKILL in the middle of ADDs, parallel executables).
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { baseEnv, type CniCall, CniLab, type CniOutcome, mustSh, sh } from "./support/cni-harness.js";

const REF = "/usr/lib/cni";
const haveReference = existsSync(join(REF, "bridge")) && existsSync(join(REF, "host-local"));
const noReference = haveReference ? false : `the reference plugins are not installed in ${REF}`;
const VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
const WORKER = join(process.cwd(), "dist/test/support/ipam-worker.js");

const lab = new CniLab("pnc");
const P = lab.prefix;

type Id = "A" | "B" | "C" | "D";

interface Contender {
  id: Id;
  title: string;
  /** The main plugin: `podnet` (installed in the lab) or the reference bridge's path. */
  main: string;
  ipam: "podnet-ipam" | "host-local";
  /** Of the five versions podnet speaks, those the pair speaks. */
  versions: string[];
  /** Why the pair does not speak the others, or has no GC and STATUS (1.1.0). */
  older?: string;
  /** 10.230.N.0/24 */
  n: number;
}

const CONTENDERS: Contender[] = [
  { id: "A", title: "podnet + podnet-ipam", main: "podnet", ipam: "podnet-ipam", versions: VERSIONS, n: 1 },
  {
    id: "B",
    title: "reference bridge + host-local",
    main: `${REF}/bridge`,
    ipam: "host-local",
    versions: VERSIONS.slice(0, 4),
    older: "the reference plugins (1.1.1) speak up to 1.0.0: no 1.1.0, so no STATUS and no GC",
    n: 2,
  },
  {
    id: "C",
    title: "reference bridge + podnet-ipam",
    main: `${REF}/bridge`,
    ipam: "podnet-ipam",
    versions: VERSIONS.slice(0, 4),
    older: "the reference bridge speaks up to 1.0.0: no 1.1.0, so no STATUS and no GC",
    n: 3,
  },
  {
    id: "D",
    title: "podnet + reference host-local",
    main: "podnet",
    ipam: "host-local",
    versions: VERSIONS.slice(0, 4),
    older: "podnet passes its cniVersion on to host-local, which speaks up to 1.0.0: no 1.1.0, STATUS or GC",
    n: 4,
  },
];

// ---------------------------------------------------------------------------------------------
// Differences: collected while the cases run, printed by the last test.

const differences = new Map<string, string>();

function differ(c: Contender, topic: string, what: string): void {
  differences.set(`${c.id} ${topic}`, `${c.id} (${c.title}) — ${topic}: ${what}`);
}

// ---------------------------------------------------------------------------------------------
// Helpers.

const node = (c: Contender) => `${P}${c.id}n`;
const network = (c: Contender) => `${P}${c.id}`;
const bridge = (c: Contender) => `${P}${c.id}br`;
const gateway = (c: Contender) => `10.230.${c.n}.1`;
const maxVersion = (c: Contender) => c.versions.at(-1) as string;

function config(
  c: Contender,
  cniVersion: string,
  over: Record<string, unknown> = {},
  ipam: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    cniVersion,
    name: network(c),
    type: c.main === "podnet" ? "podnet" : "bridge",
    bridge: bridge(c),
    isGateway: true,
    isDefaultGateway: true,
    hairpinMode: true,
    mtu: 1400,
    ipam: { type: c.ipam, dataDir: lab.dataDir, ranges: [[{ subnet: `10.230.${c.n}.0/24` }]], ...ipam },
    ...over,
  };
}

interface Attach {
  containerId: string;
  ifname: string;
  netns: string;
}

function attach(ns: string, ifname = "eth0", containerId = `${ns}-id`): Attach {
  return { containerId, ifname, netns: lab.path(ns) };
}

function run(c: Contender, command: string, a: Partial<Attach>, conf: unknown, extra: Partial<CniCall> = {}) {
  return lab.run(c.main, { command, config: conf, ...a, ...extra }, node(c));
}

/** Addresses allocated in the store of the contender's network (both IPAMs: one file per address). */
function allocations(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => !f.startsWith(".") && !f.startsWith("last_reserved") && f !== "lock");
}
const stored = (c: Contender) => allocations(join(lab.dataDir, network(c)));

function links(ns: string): string[] {
  return (JSON.parse(mustSh("ip", ["-j", "-n", ns, "link", "show"])) as { ifname: string }[]).map(
    (l) => l.ifname,
  );
}

function podAddresses(ns: string, dev: string): string[] {
  const r = sh("ip", ["-j", "-n", ns, "addr", "show", "dev", dev]);
  if (r.code !== 0) return [];
  const [link] = JSON.parse(r.stdout) as {
    addr_info: { local: string; prefixlen: number; scope: string }[];
  }[];
  return (link?.addr_info ?? []).filter((a) => a.scope === "global").map((a) => `${a.local}/${a.prefixlen}`);
}

/** A real packet: one ICMP echo from the pod to `ip` (three tries of one second). */
function pings(ns: string, ip: string): boolean {
  for (let i = 0; i < 3; i++)
    if (sh("ip", ["netns", "exec", ns, "ping", "-c1", "-W1", ip]).code === 0) return true;
  return false;
}

interface ResultJson {
  cniVersion: string;
  interfaces: { name: string; mac?: string; mtu?: number; sandbox?: string }[];
  ips: { version?: string; address: string; gateway?: string; interface?: number }[];
  routes?: { dst: string; gw?: string }[];
  dns?: Record<string, unknown>;
}

/** The host side of a result: the interface without sandbox that is not the bridge. */
function hostVeth(c: Contender, r: ResultJson): string {
  const veth = r.interfaces.find((i) => !i.sandbox && i.name !== bridge(c));
  assert.ok(veth, `the result lists the host veth: ${JSON.stringify(r.interfaces)}`);
  return veth.name;
}

type Outcome = "ok" | number;

/** "ok" for exit 0; else the code of the error JSON on stdout (which must be one: code and msg). */
function outcome(r: CniOutcome): Outcome {
  if (r.code === 0) return "ok";
  assert.equal(r.code, 1, `a failing plugin exits 1: ${r.stdout}${r.stderr}`);
  assert.equal(typeof r.json?.code, "number", `the error is JSON with a code: ${r.stdout}`);
  assert.equal(typeof r.json.msg, "string", `the error has a msg: ${r.stdout}`);
  return r.json.code;
}

/** The spec's error JSON has cniVersion (the version in use); the reference's has none. */
function errorVersion(c: Contender, r: CniOutcome, version: string | undefined): void {
  if (r.code === 0) return;
  if (c.main === "podnet") {
    if (version !== undefined) assert.equal(r.json.cniVersion, version, r.stdout);
    else assert.equal(typeof r.json.cniVersion, "string", r.stdout);
  } else if (r.json.cniVersion === undefined) {
    differ(c, "error JSON", "has no cniVersion (the spec lists cniVersion, code, msg, details)");
  }
}

// ---------------------------------------------------------------------------------------------
// The error table: what each pair answers. `spec` is the code SPEC.md names; where it names none, podnet's
// answer (A) is the reference point. A must match the spec; a difference of B, C or D is listed.

interface ErrorRow {
  name: string;
  spec?: number;
  expect: Record<Id, Outcome>;
  /** Checks a successful outcome (where a pair succeeds); returns what to say about it. */
  onOk?: (r: CniOutcome) => string;
  skip?: (c: Contender) => string | false;
  call: (c: Contender, a: Attach) => { version?: string } & Partial<CniCall>;
}

const v100 = (c: Contender, over: Record<string, unknown> = {}, ipam: Record<string, unknown> = {}) =>
  config(c, "1.0.0", over, ipam);

const ERROR_ROWS: ErrorRow[] = [
  {
    name: "CNI_COMMAND missing",
    spec: 4,
    expect: { A: 4, B: "ok", C: "ok", D: 4 },
    onOk: (r) => {
      assert.match(r.stdout + r.stderr, /CNI protocol versions supported/);
      return "exits 0 and prints its name and versions";
    },
    // (podnet reads no stdin without a command: its error speaks podnet's own version, 1.1.0)
    call: (c) => ({ config: v100(c), env: { CNI_COMMAND: undefined } }),
  },
  {
    name: "CNI_COMMAND unknown (FOO)",
    spec: 4,
    expect: { A: 4, B: 4, C: 4, D: 4 },
    call: (c) => ({ config: v100(c), env: { CNI_COMMAND: "FOO" } }),
  },
  {
    name: "ADD without CNI_CONTAINERID",
    spec: 4,
    expect: { A: 4, B: 4, C: 4, D: 4 },
    call: (c) => ({ version: "1.0.0", config: v100(c), env: { CNI_CONTAINERID: undefined } }),
  },
  {
    name: "ADD without CNI_NETNS",
    spec: 4,
    expect: { A: 4, B: 4, C: 4, D: 4 },
    call: (c) => ({ version: "1.0.0", config: v100(c), env: { CNI_NETNS: undefined } }),
  },
  {
    name: "ADD without CNI_IFNAME",
    spec: 4,
    expect: { A: 4, B: 4, C: 4, D: 4 },
    call: (c) => ({ version: "1.0.0", config: v100(c), env: { CNI_IFNAME: undefined } }),
  },
  {
    name: "ADD without CNI_PATH",
    expect: { A: "ok", B: 4, C: 4, D: 4 },
    call: (c) => ({ version: "1.0.0", config: v100(c), env: { CNI_PATH: undefined } }),
  },
  {
    name: "ADD with a CNI_NETNS that does not exist",
    expect: { A: 4, B: 999, C: 999, D: 4 },
    call: (c) => ({ version: "1.0.0", config: v100(c), netns: `/run/netns/${P}gone` }),
  },
  {
    name: "stdin is not JSON",
    spec: 6,
    expect: { A: 6, B: 6, C: 6, D: 6 },
    call: () => ({ stdin: "{ nope" }),
  },
  {
    name: "cniVersion 9.9.9",
    spec: 1,
    expect: { A: 1, B: 1, C: 1, D: 1 },
    call: (c) => ({ version: "9.9.9", config: config(c, "9.9.9") }),
  },
  {
    name: "cniVersion 1.1.0 where the pair speaks up to 1.0.0",
    spec: 1,
    expect: { A: "ok", B: 1, C: 1, D: 1 },
    skip: (c) => c.versions.includes("1.1.0") && "the pair speaks 1.1.0",
    call: (c) => ({ version: "1.1.0", config: config(c, "1.1.0") }),
  },
  {
    name: "cniVersion 0.2.0 (before 0.3.0)",
    expect: { A: 1, B: "ok", C: 1, D: 1 },
    onOk: (r) => {
      assert.equal(r.json.cniVersion, "0.2.0");
      assert.match(r.json.ip4?.ip ?? "", /^10\.230\.\d+\.\d+\/24$/, r.stdout);
      return "succeeds with a 0.2.0 result (ip4/ip6, no interfaces list)";
    },
    call: (c) => ({ version: "0.2.0", config: config(c, "0.2.0") }),
  },
  {
    name: "invalid configuration: ipam subnet 10.0.0.0/33",
    spec: 7,
    expect: { A: 7, B: 999, C: 7, D: 999 },
    call: (c) => ({ version: "1.0.0", config: v100(c, {}, { ranges: [[{ subnet: "10.0.0.0/33" }]] }) }),
  },
  {
    name: 'invalid configuration: "mtu": "9000" (a string)',
    spec: 7,
    expect: { A: 7, B: 999, C: 999, D: 7 },
    call: (c) => ({ version: "1.0.0", config: v100(c, { mtu: "9000" }) }),
  },
  {
    name: "CHECK without prevResult",
    // C: the reference bridge asks the IPAM first, and podnet-ipam finds no allocation
    expect: { A: 7, B: 999, C: 102, D: 7 },
    call: (c) => ({ version: "1.0.0", command: "CHECK", config: v100(c) }),
  },
  {
    name: "STATUS with cniVersion 1.0.0",
    expect: { A: 1, B: 4, C: 4, D: 1 },
    call: (c) => ({ version: "1.0.0", command: "STATUS", config: v100(c) }),
  },
  {
    name: "GC with cniVersion 1.0.0",
    expect: { A: 1, B: 4, C: 4, D: 1 },
    call: (c) => ({ version: "1.0.0", command: "GC", config: v100(c) }),
  },
];

// ---------------------------------------------------------------------------------------------

before(() => {
  if (!existsSync(WORKER)) throw new Error(`${WORKER} is missing: run npm run build`);
});

const started: ChildProcess[] = [];

after(() => {
  // Workers run in process groups of their own (the group's ID is the worker's PID): kill what is left.
  for (const w of started) if (w.exitCode === null && w.signalCode === null && w.pid) killGroup(w.pid);
  assert.deepEqual(lab.cleanup(), [], "namespaces left behind");
});

function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // gone already
  }
}

for (const c of CONTENDERS) {
  const skip = c.main === "podnet" && c.ipam === "podnet-ipam" ? false : noReference;
  describe(`${c.id}: ${c.title}`, { skip }, () => {
    let pod = ""; // reused by the ADD cases: each leaves it as it found it
    before(() => {
      lab.netns(`${c.id}n`);
      pod = lab.netns(`${c.id}v`);
    });

    test("VERSION: supportedVersions includes every version the pair speaks", async () => {
      const exes = [c.main, c.ipam === "podnet-ipam" ? "podnet-ipam" : `${REF}/host-local`];
      const lists: string[][] = [];
      for (const exe of exes) {
        const r = await lab.run(exe, { command: "VERSION", stdin: '{"cniVersion":"1.0.0"}' });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.equal(r.json.cniVersion, "1.0.0");
        lists.push(r.json.supportedVersions);
      }
      const both = VERSIONS.filter((v) => lists.every((l) => l.includes(v)));
      assert.deepEqual(both, c.versions);
      for (const [i, list] of lists.entries()) {
        if (c.id === "A") assert.deepEqual(list, VERSIONS);
        else if (list.join() !== VERSIONS.join())
          differ(c, `VERSION of ${exes[i]?.split("/").at(-1)}`, `supportedVersions ${JSON.stringify(list)}`);
      }
    });

    for (const version of VERSIONS) {
      const unsupported = !c.versions.includes(version) && (c.older ?? "not spoken");
      test(`ADD at ${version}: the encoding, the address on the pod's interface, a packet to the gateway; DEL`, {
        skip: unsupported,
      }, async () => {
        const ns = pod;
        const a = attach(ns, "eth0", `${c.id}-v${version}`);
        const add = await run(c, "ADD", a, config(c, version));
        assert.equal(add.code, 0, add.stdout + add.stderr);
        const r = add.json as ResultJson;
        assert.equal(r.cniVersion, version);
        // Interfaces: exactly one in the sandbox, the one asked for; `mtu` exists from 1.1.0 on only.
        const inside = r.interfaces.flatMap((i, n) => (i.sandbox ? [n] : []));
        assert.equal(inside.length, 1, JSON.stringify(r.interfaces));
        const index = inside[0] as number;
        assert.deepEqual([r.interfaces[index]?.name, r.interfaces[index]?.sandbox], ["eth0", lab.path(ns)]);
        if (version !== "1.1.0")
          for (const i of r.interfaces) assert.equal(i.mtu, undefined, `no mtu at ${version}`);
        else assert.equal(r.interfaces[index]?.mtu, 1400);
        // ips: `version` below 1.0.0 only; each on the sandbox interface, with the gateway.
        assert.equal(r.ips.length, 1);
        for (const ip of r.ips) {
          assert.equal(ip.version, version.startsWith("0.") ? "4" : undefined, JSON.stringify(ip));
          assert.equal(ip.interface, index);
          assert.equal(ip.gateway, gateway(c));
        }
        assert.deepEqual(
          r.routes?.find((rt) => rt.dst === "0.0.0.0/0"),
          { dst: "0.0.0.0/0", gw: gateway(c) },
        );
        // The kernel agrees, and a packet goes through.
        assert.deepEqual(podAddresses(ns, "eth0"), [r.ips[0]?.address]);
        assert.ok(pings(ns, gateway(c)), `the pod reaches its gateway ${gateway(c)}`);

        const del = await run(
          c,
          "DEL",
          a,
          config(c, version, version.startsWith("0.3") ? {} : { prevResult: r }),
        );
        assert.equal(del.code, 0, del.stdout + del.stderr);
        assert.equal(del.stdout.trim(), "");
        assert.deepEqual(links(ns), ["lo"]);
        assert.ok(!links(node(c)).includes(hostVeth(c, r)), "the host veth is gone");
      });
    }

    test("DEL is idempotent (twice, without prevResult, after the pod's namespace is gone) and releases the address", async () => {
      const v = maxVersion(c);
      const ns = lab.netns(`${c.id}del`);
      const a = attach(ns);
      const add = await run(c, "ADD", a, config(c, v));
      assert.equal(add.code, 0, add.stdout + add.stderr);
      const r = add.json as ResultJson;
      const address = r.ips[0]?.address as string;
      const ip = address.split("/")[0] as string;
      assert.ok(stored(c).includes(ip), "the store has the address");

      const withPrev = await run(c, "DEL", a, config(c, v, { prevResult: r }));
      assert.equal(withPrev.code, 0, withPrev.stdout);
      const again = await run(c, "DEL", a, config(c, v));
      assert.equal(again.code, 0, `a second DEL, without prevResult: ${again.stdout}`);
      assert.ok(!stored(c).includes(ip), "the store has no entry for the address");
      assert.deepEqual(links(ns), ["lo"]);
      assert.ok(!links(node(c)).includes(hostVeth(c, r)), "the host veth is gone");

      // The next ADD can have it (asked for with CNI_ARGS IP=).
      const b = attach(ns, "eth0", `${ns}-id2`);
      const next = await run(c, "ADD", b, config(c, v), { env: { CNI_ARGS: `IgnoreUnknown=1;IP=${ip}` } });
      assert.equal(next.code, 0, next.stdout + next.stderr);
      assert.equal(next.json.ips[0].address, address);

      // The pod's namespace is deleted before DEL (CNI_NETNS names a path that is gone), then DEL again
      // without CNI_NETNS and prevResult.
      lab.deleteNetns(ns);
      const gone = await run(c, "DEL", b, config(c, v, { prevResult: next.json }));
      assert.equal(gone.code, 0, gone.stdout + gone.stderr);
      assert.ok(!stored(c).includes(ip), "released after the namespace was gone");
      const bare = await run(c, "DEL", { containerId: b.containerId, ifname: "eth0" }, config(c, v));
      assert.equal(bare.code, 0, `DEL without CNI_NETNS: ${bare.stdout}`);
      assert.ok(!links(node(c)).includes(hostVeth(c, next.json)), "the host veth is gone");
    });

    test("CHECK passes on a healthy attachment and fails (an error JSON with a code) when the address is removed", async () => {
      const v = maxVersion(c);
      const ns = lab.netns(`${c.id}chk`);
      const a = attach(ns);
      const add = await run(c, "ADD", a, config(c, v));
      assert.equal(add.code, 0, add.stdout + add.stderr);
      const withPrev = config(c, v, { prevResult: add.json });
      try {
        const ok = await run(c, "CHECK", a, withPrev);
        assert.equal(ok.code, 0, ok.stdout + ok.stderr);
        assert.equal(ok.stdout.trim(), "");

        mustSh("ip", ["-n", ns, "addr", "del", add.json.ips[0].address, "dev", "eth0"]);
        const missing = await run(c, "CHECK", a, withPrev);
        const code = outcome(missing);
        errorVersion(c, missing, v);
        const expected = { A: 102, B: 999, C: 999, D: 102 }[c.id];
        assert.equal(code, expected, missing.stdout);
        if (c.id === "A")
          assert.match(
            missing.json.msg,
            /address 10\.230\.\d+\.\d+\/24 \(from prevResult\) is missing on eth0/,
          );
        else if (code !== 102) {
          const msg = String(missing.json.msg).replace(/\d+\.\d+\.\d+\.\d+(\/\d+)?/g, "ADDRESS");
          differ(c, "CHECK after the address was removed", `code ${code}, "${msg}" (podnet: 102)`);
        }
      } finally {
        await run(c, "DEL", a, config(c, v));
        lab.deleteNetns(ns);
      }
    });

    test("GC with cni.dev/valid-attachments releases every other attachment", {
      skip: c.older ?? false,
    }, async () => {
      const ns = lab.netns(`${c.id}gc`);
      const conf = (over: Record<string, unknown> = {}) => config(c, "1.1.0", over);
      const results: Record<string, ResultJson> = {};
      for (const ifname of ["eth0", "eth1", "eth2"]) {
        const r = await run(c, "ADD", attach(ns, ifname), conf());
        assert.equal(r.code, 0, r.stdout + r.stderr);
        results[ifname] = r.json;
      }
      const keep = { containerID: `${ns}-id`, ifname: "eth1" };
      const gc = await run(c, "GC", {}, conf({ "cni.dev/valid-attachments": [keep] }));
      assert.equal(gc.code, 0, gc.stdout + gc.stderr);
      assert.equal(gc.stdout.trim(), "");
      assert.deepEqual(stored(c), [results.eth1?.ips[0]?.address.split("/")[0]]);
      const check = await run(c, "CHECK", attach(ns, "eth1"), conf({ prevResult: results.eth1 }));
      assert.equal(check.code, 0, `the valid attachment is intact: ${check.stdout}`);
      for (const ifname of ["eth0", "eth1", "eth2"]) await run(c, "DEL", attach(ns, ifname), conf());
      assert.deepEqual(stored(c), []);
      lab.deleteNetns(ns);
    });

    test("STATUS succeeds on a usable network", { skip: c.older ?? false }, async () => {
      const r = await run(c, "STATUS", {}, config(c, "1.1.0"));
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(r.stdout.trim(), "");
    });

    describe("errors", () => {
      let ns = "";
      before(() => {
        ns = lab.netns(`${c.id}err`);
      });
      for (const [i, row] of ERROR_ROWS.entries()) {
        const expected = row.expect[c.id];
        test(`${row.name} → ${row.spec ?? "(the spec names no code)"}`, {
          skip: row.skip?.(c) ?? false,
        }, async () => {
          const a = attach(ns, "eth0", `${c.id}-e${i}`);
          const { version, ...call } = row.call(c, a);
          try {
            const r = await lab.run(c.main, { command: "ADD", ...a, ...call }, node(c));
            const got = outcome(r);
            errorVersion(c, r, version);
            assert.equal(got, expected, `${row.name}: ${r.stdout}${r.stderr}`);
            const said = got === "ok" ? (row.onOk?.(r) ?? "succeeds") : `code ${got}`;
            if (c.id === "A") {
              if (row.spec !== undefined) assert.equal(got, row.spec, "podnet answers with the spec's code");
            } else {
              const reference = row.spec ?? ERROR_ROWS[i]?.expect.A;
              if (got !== reference)
                differ(c, row.name, `${said} (${row.spec === undefined ? "podnet" : "spec"}: ${reference})`);
            }
          } finally {
            // Whatever happened, nothing of this attachment stays (a DEL with a valid configuration).
            await run(c, "DEL", a, v100(c));
          }
        });
      }
      test("nothing is left of the failed and the successful calls", () => {
        assert.deepEqual(links(ns), ["lo"]);
        assert.deepEqual(stored(c), []);
      });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Result shapes: the same configuration for A and B at 1.0.0, each on a node of its own (same bridge name,
// subnets, gateway, MTU, network name; separate stores, so both hand out the same addresses).

type Flat = Record<string, string>;

/** The result as path → value, values that must differ between plugins (MACs, veth names) as patterns. */
function flatShape(r: ResultJson, ns: string): Flat {
  const out: Flat = {};
  const walk = (value: unknown, path: string) => {
    if (Array.isArray(value)) {
      out[`${path}.length`] = String(value.length);
      for (const [i, v] of value.entries()) walk(v, `${path}[${i}]`);
    } else if (value !== null && typeof value === "object") {
      out[`${path}{}`] = Object.keys(value).sort().join(",") || "(no keys)";
      for (const [k, v] of Object.entries(value)) walk(v, path ? `${path}.${k}` : k);
    } else out[path] = JSON.stringify(value);
  };
  walk(r, "");
  for (const [k, v] of Object.entries(out)) {
    if (k.endsWith(".mac")) out[k] = /^"([0-9a-f]{2}:){5}[0-9a-f]{2}"$/.test(v) ? "<mac>" : v;
    if (k.endsWith(".name") && /^"veth[0-9a-f]{8}"$/.test(v)) out[k] = "<veth + 8 hex>";
    if (k.endsWith(".sandbox") && v === JSON.stringify(lab.path(ns))) out[k] = "<pod netns>";
  }
  return out;
}

function shapeDiff(podnet: Flat, reference: Flat): string[] {
  const keys = [...new Set([...Object.keys(podnet), ...Object.keys(reference)])].sort();
  return keys
    .filter((k) => podnet[k] !== reference[k])
    .map((k) => `${k}: podnet ${podnet[k] ?? "(absent)"}, reference ${reference[k] ?? "(absent)"}`);
}

const SHAPE_VARIANTS: {
  name: string;
  ipam: Record<string, unknown>;
  extra: Record<string, unknown>;
  /** The differences found, each a documented one (src/cni/README.md). */
  differences: string[];
}[] = [
  {
    name: "IPv4, no routes, no dns",
    ipam: { ranges: [[{ subnet: "10.231.0.0/24" }]] },
    extra: {},
    differences: [
      "dns{}: podnet (absent), reference (no keys)",
      "{}: podnet cniVersion,interfaces,ips,routes, reference cniVersion,dns,interfaces,ips,routes",
    ],
  },
  {
    name: "dual-stack, an IPAM route without gw, dns",
    ipam: {
      ranges: [[{ subnet: "10.231.0.0/24" }], [{ subnet: "fd31::/64" }]],
      routes: [{ dst: "10.96.0.0/12" }],
    },
    extra: { dns: { nameservers: ["10.96.0.10"], search: ["svc.cluster.local"] } },
    differences: [
      'routes[0].gw: podnet "10.231.0.1", reference (absent)',
      "routes[0]{}: podnet dst,gw, reference dst",
    ],
  },
];

describe("result shape at 1.0.0: A (podnet + podnet-ipam) and B (reference bridge + host-local)", {
  skip: noReference,
}, () => {
  for (const [i, variant] of SHAPE_VARIANTS.entries()) {
    test(`${variant.name}: equal but for the documented differences`, async () => {
      const shapes: Flat[] = [];
      for (const [j, main] of ["podnet", `${REF}/bridge`].entries()) {
        const nodeNs = lab.netns(`s${i}${j}n`);
        const ns = lab.netns(`s${i}${j}p`);
        const conf = {
          cniVersion: "1.0.0",
          name: `${P}shape`,
          type: j === 0 ? "podnet" : "bridge",
          bridge: `${P}sbr`,
          isGateway: true,
          isDefaultGateway: true,
          hairpinMode: true,
          mtu: 1400,
          ipam: {
            type: j === 0 ? "podnet-ipam" : "host-local",
            dataDir: join(lab.dir, `shape${i}${j}`),
            ...variant.ipam,
          },
          ...variant.extra,
        };
        const r = await lab.run(main, { command: "ADD", config: conf, ...attach(ns) }, nodeNs);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        shapes.push(flatShape(r.json, ns));
        const del = await lab.run(main, { command: "DEL", config: conf, ...attach(ns) }, nodeNs);
        assert.equal(del.code, 0, del.stdout);
        lab.deleteNetns(ns);
        lab.deleteNetns(nodeNs);
      }
      const found = shapeDiff(shapes[0] as Flat, shapes[1] as Flat);
      for (const d of found) differences.set(`shape ${d}`, `result shape (${variant.name}) — ${d}`);
      assert.deepEqual(found, variant.differences);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// The IPAMs under concurrency: podnet-ipam (A, C) and host-local (B, D), separate processes sharing one
// store. No address is ever handed out twice, nothing leaks once DEL (and GC, where there is one) ran, and a
// process killed during ADD causes no duplicate later.

const IPAMS = [
  {
    name: "podnet-ipam (A, C)",
    key: "pi",
    /** What the worker runs: podnet-ipam in-process (node starts are slow), host-local as executable. */
    type: "podnet-ipam",
    worker: "podnet-ipam",
    exe: "podnet-ipam",
    version: "1.1.0",
    owner: /^k\d+-\d+\neth0$/,
    exhausted: 100,
    skip: false as string | false,
  },
  {
    name: "host-local (B, D)",
    key: "hl",
    type: "host-local",
    worker: `${REF}/host-local`,
    exe: `${REF}/host-local`,
    version: "1.0.0",
    owner: /^k\d+-\d+\r?\neth0$/,
    exhausted: 999,
    skip: noReference,
  },
];

function ipamConfig(type: string, version: string, name: string, ranges: unknown): string {
  return JSON.stringify({ cniVersion: version, name, type, ipam: { type, dataDir: lab.dataDir, ranges } });
}

function worker(args: string[]): {
  child: ChildProcess;
  done: Promise<{ code: number | null; out: string }>;
} {
  // A process group of its own, so that a kill also takes the executable it is running.
  const child = spawn(process.execPath, [WORKER, ...args], {
    env: baseEnv(),
    stdio: ["ignore", "pipe", "inherit"],
    detached: true,
  });
  started.push(child);
  let out = "";
  child.stdout?.on("data", (b) => {
    out += b;
  });
  const done = new Promise<{ code: number | null; out: string }>((resolve) =>
    child.on("close", (code) => resolve({ code, out })),
  );
  return { child, done };
}

for (const ipam of IPAMS) {
  describe(`IPAM under concurrency: ${ipam.name}`, { skip: ipam.skip }, () => {
    const ipamCall = (command: string, stdin: string, containerId?: string) =>
      lab.run(ipam.exe, {
        command,
        stdin,
        ...(containerId ? { containerId, ifname: "eth0", netns: "/proc/self/ns/net" } : {}),
      });

    test("8 processes × 125 ADD/DEL cycles over 10 addresses: no duplicate, no leak", async () => {
      const net = `${P}conc${ipam.key}`;
      const conf = ipamConfig(ipam.type, ipam.version, net, [
        [{ subnet: "10.232.0.0/24", rangeStart: "10.232.0.10", rangeEnd: "10.232.0.19" }],
      ]);
      const claims = join(lab.dir, `claims-${net}`);
      mkdirSync(claims);
      const workers = Array.from({ length: 8 }, (_, i) =>
        worker(["cycles", ipam.worker, conf, String(i), "125", claims]),
      );
      const results = await Promise.all(workers.map((w) => w.done));
      let adds = 0;
      for (const r of results) {
        assert.equal(r.code, 0, r.out);
        const summary = JSON.parse(r.out.trim());
        adds += summary.adds;
        assert.ok(summary.distinct > 1, "each worker saw several addresses");
      }
      assert.equal(adds, 1000);
      const dir = join(lab.dataDir, net);
      assert.deepEqual(allocations(dir), [], "every DEL released its address");
      assert.deepEqual(readdirSync(claims), []);
      if (ipam.version === "1.1.0") {
        const gc = await ipamCall("GC", conf);
        assert.equal(gc.code, 0, gc.stdout);
        assert.deepEqual(
          readdirSync(dir).filter((f) => !f.startsWith("last_")),
          [],
          "no allocation and no temporary file is left",
        );
      }
    });

    test("processes killed (SIGKILL) at random moments of ADD/DEL never cause a duplicate; leaks are released", async () => {
      const net = `${P}kill${ipam.key}`;
      const dir = join(lab.dataDir, net);
      const conf = ipamConfig(ipam.type, ipam.version, net, [
        [{ subnet: "10.233.0.0/24", rangeStart: "10.233.0.10", rangeEnd: "10.233.0.25" }],
      ]);
      const capacity = 16;
      let incomplete = 0;
      for (let round = 0; round < 12; round++) {
        const w = worker(["churn", ipam.worker, conf, String(round)]);
        await new Promise<void>((resolve) => w.child.stdout?.once("data", () => resolve()));
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 60));
        killGroup(w.child.pid as number);
        await w.done;
        // Whatever the moment, an allocation file names its owner completely (podnet-ipam: by construction).
        for (const f of allocations(dir)) {
          const text = readFileSync(join(dir, f), "utf8");
          if (ipam.owner.test(text)) continue;
          if (ipam.worker === "podnet-ipam") assert.fail(`${f} holds ${JSON.stringify(text)}`);
          incomplete++;
        }
      }
      if (incomplete > 0)
        differences.set(
          "host-local kill",
          `host-local — killed during ADD, it left an allocation file without its owner (${incomplete} seen), which no DEL releases`,
        );
      const leaked = allocations(dir);
      assert.ok(leaked.length <= 12, `at most one leak per kill, got ${leaked.length}`);

      // Fill every free address from parallel executables: all distinct, none an address still held.
      const fill = await Promise.all(
        Array.from({ length: capacity - leaked.length + 2 }, (_, i) => ipamCall("ADD", conf, `fill-${i}`)),
      );
      const got = fill.filter((r) => r.code === 0).map((r) => r.json.ips[0].address.split("/")[0]);
      const exhausted = fill.filter((r) => r.code !== 0);
      assert.equal(got.length, capacity - leaked.length);
      assert.equal(new Set(got).size, got.length, "no address handed out twice");
      for (const ip of got) assert.ok(!leaked.includes(ip), `${ip} was still held by a killed process`);
      assert.equal(exhausted.length, 2);
      for (const r of exhausted) assert.equal(r.json.code, ipam.exhausted, r.stdout);
      if (ipam.exhausted !== 100)
        differences.set(
          `${ipam.key} exhausted`,
          `${ipam.name} — ADD when the range is full: code ${ipam.exhausted}, "${exhausted[0]?.json.msg}" (podnet-ipam: 100)`,
        );

      // The leaks are released: by GC with the fillers as the valid attachments (podnet-ipam, also the
      // temporary files of killed writers), by DEL of their owners (host-local, which has no GC).
      const fillers = fill.map((r, i) => (r.code === 0 ? `fill-${i}` : undefined)).filter(Boolean);
      if (ipam.version === "1.1.0") {
        const valid = fillers.map((id) => ({ containerID: id, ifname: "eth0" }));
        const gc = await ipamCall(
          "GC",
          JSON.stringify({ ...JSON.parse(conf), "cni.dev/valid-attachments": valid }),
        );
        assert.equal(gc.code, 0, gc.stdout);
        assert.deepEqual(
          readdirSync(dir).filter((f) => f.startsWith(".")),
          [],
          "temporary files of killed processes are removed",
        );
      } else {
        for (const f of leaked) {
          const owner = readFileSync(join(dir, f), "utf8").split(/\r?\n/)[0];
          if (owner) assert.equal((await ipamCall("DEL", conf, owner)).code, 0);
        }
      }
      // host-local's ownerless files (counted now, not per round: one file may be seen in several rounds).
      const ownerless = allocations(dir).filter(
        (f) => !/\S\r?\neth0$/.test(readFileSync(join(dir, f), "utf8")),
      );
      assert.equal(allocations(dir).length - ownerless.length, got.length, "only the fillers hold addresses");
    });

    test("parallel executables (8 × 4 ADDs, dual-stack) get distinct addresses", async () => {
      const net = `${P}exec${ipam.key}`;
      const conf = ipamConfig(ipam.type, ipam.version, net, [
        [{ subnet: "10.234.0.0/24" }],
        [{ subnet: "fd34::/120" }],
      ]);
      const runs = await Promise.all(
        Array.from({ length: 8 }, async (_, w) => {
          const out: string[] = [];
          for (let i = 0; i < 4; i++) {
            const r = await ipamCall("ADD", conf, `x${w}-${i}`);
            assert.equal(r.code, 0, r.stdout + r.stderr);
            out.push(...r.json.ips.map((ip: { address: string }) => ip.address));
          }
          return out;
        }),
      );
      const all = runs.flat();
      assert.equal(all.length, 64);
      assert.equal(new Set(all).size, 64);
      assert.equal(allocations(join(lab.dataDir, net)).length, 64);
    });
  });
}

test("differences from the spec and from podnet (also in src/cni/README.md)", (t) => {
  const list = [...differences.values()].sort();
  for (const d of list) t.diagnostic(d);
});
