// `podnet cni ...` as users run it: a real process, real conflist files, real plugins in namespaces
// (plugins run in a node namespace via --plugin-netns), exit codes and output.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { isRoot, type Lab, leftovers, PREFIX, REFERENCE_BIN, withLab } from "./cni-harness.js";

const CLI = join(process.cwd(), "dist/src/cli/main.js");
const skip = isRoot && existsSync(join(REFERENCE_BIN, "bridge")) ? false : "needs root and /usr/lib/cni";

after(() => {
  const left = leftovers();
  assert.deepEqual(left, [], `leaked: ${left.join(", ")}`);
});

function podnet(args: string[]) {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function conflist(lab: Lab, file: string, plugins: unknown[], extra: Record<string, unknown> = {}): string {
  const path = join(lab.dir, file);
  writeFileSync(
    path,
    `${JSON.stringify({ cniVersion: "1.0.0", name: "pnr-cli", plugins, ...extra }, null, 2)}\n`,
  );
  return path;
}

function bridgePlugin(lab: Lab, n: number) {
  return {
    type: "bridge",
    bridge: `${PREFIX}-c${n}`,
    isGateway: true,
    ipam: {
      type: "host-local",
      subnet: `10.124.${n}.0/24`,
      dataDir: lab.ipamDir,
      routes: [{ dst: "0.0.0.0/0" }],
    },
  };
}

function common(lab: Lab, bins = [REFERENCE_BIN]): string[] {
  return [
    "--plugin-netns",
    lab.nodePath,
    ...bins.flatMap((b) => ["--bin-dir", b]),
    "--cache-dir",
    lab.cacheDir,
  ];
}

describe("podnet cni", { skip }, () => {
  test("add -o json, check, del: the pod gets its address, the cache entry comes and goes", () =>
    withLab((lab) => {
      const pod = lab.pod("k");
      const file = conflist(lab, "net.conflist", [bridgePlugin(lab, 1)]);
      const target = ["--netns", pod.path, "--container-id", "cli-1"];
      const add = podnet([
        "cni",
        "add",
        file,
        ...target,
        ...common(lab),
        "-o",
        "json",
        "--args",
        "K8S_POD_NAME=web",
      ]);
      assert.equal(add.code, 0, add.stderr);
      const result = JSON.parse(add.stdout);
      assert.equal(result.cniVersion, "1.0.0");
      assert.deepEqual(lab.addresses(pod.name, "eth0"), [result.ips[0].address]);
      assert.deepEqual(readdirSync(join(lab.cacheDir, "results")), ["pnr-cli-cli-1-eth0"]);

      const check = podnet(["cni", "check", file, ...target, ...common(lab)]);
      assert.equal(check.code, 0, check.stderr);
      assert.equal(check.stdout, "CHECK passed: cli-1/eth0 on network pnr-cli\n");

      const del = podnet(["cni", "del", file, ...target, ...common(lab)]);
      assert.equal(del.code, 0, del.stderr);
      assert.equal(del.stdout, "deleted cli-1/eth0 from network pnr-cli\n");
      assert.deepEqual(lab.addresses(pod.name, "eth0"), []);
      assert.deepEqual(readdirSync(join(lab.cacheDir, "results")), []);
      // Again, and without --netns (as after the pod's namespace is gone): DEL is idempotent.
      assert.equal(podnet(["cni", "del", file, "--container-id", "cli-1", ...common(lab)]).code, 0);
    }));

  test("add prints a table; portmap via --cap-args forwards traffic; del uses the cached capability args", () =>
    withLab(async (lab) => {
      const pod = lab.pod("m");
      const ext = lab.external();
      const file = conflist(lab, "pm.conflist", [
        bridgePlugin(lab, 2),
        { type: "portmap", capabilities: { portMappings: true } },
      ]);
      const capArgs = JSON.stringify({
        portMappings: [{ hostPort: 18090, containerPort: 8080, protocol: "tcp" }],
      });
      const add = podnet([
        "cni",
        "add",
        file,
        "--netns",
        pod.path,
        "--container-id",
        "cli-2",
        "--cap-args",
        capArgs,
        ...common(lab),
      ]);
      assert.equal(add.code, 0, add.stderr);
      assert.match(add.stdout, /^INTERFACE\s+MAC\s+MTU\s+SANDBOX$/m);
      assert.match(add.stdout, /^eth0\s+\S+\s+\/run\/netns\//m);
      assert.match(add.stdout, /^10\.124\.2\.2\/24\s+10\.124\.2\.1\s+eth0$/m);
      await lab.tcpServer(pod.name, 8080, "via the CLI");
      assert.equal(lab.tcpGet(ext.name, ext.nodeAddress, 18090), "via the CLI");
      const del = podnet([
        "cni",
        "del",
        file,
        "--netns",
        pod.path,
        "--container-id",
        "cli-2",
        ...common(lab),
      ]);
      assert.equal(del.code, 0, del.stderr);
      assert.notEqual(lab.tcpGet(ext.name, ext.nodeAddress, 18090), "via the CLI");
    }));

  test("a failing plugin: `podnet cni add: plugin X failed (code N): msg`, exit 1, nothing left", () =>
    withLab((lab) => {
      const pod = lab.pod("x");
      const file = conflist(lab, "fail.conflist", [
        bridgePlugin(lab, 3),
        { type: "recorder", fail: { ADD: { code: 7, msg: "no such field frobnicate" } } },
      ]);
      const r = podnet([
        "cni",
        "add",
        file,
        "--netns",
        pod.path,
        "--container-id",
        "cli-3",
        ...common(lab, [REFERENCE_BIN, lab.fakeBin]),
      ]);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, "");
      assert.equal(r.stderr, "podnet cni add: plugin recorder failed (code 7): no such field frobnicate\n");
      assert.deepEqual(lab.addresses(pod.name, "eth0"), []);
      assert.ok(!existsSync(join(lab.ipamDir, "pnr-cli", "10.124.3.2")), "the bridge's address was released");
    }));

  test("configuration and argument errors name the file, line and field with a fix; exit 1", () =>
    withLab((lab) => {
      const pod = lab.pod("y");
      const file = conflist(lab, "bad.conflist", [
        { type: "bridge" },
        { capabilities: { portMappings: true } },
      ]);
      const target = ["--netns", pod.path, "--container-id", "cli-4"];
      const bad = podnet(["cni", "add", file, ...target, ...common(lab)]);
      assert.equal(bad.code, 1);
      assert.equal(
        bad.stderr,
        `podnet cni add: ${file}:8: error: plugins[1].type: missing field "type" (the plugin executable to run)\n` +
          '    fix: set "type" to the file name of a plugin in the CNI bin directories, e.g. "bridge"\n',
      );
      const missing = podnet(["cni", "add", join(lab.dir, "none.conflist"), ...target, ...common(lab)]);
      assert.equal(missing.code, 1);
      assert.match(
        missing.stderr,
        /^podnet cni add: .*none\.conflist:1: error: cannot read the network configuration/,
      );

      const good = conflist(lab, "good.conflist", [bridgePlugin(lab, 4)]);
      const capArgs = podnet(["cni", "add", good, ...target, ...common(lab), "--cap-args", "{nope"]);
      assert.equal(capArgs.code, 1);
      assert.match(capArgs.stderr, /^podnet cni add: --cap-args: not valid JSON/);
      const ifname = podnet(["cni", "add", good, ...target, ...common(lab), "--ifname", "a/b"]);
      assert.equal(ifname.code, 1);
      assert.match(ifname.stderr, /^podnet cni add: invalid interface name "a\/b"\n {4}fix: /);
      const noPlugin = podnet([
        "cni",
        "add",
        good,
        ...target,
        "--bin-dir",
        lab.fakeBin,
        "--cache-dir",
        lab.cacheDir,
      ]);
      assert.equal(noPlugin.code, 1);
      assert.match(
        noPlugin.stderr,
        /^podnet cni add: plugin bridge failed \(code 4\): no executable "bridge"/,
      );
      const noNode = podnet(["cni", "add", good, ...target, "--plugin-netns", "/run/netns/pnr-none"]);
      assert.equal(noNode.code, 1);
      assert.match(
        noNode.stderr,
        /^podnet cni add: plugin bridge failed \(code 4\): the network namespace plugins should run in, \/run\/netns\/pnr-none, does not exist\n {4}fix: /,
      );
      const noNetns = podnet(["cni", "add", good, "--container-id", "cli-4", ...common(lab)]);
      assert.notEqual(noNetns.code, 0);
      assert.match(noNetns.stderr, /--netns/);
    }));

  test("status and gc; install puts podnet's plugins in a bin directory", () =>
    withLab((lab) => {
      const a = lab.pod("sa");
      const b = lab.pod("sb");
      const file = conflist(lab, "gc.conflist", [bridgePlugin(lab, 5)]);
      const status = podnet(["cni", "status", file, ...common(lab)]);
      assert.equal(status.code, 0, status.stderr);
      assert.equal(status.stdout, "STATUS not run: version 1.0.0 has no STATUS (1.1.0 and later)\n");
      for (const [pod, id] of [
        [a, "gc-a"],
        [b, "gc-b"],
      ] as const)
        assert.equal(
          podnet(["cni", "add", file, "--netns", pod.path, "--container-id", id, ...common(lab)]).code,
          0,
        );
      const gc = podnet(["cni", "gc", file, "--valid", "gc-a/eth0", ...common(lab)]);
      assert.equal(gc.code, 0, gc.stderr);
      assert.equal(
        gc.stdout,
        "deleted stale attachment gc-b/eth0\nGC not sent to the plugins: version 1.0.0 has no GC (1.1.0 and later)\n",
      );
      assert.deepEqual(lab.addresses(b.name, "eth0"), []);
      assert.equal(lab.addresses(a.name, "eth0").length, 1);
      const badValid = podnet(["cni", "gc", file, "--valid", "gc-a", ...common(lab)]);
      assert.equal(badValid.code, 1);
      assert.match(badValid.stderr, /^podnet cni gc: --valid: "gc-a" is not CONTAINER_ID\/IFNAME/);

      const bin = join(lab.dir, "installed");
      const install = podnet(["cni", "install", "--dir", bin]);
      assert.equal(install.code, 0, install.stderr);
      assert.equal(
        install.stdout,
        `installed ${join(bin, "podnet")}\ninstalled ${join(bin, "podnet-ipam")}\n`,
      );
      const podnetList = join(lab.dir, "podnet.conflist");
      writeFileSync(
        podnetList,
        JSON.stringify({
          cniVersion: "1.1.0",
          name: "pnr-cli-podnet",
          plugins: [
            {
              type: "podnet",
              bridge: `${PREFIX}-c6`,
              ipam: { type: "podnet-ipam", subnet: "10.124.6.0/24", dataDir: lab.ipamDir },
            },
          ],
        }),
      );
      const ready = podnet(["cni", "status", podnetList, ...common(lab, [bin])]);
      assert.equal(ready.code, 0, ready.stderr);
      assert.equal(ready.stdout, "network pnr-cli-podnet: ready (1 plugin)\n");
      const c = lab.pod("sc");
      const add = podnet([
        "cni",
        "add",
        podnetList,
        "--netns",
        c.path,
        "--container-id",
        "p-1",
        ...common(lab, [bin]),
      ]);
      assert.equal(add.code, 0, add.stderr);
      assert.deepEqual(lab.addresses(c.name, "eth0"), ["10.124.6.2/24"]);
      const del = podnet([
        "cni",
        "del",
        podnetList,
        "--netns",
        c.path,
        "--container-id",
        "p-1",
        ...common(lab, [bin]),
      ]);
      assert.equal(del.code, 0, del.stderr);
    }));
});
