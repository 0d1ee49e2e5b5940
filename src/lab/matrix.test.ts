import assert from "node:assert/strict";
import { test } from "node:test";
import { formatMatrix } from "./matrix.js";

test("square matrix: rows carry their column numbers", () => {
  const pods = ["default/a", "default/b", "web/c"];
  const text = formatMatrix(pods, pods, (from, to) =>
    from === "default/a" && to === "default/b" ? "X" : ".",
  );
  assert.equal(
    text,
    [
      "from \\ to    1 2 3",
      "1 default/a  . X .",
      "2 default/b  . . .",
      "3 web/c      . . .",
      "",
      ". connected   X blocked",
      "",
    ].join("\n"),
  );
});

test("columns that are not rows are listed under the table", () => {
  const text = formatMatrix(["ext/host"], ["default/a", "default/b"], () => "X");
  assert.equal(
    text,
    [
      "from \\ to   1 2",
      "  ext/host  X X",
      "",
      "columns not listed as rows:",
      "1 default/a",
      "2 default/b",
      "",
      ". connected   X blocked",
      "",
    ].join("\n"),
  );
});

test("10+ columns: every column as wide as the widest number, cells aligned under them", () => {
  const pods = Array.from({ length: 12 }, (_, i) => `ns/p${i + 1}`);
  const lines = formatMatrix(pods, pods, (from, to) => (from === to ? "-" : ".")).split("\n");
  const header = lines[0] as string;
  assert.equal(header, "from \\ to   1  2  3  4  5  6  7  8  9 10 11 12");
  assert.equal(lines[1], " 1 ns/p1    -  .  .  .  .  .  .  .  .  .  .  .");
  assert.equal(lines[12], "12 ns/p12   .  .  .  .  .  .  .  .  .  .  .  -");
  for (const row of lines.slice(1, 13)) assert.equal(row.length, header.length);
});

test("wider cells widen the columns", () => {
  const text = formatMatrix(["a"], ["a", "b"], (_, to) => (to === "b" ? "refused" : "."));
  assert.equal(text.split("\n")[1], "1 a              . refused");
  assert.match(text, /columns not listed as rows:\n2 b\n/);
});

test("empty", () => {
  assert.equal(
    formatMatrix([], [], () => "."),
    "from \\ to\n\n. connected   X blocked\n",
  );
});
