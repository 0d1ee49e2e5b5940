/**
 * The two-cluster tour on examples/two-clusters.yaml, as `podnet lab tour examples/two-clusters.yaml` runs
 * it: peered clusters, an SRV lookup forwarded over TLS to the remote cluster's DNS, direct connections to
 * each StatefulSet member (routed), then the same failing with an explanation (remote cluster on vxlan).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadManifestSources } from "../src/api/loader.js";
import { listNamespaces } from "../src/lab/kernel.js";
import { labDown } from "../src/lab/lab.js";
import { labPrefix } from "../src/lab/names.js";
import { isClustersTour, runClustersTour } from "../src/lab/tour-clusters.js";

const lab = `t${randomBytes(3).toString("hex")}m`;
const file = "examples/two-clusters.yaml";
const text = readFileSync(fileURLToPath(new URL(`../../${file}`, import.meta.url)), "utf8");

test("examples/two-clusters.yaml is a two-cluster tour; the quick-start is not", () => {
  assert.equal(isClustersTour(loadManifestSources([{ file, text }]).state), true);
  const quick = readFileSync(
    fileURLToPath(new URL("../../examples/quickstart.yaml", import.meta.url)),
    "utf8",
  );
  assert.equal(isClustersTour(loadManifestSources([{ file: "q", text: quick }]).state), false);
});

test("the two-cluster tour passes every check it makes and leaves nothing behind", async () => {
  let out = "";
  try {
    const r = await runClustersTour({ lab, sources: [{ file, text }], write: (t) => (out += t) });
    assert.deepEqual(r.failed, [], out);
    // Routed: three members found by SRV, each resolved and connected without NAT.
    assert.equal(out.match(/✔ db-\d saw the client pod's own IP/g)?.length, 3, out);
    assert.match(
      out,
      /✔ dig SRV _db\._tcp\.db\.remote\.svc\.cluster\.local names every member: db-0\.db\.remote\.svc\.cluster\.local:5432, db-1\S+, db-2\S+/,
    );
    // Overlay: DNS still answers, the connections fail, and the reason is the plan's.
    assert.equal(out.match(/✔ client → db-\d\.db\.remote\.svc\.cluster\.local blocked/g)?.length, 3, out);
    assert.equal(
      out.match(/✔ the probe explains it from the plan: why: no: cluster c2 uses the vxlan fabric/g)?.length,
      3,
      out,
    );
    assert.match(out, /c1 → pod IPs of c2: yes, without NAT/);
  } finally {
    await labDown({ lab });
  }
  assert.deepEqual(listNamespaces(labPrefix(lab)), []);
});
