import assert from "node:assert/strict";
import { test } from "node:test";
import { parseRequest } from "./server.js";

test("a request carries the plugin, only the CNI_* variables, and stdin verbatim", () => {
  const r = parseRequest('podnet-cni/1 podnet\nCNI_COMMAND=ADD\nCNI_ARGS=A=1;B=2\nHOME=/root\n\n{"a":\n1}\n');
  assert.equal(r.plugin, "podnet");
  assert.deepEqual(r.env, { CNI_COMMAND: "ADD", CNI_ARGS: "A=1;B=2" });
  assert.equal(r.stdin, '{"a":\n1}\n');
});

test("malformed requests are refused (the launcher then runs the plugin itself)", () => {
  assert.throws(() => parseRequest("podnet-cni/1 podnet\nCNI_COMMAND=ADD"), /no blank line/);
  assert.throws(() => parseRequest("GET / HTTP/1.1\n\n"), /expected "podnet-cni\/1 <plugin>"/);
});
