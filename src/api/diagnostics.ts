/**
 * Diagnostics: every problem podnet reports about user input says what, where (file, line, field path)
 * and how to fix it. Loaders and planners collect them all and report at once instead of stopping at
 * the first one.
 */

export type Severity = "error" | "warning" | "info";

/** Where something came from in the user's files. */
export interface SourceLocation {
  file: string;
  /** 1-based line number. */
  line: number;
}

export interface Diagnostic {
  severity: Severity;
  /** A stable identifier for tools and tests, e.g. `range-overlap`, `service-range-alias`. */
  code?: string;
  /** What is wrong, in one sentence. */
  message: string;
  /** How to fix it. */
  hint?: string;
  /** The object concerned, as `Kind namespace/name` or `Kind name`. */
  object?: string;
  /** The field path inside the object, e.g. `spec.ports[0].targetPort`. */
  path?: string;
  /** File and line of the field (or of the object when the field is absent). */
  source?: SourceLocation;
}

/** Formats a diagnostic the way compilers do: `file:line: error: Kind ns/name: path: message (hint)`. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.source ? `${d.source.file}:${d.source.line}: ` : "";
  const what = [d.object, d.path].filter(Boolean).join(": ");
  const hint = d.hint ? `\n    fix: ${d.hint}` : "";
  return `${where}${d.severity}: ${what ? `${what}: ` : ""}${d.message}${hint}`;
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === "error");
}

/** Thrown when input cannot be used; carries every diagnostic found, not just the first. */
export class InvalidInputError extends Error {
  constructor(readonly diagnostics: Diagnostic[]) {
    const errors = diagnostics.filter((d) => d.severity === "error");
    super(
      `${errors.length} error${errors.length === 1 ? "" : "s"}:\n${errors.map(formatDiagnostic).join("\n")}`,
    );
    this.name = "InvalidInputError";
  }
}
