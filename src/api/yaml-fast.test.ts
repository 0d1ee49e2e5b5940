/** The fast YAML subset parser agrees with the `yaml` library, and falls back outside its subset. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseDocument } from "yaml";
import { parseFast, splitDocuments, Unsupported } from "./yaml-fast.js";

const SUPPORTED = [
  "a: 1\nb: two\nc: 'q''s'\nd: \"x\\ty\\u00e9\"\ne: ~\nf: null\ng: true\nh: False\ni: 0x1F\nj: 0o17\nk: 1.5\nl: .inf\nm: -.5e3\nn: 1e3\no: 012\np: +12\nq: yes\nr: '80'\n",
  "list:\n- a\n- b: 1\n  c: 2\n-   - x\n    - y\n- \n- {a: 1, b: [x, 'y', \"z\"]}\n- []\n- {}\n",
  "a:\n  b:\n    c: d # comment\n  e: f#g\n# full comment\n\n  h: i\n",
  "text: |\n  line1\n  line2\n\n  line4\n\nnext: 1\n",
  "text: |-\n  line1\n    indented\nnext: 1\n",
  "text: >\n  folded\n  text\n\n  para\nnext: 1\n",
  "text: >-\n  folded\n  text\nnext: >\n  x\n",
  "seq:\n  - |\n    lit\n  - y\n",
  "url: http://example.com:8080/x\nkey with spaces: v\n\"quoted key\": 1\n'sq': 2\n",
  "a: [1, 2, 3]\nb: {x: 1}\nc: [a b, c]\n",
  "- a\n- b\n",
  "scalar",
  "a: b # c: d\n",
  "a:\n- x\n- y\nb: 1\n",
  "a: 'it''s'  # c\nb: \"\"\nc: ''\n",
  "a:\r\n  b: 1\r\n",
  'emoji: "\\U0001F600"\n',
  "e: 1_000\nf: 0.\ng: .5\nh: -0\ni: +.inf\nj: .NaN\n",
  'annotations:\n  kubectl.kubernetes.io/last-applied-configuration: |\n    {"apiVersion":"v1"}\n  b: c\n',
  'cmd: ["sh", "-c", "echo hi: there"]\n',
  "toString: 1\nconstructor: 2\n",
  "a:   \n  - 1\n",
  "a: # comment\n  b: 1\n",
  "- - - x\n",
  "a: :x\nb: ?y\nc: -z\n",
  'a: "x" #c\n',
  "a:\n  - name: x\n    ports:\n    - 1\n    - 2\n  - name: y\n",
];

const UNSUPPORTED = [
  "k: v\n  continued plain scalar\n",
  "a: &x 1\nb: *x\n",
  "a: 1\na: 2\n",
  "a: b: c\n",
  'a: "multi\n  line"\n',
  "a: [1,\n 2]\n",
  "x: !!str 1\n",
  "? complex\n: v\n",
  "a:\n\tb: 1\n",
  "1: numeric key\n",
  "text: |+\n  line1\n\n\nnext: 1\n",
  "a:\n  value on its own line\n",
];

test("supported documents parse exactly as the yaml library parses them", () => {
  for (const text of SUPPORTED) {
    const doc = parseDocument(text);
    assert.deepEqual(doc.errors, [], text);
    assert.deepEqual(parseFast(text).value, doc.toJS(), JSON.stringify(text));
  }
});

test("anything outside the subset throws Unsupported (the caller falls back to the yaml library)", () => {
  for (const text of UNSUPPORTED) {
    assert.throws(() => parseFast(text), Unsupported, JSON.stringify(text));
  }
});

test("documents are split at --- and ..., with their starting lines", () => {
  const text = "# header\n---\na: 1\n--- # c\nb: 2\n...\n---\n\nc: 3\n";
  const chunks = splitDocuments(text);
  const docs = chunks.map((c) => ({ start: c.startLine, ...parseFast(c.text) }));
  const values = docs.filter((d) => d.value !== null).map((d) => [d.value, d.start + d.firstLine + 1]);
  assert.deepEqual(values, [
    [{ a: 1 }, 3],
    [{ b: 2 }, 5],
    [{ c: 3 }, 9],
  ]);
});

test("the lines of a root `items` list are recorded", () => {
  const d = parseFast("kind: List\nitems:\n  - a: 1\n\n  - b: 2\n    c: 3\n  - x\n");
  assert.deepEqual(d.itemLines, [2, 4, 6]);
});

test("differential fuzz: wherever the fast parser accepts a mutated manifest, the yaml library agrees", () => {
  const corpus = [...SUPPORTED, ...UNSUPPORTED].join("\n---\n");
  const manifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web # the front end
  labels: {app: web, "tier": 'front'}
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: web
          args: ["--port=80", -v]
          ports:
            - containerPort: 80
              protocol: TCP
      notes: |
        line one
          indented
`;
  const junk = [
    "",
    " ",
    "\n",
    ":",
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "#",
    " #",
    "'",
    '"',
    "\t",
    "|",
    ">",
    "~",
    "0x1",
    "?",
  ];
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  let compared = 0;
  for (let iter = 0; iter < 600; iter++) {
    let s = iter % 2 === 0 ? manifest : corpus;
    for (let e = 0; e < 1 + rnd(3); e++) {
      const pos = rnd(s.length);
      s =
        rnd(2) === 0
          ? s.slice(0, pos) + s.slice(pos + 1 + rnd(5))
          : s.slice(0, pos) + junk[rnd(junk.length)] + s.slice(pos);
    }
    for (const chunk of splitDocuments(s)) {
      let value: unknown;
      try {
        value = parseFast(chunk.text).value;
      } catch (e) {
        assert.ok(e instanceof Unsupported, String(e));
        continue;
      }
      const doc = parseDocument(chunk.text);
      assert.deepEqual(doc.errors, [], `fast parser accepted invalid YAML: ${JSON.stringify(chunk.text)}`);
      assert.deepEqual(value, doc.toJS(), JSON.stringify(chunk.text));
      compared++;
    }
  }
  assert.ok(compared > 500, `only ${compared} documents compared`);
});
