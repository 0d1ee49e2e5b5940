import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { ResultCache } from "./cache.js";

const dir = mkdtempSync(join(tmpdir(), "podnet-cache-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const config = { cniVersion: "1.0.0", name: "net", plugins: [{ type: "bridge" }] };
const result = { cniVersion: "1.0.0", ips: [{ address: "10.0.0.2/24" }] };

test("entries are libcni's cniCacheV1 files: <dir>/results/<network>-<containerID>-<ifname>", () => {
  const cache = new ResultCache(dir);
  const file = cache.put({
    network: "net",
    containerID: "c1",
    ifname: "eth0",
    netns: "/run/netns/p",
    args: { K8S_POD_NAME: "web" },
    capabilityArgs: { portMappings: [{ hostPort: 80, containerPort: 8080 }] },
    config,
    result,
  });
  assert.equal(file, join(dir, "results", "net-c1-eth0"));
  const raw = JSON.parse(readFileSync(file, "utf8"));
  assert.equal(raw.kind, "cniCacheV1");
  assert.equal(raw.containerId, "c1");
  assert.equal(raw.ifName, "eth0");
  assert.equal(raw.networkName, "net");
  assert.deepEqual(raw.cniArgs, [["K8S_POD_NAME", "web"]]);
  assert.deepEqual(
    JSON.parse(Buffer.from(raw.config, "base64").toString()),
    config,
    "config as Go encodes []byte",
  );
  const entry = cache.get("net", "c1", "eth0");
  assert.deepEqual(entry?.result, result);
  assert.deepEqual(entry?.args, { K8S_POD_NAME: "web" });
  assert.deepEqual(entry?.config, config);
  assert.equal(entry?.netns, "/run/netns/p");
});

test("list filters by network; foreign or broken files are ignored; delete is idempotent", () => {
  const cache = new ResultCache(dir);
  cache.put({ network: "net", containerID: "c2", ifname: "eth0", config, result });
  cache.put({ network: "net-2", containerID: "c1", ifname: "eth0", config, result });
  writeFileSync(join(dir, "results", "net-broken-eth0"), "{not json");
  writeFileSync(join(dir, "results", "net-legacy-eth0"), JSON.stringify(result));
  assert.deepEqual(
    cache.list("net").map((e) => e.containerID),
    ["c1", "c2"],
  );
  assert.equal(cache.list().length, 3);
  cache.delete("net", "c1", "eth0");
  cache.delete("net", "c1", "eth0");
  assert.equal(cache.get("net", "c1", "eth0"), undefined);
  assert.equal(new ResultCache(join(dir, "nowhere")).list().length, 0);
});
