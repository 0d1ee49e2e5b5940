/** Options every command shares, with kubectl's names and habits. */
import { type Command, InvalidArgumentError, Option } from "commander";
import { stringify } from "yaml";
import { type Diagnostic, formatDiagnostic, hasErrors } from "../api/diagnostics.js";
import { type LoadResult, loadManifestFiles } from "../api/index.js";

export type OutputFormat = "table" | "json" | "yaml";

/** Thrown by commands for a user error: printed without a stack trace, exit code 1. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function addFileOption(cmd: Command, required = true): Command {
  const option = new Option(
    "-f, --filename <file|dir>",
    "manifests: a file, a directory (read recursively) or - for standard input; repeatable",
  ).argParser(collect);
  if (required) option.makeOptionMandatory();
  return cmd.addOption(option);
}

export function addOutputOption(cmd: Command): Command {
  return cmd.addOption(
    new Option("-o, --output <format>", "output format").choices(["table", "json", "yaml"]).default("table"),
  );
}

export function addNamespaceOption(cmd: Command): Command {
  return cmd.option("-n, --namespace <namespace>", "only objects in this namespace");
}

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0)
    throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return n;
}

/** Loads manifests from -f arguments (files, directories, `-` for standard input), all together so that
 * checks across objects see every object. */
export function loadFromArgs(files: string[], verbose: boolean): LoadResult {
  return loadManifestFiles(files, { verbose });
}

/** Prints diagnostics to stderr; returns true when any is an error. */
export function reportDiagnostics(diagnostics: readonly Diagnostic[], verbose: boolean): boolean {
  for (const d of diagnostics) {
    if (d.severity === "info" && !verbose) continue;
    process.stderr.write(`${formatDiagnostic(d)}\n`);
  }
  return hasErrors(diagnostics);
}

export function printData(data: unknown, format: OutputFormat, table: () => string): void {
  if (format === "json") process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
  else if (format === "yaml") process.stdout.write(stringify(data));
  else process.stdout.write(`${table()}\n`);
}
