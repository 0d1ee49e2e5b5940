/**
 * `podnet policy matrix` and `podnet policy explain`: NetworkPolicy verdicts from manifests alone (no
 * kernel), or from a running lab's store (`--lab NAME`, the live pod IPs).
 */
import { type Command, Option } from "commander";
import type { Protocol } from "../../api/types.js";
import { evaluateConnection, formatVerdict, resolveEnd } from "../../policy/evaluate.js";
import { computeReachability, formatReachability, reaches } from "../../policy/matrix.js";
import type { PolicyIndex } from "../../policy/model.js";
import { indexFor, inputsFromFiles, inputsFromLab } from "../../policy/sources.js";
import { addOutputOption, type OutputFormat, printData, reportDiagnostics, UserError } from "../options.js";

interface SourceFlags {
  filename?: string[];
  lab?: string;
  cluster?: string;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function addSourceOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        "-f, --filename <file|dir>",
        "manifests: a file, a directory or - for standard input; repeatable",
      ).argParser(collect),
    )
    .option("--lab <name>", "read a running lab's objects and pod IPs instead of files")
    .option("--cluster <name>", "which cluster (default: the first)");
}

function loadIndex(flags: SourceFlags): PolicyIndex {
  if (flags.filename && flags.lab) throw new UserError("give either -f FILES or --lab NAME, not both");
  let inputs: ReturnType<typeof inputsFromFiles> | undefined;
  if (flags.lab) {
    inputs = inputsFromLab(flags.lab);
    if (!inputs)
      throw new UserError(
        `lab "${flags.lab}" does not exist; start it with: podnet lab up --name ${flags.lab} -f FILE`,
      );
  } else if (flags.filename?.length) inputs = inputsFromFiles(flags.filename);
  else throw new UserError("no manifests: pass -f FILE (or --lab NAME for a running lab)");
  if (reportDiagnostics(inputs.diagnostics, false)) throw new UserError("the manifests have errors (above)");
  const index = indexFor(inputs, flags.cluster);
  if (!index)
    throw new UserError(
      flags.cluster
        ? `no cluster named "${flags.cluster}" in the manifests`
        : "the manifests plan no cluster",
    );
  return index;
}

function parseProtocols(text: string): Protocol[] {
  return text.split(",").map((p) => {
    const up = p.trim().toUpperCase();
    if (up !== "TCP" && up !== "UDP" && up !== "SCTP")
      throw new UserError(`protocol "${p}": expected tcp, udp or sctp`);
    return up as Protocol;
  });
}

function parsePort(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new UserError(`port "${text}" is not a port number (1-65535)`);
  return n;
}

export function registerPolicyCommand(program: Command): void {
  const policy = program
    .command("policy")
    .description(
      "NetworkPolicy without a kernel: the reachability matrix, and why a connection is allowed or denied",
    )
    .addHelpText(
      "after",
      "\nExamples:\n  podnet policy matrix -f manifests/ --ports 80,81 --protocols tcp,udp\n  podnet policy explain -f manifests/ x/b x/a 80\n  podnet policy explain --lab podnet -n shop client web-0 8080 --protocol udp",
    );

  const matrix = policy
    .command("matrix")
    .description(
      "Every pod to every pod per port and protocol (. allowed, X denied), in the format of `podnet lab matrix`",
    )
    .option("--namespaces <list>", "only pods in these namespaces (comma-separated)")
    .option("--ports <list>", "ports (default: the ports the pods declare)")
    .option("--protocols <list>", "tcp,udp,sctp (default tcp)", "tcp");
  addSourceOptions(matrix);
  addOutputOption(matrix);
  matrix.action(
    (
      flags: SourceFlags & { namespaces?: string; ports?: string; protocols: string; output: OutputFormat },
    ) => {
      const started = performance.now();
      const index = loadIndex(flags);
      const namespaces = flags.namespaces?.split(",").filter(Boolean);
      const pods = index.world.pods.filter((p) => !namespaces || namespaces.includes(p.namespace));
      if (pods.length === 0) throw new UserError("no pods selected");
      const ports = flags.ports
        ? flags.ports.split(",").map(parsePort)
        : [...new Set(pods.flatMap((p) => p.ports.map((x) => x.port)))].sort((a, b) => a - b);
      if (ports.length === 0) throw new UserError("the selected pods declare no ports: pass --ports");
      const protocols = parseProtocols(flags.protocols);
      const m = computeReachability(index, ports, protocols);
      const names = pods.map((p) => p.key);
      const seconds = ((performance.now() - started) / 1000).toFixed(2);
      const count = names.length * names.length * ports.length * protocols.length;
      printData(
        {
          pods: names,
          ports,
          protocols,
          results: names.flatMap((from) =>
            names.flatMap((to) =>
              ports.flatMap((port) =>
                protocols.map((protocol) => ({
                  from,
                  to,
                  port,
                  protocol,
                  outcome: reaches(
                    m,
                    index.podIndex.get(from) as number,
                    index.podIndex.get(to) as number,
                    port,
                    protocol,
                  )
                    ? "connected"
                    : "blocked",
                })),
              ),
            ),
          ),
        },
        flags.output,
        () =>
          formatReachability(
            m,
            names,
            `${count} verdicts computed in ${seconds} s (static: from the manifests, no packets)`,
          ),
      );
    },
  );

  const explain = policy
    .command("explain <from> <to> <port>")
    .description(
      "Which policies select the source and the destination, and which rule allows the connection or why it is denied",
    )
    .option("-n, --namespace <namespace>", "namespace of FROM and TO pods given without one", "default")
    .addOption(new Option("--protocol <protocol>", "tcp, udp or sctp").default("tcp"));
  addSourceOptions(explain);
  addOutputOption(explain);
  explain.action(
    (
      from: string,
      to: string,
      port: string,
      flags: SourceFlags & { namespace: string; protocol: string; output: OutputFormat },
    ) => {
      const index = loadIndex(flags);
      const portNumber = parsePort(port);
      const [protocol] = parseProtocols(flags.protocol) as [Protocol];
      const src = resolveEnd(index, from, flags.namespace);
      const dst = resolveEnd(index, to, flags.namespace);
      const hint = "name a pod as NAMESPACE/NAME (or NAME with -n), or give an IP address";
      if (!src) throw new UserError(`no pod "${from}" in the manifests; ${hint}`);
      if (!dst) throw new UserError(`no pod "${to}" in the manifests; ${hint}`);
      const label = (e: typeof src, text: string) =>
        (e.pod === undefined ? e.ip : `${index.world.pods[e.pod]?.key} (${e.ip})`) || text;
      const verdict = evaluateConnection(index, src, dst, portNumber, protocol);
      printData(
        { from: label(src, from), to: label(dst, to), port: portNumber, protocol, ...verdict },
        flags.output,
        () => formatVerdict(verdict, label(src, from), label(dst, to), portNumber, protocol, index),
      );
      if (!verdict.allowed) process.exitCode = 2;
    },
  );
}
