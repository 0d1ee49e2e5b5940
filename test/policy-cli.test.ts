// `podnet policy matrix` and `podnet policy explain` from manifests (no kernel, no root needed).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";

const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "podnet-policy-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function podnet(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const shop = file(
  "shop.yaml",
  `apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  containers: [{name: c, image: x, ports: [{containerPort: 8080, name: http}, {containerPort: 53, protocol: UDP}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop, labels: {app: client}}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: other, namespace: shop, labels: {app: other}}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-client, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: client}}}]
      ports: [{port: http}]
`,
);

test("matrix: the lab matrix's format, per declared port and protocol", () => {
  const r = podnet("policy", "matrix", "-f", shop, "--protocols", "tcp,udp");
  assert.equal(r.code, 0, r.stderr);
  const sections = r.stdout.split("\n\n\n");
  assert.equal(
    sections[0],
    [
      "53/TCP:",
      "from \\ to      1 2 3",
      "1 shop/web     . . .",
      "2 shop/client  X . .",
      "3 shop/other   X . .",
      "",
      ". connected   X blocked",
    ].join("\n"),
  );
  // 8080/TCP: only the client reaches web (the named port resolves to 8080 on web)
  assert.match(
    r.stdout,
    /8080\/TCP:\nfrom \\ to {6}1 2 3\n1 shop\/web {5}\. \. \.\n2 shop\/client {2}\. \. \.\n3 shop\/other {3}X \. \./,
  );
  assert.match(r.stdout, /36 verdicts computed in [\d.]+ s \(static: from the manifests, no packets\)\n$/);
});

test("matrix -o json lists every verdict", () => {
  const r = podnet("policy", "matrix", "-f", shop, "--ports", "8080", "-o", "json");
  assert.equal(r.code, 0, r.stderr);
  const data = JSON.parse(r.stdout) as { results: { from: string; to: string; outcome: string }[] };
  assert.equal(data.results.length, 9);
  assert.equal(data.results.find((x) => x.from === "shop/other" && x.to === "shop/web")?.outcome, "blocked");
  assert.equal(
    data.results.find((x) => x.from === "shop/client" && x.to === "shop/web")?.outcome,
    "connected",
  );
});

test("explain: the rule that allows, exit 0", () => {
  const r = podnet("policy", "explain", "-f", shop, "-n", "shop", "client", "web", "8080");
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /^shop\/client \(10\.\d+\.\d+\.\d+\) → shop\/web \(10\.\d+\.\d+\.\d+\) 8080\/TCP: ALLOWED\n/,
  );
  assert.match(
    r.stdout,
    /egress of shop\/client .*: allowed — selected by no policy, so not isolated for egress/,
  );
  assert.match(
    r.stdout,
    /ingress of shop\/web .*: allowed by shop\/web-from-client ingress\[0\] \(from\[0\] pods \{app=client\} in namespace shop; ports\[0\] http\/TCP \(8080 on shop\/web\)\) — selected by shop\/web-from-client/,
  );
});

test("explain: denied because isolated and no rule matches, exit 2; UDP and IP sources", () => {
  const denied = podnet("policy", "explain", "-f", shop, "shop/other", "shop/web", "8080");
  assert.equal(denied.code, 2);
  assert.match(denied.stdout, /: DENIED\n/);
  assert.match(
    denied.stdout,
    /ingress of shop\/web .*: DENIED — isolated for ingress \(selected by shop\/web-from-client\) and no rule of them matches/,
  );
  const udp = podnet("policy", "explain", "-f", shop, "shop/client", "shop/web", "53", "--protocol", "udp");
  assert.equal(udp.code, 2, "the rule's named port is TCP http only");
  const ip = podnet("policy", "explain", "-f", shop, "192.0.2.1", "shop/web", "8080", "-o", "json");
  assert.equal(ip.code, 2);
  const data = JSON.parse(ip.stdout) as { allowed: boolean; egress: { reason: string } };
  assert.equal(data.allowed, false);
  assert.equal(data.egress.reason, "not-a-pod");
});

test("invalid policies: every error with file:line and a fix, exit 1", () => {
  const bad = file(
    "bad.yaml",
    `apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bad, namespace: shop}
spec:
  podSelector:
    matchExpressions: [{key: app, operator: In}]
  ingress:
    - from: [{ipBlock: {cidr: 10.0.0.0/33}}]
      ports: [{endPort: 90}, {port: 0}, {port: "80"}]
`,
  );
  const r = podnet("policy", "matrix", "-f", bad);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /bad\.yaml:11: error: NetworkPolicy shop\/bad: spec\.podSelector\.matchExpressions\[0\]\.values: Required value/,
  );
  assert.match(r.stderr, /bad\.yaml:13: error: .*ipBlock\.cidr: "10\.0\.0\.0\/33" is not a valid CIDR/);
  assert.match(
    r.stderr,
    /bad\.yaml:14: error: .*ports\[0\]\.endPort: Required value: may not be specified when `port` is not specified\n {4}fix: add port/,
  );
  assert.match(r.stderr, /bad\.yaml:14: error: .*ports\[1\]\.port: invalid port 0/);
  assert.match(
    r.stderr,
    /bad\.yaml:14: error: .*ports\[2\]\.port: .*named port must contain at least one letter/,
  );
  assert.match(r.stderr, /podnet: the manifests have errors \(above\)/);
  assert.equal(r.stdout, "");
});

test("usage errors say how to fix them", () => {
  assert.match(podnet("policy", "matrix").stderr, /no manifests: pass -f FILE \(or --lab NAME/);
  assert.match(
    podnet("policy", "explain", "-f", shop, "nope", "shop/web", "80").stderr,
    /no pod "nope" in the manifests; name a pod as NAMESPACE\/NAME/,
  );
  assert.match(
    podnet("policy", "explain", "-f", shop, "shop/web", "shop/web", "99999").stderr,
    /port "99999" is not a port number/,
  );
  assert.match(
    podnet("policy", "matrix", "--lab", "no-such-lab-here").stderr,
    /lab "no-such-lab-here" does not exist/,
  );
});
