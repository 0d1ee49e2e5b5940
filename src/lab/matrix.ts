/**
 * A reachability truth table as text: rows are where probes start ("from"), columns where they go
 * ("to"); `.` connected, `X` blocked, any other short string shown as given (e.g. `-` for not probed).
 *
 * Columns are numbered (names do not fit above a column); a row that is also a column carries that
 * number, and columns that are not rows are listed under the table, so the table stays narrow for 20+
 * pods:
 *
 *     from \ to    1 2 3
 *     1 default/a  . X .
 *     2 default/b  . . .
 *       ext/host   X X .
 *
 *     columns not listed as rows:
 *     3 default/c
 *
 *     . connected   X blocked
 */
export type MatrixCell = "." | "X" | (string & {});

const CORNER = "from \\ to";

export function formatMatrix(
  rows: readonly string[],
  cols: readonly string[],
  cell: (row: string, col: string) => MatrixCell,
): string {
  const numbers = cols.map((_, i) => String(i + 1));
  const numberWidth = Math.max(0, ...numbers.map((n) => n.length));
  const columnOf = new Map<string, number>();
  for (const [i, col] of cols.entries()) if (!columnOf.has(col)) columnOf.set(col, i);

  const cells = rows.map((row) => cols.map((col) => cell(row, col)));
  // One width for every column: uneven columns are hard to follow across a wide table.
  const width = Math.max(1, numberWidth, ...cells.flat().map((v) => v.length));
  const labels = rows.map((row) => {
    const c = columnOf.get(row);
    return `${(c === undefined ? "" : (numbers[c] as string)).padStart(numberWidth)} ${row}`;
  });
  const labelWidth = Math.max(CORNER.length, ...labels.map((l) => l.length));
  const line = (label: string, values: string[]) =>
    `${label.padEnd(labelWidth)}  ${values.map((v) => v.padStart(width)).join(" ")}`.trimEnd();

  const out = [line(CORNER, numbers), ...labels.map((label, r) => line(label, cells[r] as string[]))];
  const rowSet = new Set(rows);
  const unlisted = cols.flatMap((col, c) =>
    rowSet.has(col) ? [] : [`${(numbers[c] as string).padStart(numberWidth)} ${col}`],
  );
  if (unlisted.length > 0) out.push("", "columns not listed as rows:", ...unlisted);
  out.push("", ". connected   X blocked");
  return `${out.join("\n")}\n`;
}
