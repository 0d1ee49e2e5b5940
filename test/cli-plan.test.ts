// The podnet command as users run it: a real process, real files, exit codes and output.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

const CLI = join(process.cwd(), "dist/src/cli/main.js");
const dir = mkdtempSync(join(tmpdir(), "podnet-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function podnet(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { input, encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("plan prints the quickstart plan as a table", () => {
  const r = podnet(["plan", "-f", "examples/quickstart.yaml"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /CLUSTER quickstart/);
  assert.match(r.stdout, /node-1\s+172\.18\.0\.2\s+10\.244\.0\.0\/24\s+10\.244\.0\.1\s+2/);
  assert.match(r.stdout, /shop\s+web\s+ClusterIP\s+10\.96\.0\.2\s+<none>\s+80\/TCP/);
});

test("plan -o json is the plan as data, and -f - reads standard input", () => {
  const yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: solo}\nspec: {containers: [{name: c}]}\n";
  const r = podnet(["plan", "-f", "-", "-o", "json"], yaml);
  assert.equal(r.code, 0, r.stderr);
  const plan = JSON.parse(r.stdout);
  assert.equal(plan.clusters[0].name, "default");
  assert.deepEqual(plan.clusters[0].pods[0], {
    namespace: "default",
    name: "solo",
    node: "node-1",
    ips: ["10.244.0.2"],
    hostNetwork: false,
    placedBy: "scheduled",
  });
});

test("--previous keeps addresses when objects are inserted before existing ones", () => {
  const pod = (name: string) =>
    `---\napiVersion: v1\nkind: Pod\nmetadata: {name: ${name}}\nspec: {containers: [{name: c}]}\n`;
  const first = join(dir, "first.yaml");
  writeFileSync(first, pod("a") + pod("b"));
  const planFile = join(dir, "plan.json");
  const r1 = podnet(["plan", "-f", first, "-o", "json"]);
  writeFileSync(planFile, r1.stdout);
  const second = join(dir, "second.yaml");
  writeFileSync(second, pod("new") + pod("a") + pod("b"));
  const r2 = podnet(["plan", "-f", second, "-o", "json", "--previous", planFile]);
  assert.equal(r2.code, 0, r2.stderr);
  const ipsOf = (out: string) =>
    Object.fromEntries(
      JSON.parse(out).clusters[0].pods.map((p: { name: string; ips: string[] }) => [p.name, p.ips]),
    );
  const before = ipsOf(r1.stdout);
  const now = ipsOf(r2.stdout);
  assert.deepEqual([now.a, now.b], [before.a, before.b]);
  assert.notDeepEqual(now.new, now.a);
});

test("invalid manifests: every error with file and line, exit code 1, nothing on stdout", () => {
  const bad = join(dir, "bad.yaml");
  writeFileSync(
    bad,
    "apiVersion: v1\nkind: Service\nmetadata:\n  name: Web\nspec:\n  ports:\n    - port: 70000\n      protocol: tcp\n",
  );
  const r = podnet(["plan", "-f", bad]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "");
  assert.match(
    r.stderr,
    new RegExp(`${bad}:4: error: Service default/Web: metadata.name: invalid name "Web"`),
  );
  assert.match(r.stderr, new RegExp(`${bad}:7: error: .*spec.ports\\[0\\].port: invalid port 70000`));
  assert.match(
    r.stderr,
    new RegExp(`${bad}:8: error: .*spec.ports\\[0\\].protocol: unsupported value "tcp"`),
  );
});

test("an invalid plan exits 1 with the diagnostics and still prints the plan", () => {
  const f = join(dir, "alias.yaml");
  writeFileSync(
    f,
    "apiVersion: podnet.dev/v1alpha1\nkind: ExternalHost\nmetadata: {name: client}\nspec: {address: 10.96.0.77}\n",
  );
  const r = podnet(["plan", "-f", f]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /aliases external host client.s address 10\.96\.0\.77.*black hole/s);
  assert.match(r.stdout, /CLUSTER default/);
});

test("a missing file and a missing -f are clear errors", () => {
  const r = podnet(["plan", "-f", join(dir, "nope.yaml")]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /not found/);
  const r2 = podnet(["plan"]);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /required option '-f, --filename <file\|dir>' not specified/);
});

test("--help on every command", () => {
  for (const args of [["--help"], ["plan", "--help"]]) {
    const r = podnet(args);
    assert.equal(r.code, 0, args.join(" "));
    assert.match(r.stdout, /Usage: podnet/);
  }
});
