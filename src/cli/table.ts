/** kubectl-style tables: upper-case headers, columns separated by three spaces, no borders. */
export function formatTable(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, c) => Math.max(...cells.map((row) => (row[c] ?? "").length)));
  return cells
    .map((row) =>
      row
        .map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c] ?? 0)))
        .join("   ")
        .trimEnd(),
    )
    .join("\n");
}
