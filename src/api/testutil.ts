/** Helpers for the api tests (not exported from index.ts). */
import type { Diagnostic } from "./diagnostics.js";

/** Dedents a template literal and drops its first newline, so line 1 is the first line written. */
export function yaml(strings: TemplateStringsArray, ...values: unknown[]): string {
  let text = strings.reduce((acc, s, i) => acc + s + (i < values.length ? String(values[i]) : ""), "");
  text = text.replace(/^\n/, "");
  const indents = text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => /^ */.exec(l)?.[0].length ?? 0);
  const min = Math.min(...indents);
  return text
    .split("\n")
    .map((l) => l.slice(min))
    .join("\n");
}

export function errorsOf(diags: Diagnostic[]): Diagnostic[] {
  return diags.filter((d) => d.severity === "error");
}

export function show(diags: Diagnostic[]): string {
  return diags
    .map(
      (d) =>
        `${d.source?.file}:${d.source?.line} ${d.severity} ${d.object ?? ""} ${d.path ?? ""}: ${d.message}`,
    )
    .join("\n");
}
