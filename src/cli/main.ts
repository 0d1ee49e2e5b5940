#!/usr/bin/env node
/** The podnet command line. Each command lives in commands/ and registers itself here. */
import { Command, CommanderError } from "commander";
import { formatDiagnostic, InvalidInputError } from "../api/diagnostics.js";
import { registerCniCommand } from "./commands/cni.js";
import { registerDnsCommand } from "./commands/dns.js";
import { registerLabCommand } from "./commands/lab.js";
import { registerPlanCommand } from "./commands/plan.js";
import { registerPolicyCommand } from "./commands/policy.js";
import { UserError } from "./options.js";

export function buildProgram(): Command {
  const program = new Command("podnet")
    .description("The Kubernetes network model on the real Linux dataplane")
    .version("0.1.0")
    .showHelpAfterError("(run with --help for usage)")
    .configureHelp({ sortSubcommands: true });
  registerPlanCommand(program);
  registerCniCommand(program);
  registerLabCommand(program);
  registerDnsCommand(program);
  registerPolicyCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  for (const cmd of program.commands) cmd.exitOverride();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (error instanceof UserError) {
      process.stderr.write(`podnet: ${error.message}\n`);
      return error.exitCode;
    }
    if (error instanceof InvalidInputError) {
      for (const d of error.diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
      return 1;
    }
    throw error;
  }
}

// Output piped into `head` and the like: a closed pipe ends the output, not the command with a stack trace.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw e;
});

main(process.argv).then((code) => {
  // A command may set its own exit code (probe: 2 when blocked); errors override it.
  if (code !== 0 || process.exitCode === undefined) process.exitCode = code;
});
