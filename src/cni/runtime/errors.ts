/**
 * Errors of the runtime client. Everything it throws is a `CniError` (code, msg, details) so callers
 * can branch on the spec's codes; the subclasses add what went wrong where.
 */
import { type Diagnostic, formatDiagnostic } from "../../api/diagnostics.js";
import { type CniCommand, CniError, ErrorCode } from "../spec.js";

/** A network configuration (list) that cannot be used: every problem found, each with file, field and fix. */
export class ConfigError extends CniError {
  constructor(
    /** The file (or `<inline>` for an object built in code). */
    readonly file: string,
    readonly diagnostics: Diagnostic[],
  ) {
    const lines = diagnostics.map(formatDiagnostic);
    super(
      ErrorCode.InvalidConfig,
      diagnostics.length === 1
        ? (lines[0] ?? "")
        : `${file}: ${diagnostics.length} errors:\n${lines.map((l) => `  ${l}`).join("\n")}`,
    );
    this.name = "ConfigError";
  }
}

/** Where a plugin error comes from: the plugin's own CNI error, or the runtime failing to run it. */
export type PluginErrorOrigin = "plugin" | "runtime";

/**
 * A plugin invocation failed. `code`/`msg`/`details` are the plugin's CNI error when it printed one
 * (`origin: "plugin"`); otherwise the runtime says why (not found, crashed, bad output, timeout).
 * `code` is 0 when the plugin exited non-zero without printing a CNI error.
 */
export class PluginError extends CniError {
  /** For a failed ADD: errors of the best-effort DEL that cleaned up after it (empty when it succeeded). */
  cleanupErrors: Error[] = [];

  constructor(
    code: number,
    msg: string,
    details: string | undefined,
    /** The plugin's type (executable name). */
    readonly plugin: string,
    readonly command: CniCommand,
    readonly origin: PluginErrorOrigin,
    readonly extra: { exitCode?: number | null; signal?: string | null; stderr?: string } = {},
  ) {
    super(code, msg, details);
    const how = code === 0 ? describeExit(extra) : `code ${code}`;
    const shown = details && !details.startsWith("fix:") ? ` (${details})` : "";
    this.message = `plugin ${plugin} failed (${how}): ${msg}${shown}`;
    this.name = "PluginError";
  }

  get exitCode(): number | null | undefined {
    return this.extra.exitCode;
  }
  get signal(): string | null | undefined {
    return this.extra.signal;
  }
  get stderr(): string | undefined {
    return this.extra.stderr;
  }
}

function describeExit(extra: { exitCode?: number | null; signal?: string | null }): string {
  if (extra.signal) return `killed by ${extra.signal}, no CNI error`;
  return `exit status ${extra.exitCode ?? "?"}, no CNI error on stdout`;
}

/** GC found errors (deleting stale attachments, or plugins' GC); the report says what was done. */
export class GcError extends CniError {
  constructor(
    readonly errors: Error[],
    readonly report: { deleted: { containerID: string; ifname: string }[]; pluginsCollected: boolean },
  ) {
    const first = errors[0];
    super(
      first instanceof CniError ? first.code : ErrorCode.IoFailure,
      errors.length === 1
        ? (first?.message ?? "GC failed")
        : `${errors.length} errors during GC: ${errors.map((e) => e.message).join("; ")}`,
    );
    this.message = this.msg;
    this.name = "GcError";
  }
}
