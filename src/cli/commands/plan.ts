/** `podnet plan -f FILE...`: the address plan of every cluster in the manifests, with all checks. */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { formatPlan, planAddresses } from "../../plan/index.js";
import type { AddressPlan } from "../../plan/types.js";
import {
  addFileOption,
  addNamespaceOption,
  addOutputOption,
  loadFromArgs,
  type OutputFormat,
  printData,
  reportDiagnostics,
  UserError,
} from "../options.js";

interface PlanFlags {
  filename: string[];
  output: OutputFormat;
  namespace?: string;
  previous?: string;
  verbose?: boolean;
}

function readPreviousPlan(path: string): AddressPlan {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new UserError(
      `--previous ${path}: cannot read a plan: ${(error as Error).message}\n    fix: pass the output of an earlier 'podnet plan -o json'`,
    );
  }
  if (!data || typeof data !== "object" || !Array.isArray((data as AddressPlan).clusters))
    throw new UserError(
      `--previous ${path}: not a plan (no "clusters" list)\n    fix: pass the output of 'podnet plan -o json'`,
    );
  return data as AddressPlan;
}

export function registerPlanCommand(program: Command): void {
  const cmd = program
    .command("plan")
    .description(
      "Show the address plan: clusters, ranges, nodes with pod blocks, pods with IPs, services with ClusterIPs and ports, and every check of the ranges",
    )
    .option("--previous <plan.json>", "keep the addresses of an earlier `plan -o json` (stable re-planning)")
    .option("--verbose", "also list fields podnet ignores and other notes")
    .addHelpText(
      "after",
      "\nExamples:\n  podnet plan -f examples/quickstart.yaml\n  podnet plan -f manifests/ -o json > plan.json\n  podnet plan -f manifests/ --previous plan.json\n\nExit code 1 when the manifests or the plan have errors; all of them are listed.",
    );
  addFileOption(cmd);
  addNamespaceOption(cmd);
  addOutputOption(cmd);
  cmd.action((flags: PlanFlags) => {
    const verbose = flags.verbose ?? false;
    const loaded = loadFromArgs(flags.filename, verbose);
    if (reportDiagnostics(loaded.diagnostics, verbose))
      throw new UserError("the manifests have errors (above)");
    const previous = flags.previous ? readPreviousPlan(flags.previous) : undefined;
    const plan = planAddresses(loaded.state, { previous });
    const failed = reportDiagnostics(plan.diagnostics, verbose);
    printData(plan, flags.output, () => formatPlan(plan, { namespace: flags.namespace }));
    if (failed) throw new UserError("the address plan has errors (above)");
  });
}
