import assert from "node:assert/strict";
import { test } from "node:test";
import type { Diagnostic } from "../api/diagnostics.js";
import { mergeObjects, objectKey, objectsOf } from "./store.js";

test("objects are keyed by cluster annotation, kind, namespace and name; a List gives its items", () => {
  const diags: Diagnostic[] = [];
  const objects = objectsOf(
    [
      {
        file: "a.yaml",
        text: "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: n}\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: n, annotations: {podnet.dev/cluster: two}}}\n",
      },
    ],
    diags,
  );
  assert.deepEqual(diags, []);
  assert.deepEqual(
    objects.map((o) => [o.key, o.from]),
    [
      ["/Pod/n/p", "a.yaml:1"],
      ["two/Namespace//n", "a.yaml:5"],
    ],
  );
  assert.equal(objectKey({ kind: "Pod" }), undefined);
});

test("merge: applied objects replace those with the same key, deleted keys go", () => {
  const o = (key: string, from: string) => ({ key, from, value: {} });
  const merged = mergeObjects([o("a", "1"), o("b", "1")], { applied: [o("b", "2"), o("c", "2")] });
  assert.deepEqual(
    merged.map((x) => `${x.key}@${x.from}`),
    ["a@1", "b@2", "c@2"],
  );
  assert.deepEqual(
    mergeObjects(merged, { deleted: ["a", "zz"] }).map((x) => x.key),
    ["b", "c"],
  );
});
