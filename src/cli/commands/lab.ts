/**
 * `podnet lab …`: whole clusters on this machine from ordinary manifests (see src/lab/README.md).
 *   up, apply, delete, label, status, down, probe, matrix, exec — every one takes --name LAB.
 */
import { spawnSync } from "node:child_process";
import { type Command, Option } from "commander";
import type { Diagnostic } from "../../api/diagnostics.js";
import { loadManifestSources } from "../../api/loader.js";
import { readSources, type Source } from "../../api/source.js";
import { type AgentRole, runAgent } from "../../lab/agent.js";
import { isClusterDnsPod } from "../../lab/cluster-dns.js";
import type { Progress } from "../../lab/converge.js";
import { labDnsCertificates } from "../../lab/dns-certs.js";
import {
  type ChangeResult,
  LabError,
  labApply,
  labDelete,
  labDown,
  labLabel,
  labServices,
  labStatus,
  labUp,
} from "../../lab/lab.js";
import { formatMatrix } from "../../lab/matrix.js";
import { DEFAULT_LAB } from "../../lab/names.js";
import { explainBlocked, type ProbeResult, probe, probeMany } from "../../lab/probe.js";
import { ResolveError, resolveInPod } from "../../lab/resolve.js";
import { readLabState } from "../../lab/store.js";
import { type Endpoint, resolveEndpoint, TargetError } from "../../lab/targets.js";
import { runTour } from "../../lab/tour.js";
import { isClustersTour, runClustersTour } from "../../lab/tour-clusters.js";
import {
  addFileOption,
  addOutputOption,
  type OutputFormat,
  printData,
  reportDiagnostics,
  UserError,
} from "../options.js";
import { formatTable } from "../table.js";

function addNameOption(cmd: Command): Command {
  return cmd.option("--name <lab>", "which lab (several can run side by side)", DEFAULT_LAB);
}

function readFiles(files: string[]): Source[] {
  const diags: Diagnostic[] = [];
  const sources = readSources(files, diags);
  if (reportDiagnostics(diags, false)) throw new UserError("cannot read the manifests (above)");
  return sources;
}

const progressLine: Progress = (phase, detail, ms) => {
  process.stderr.write(
    `  ✓ ${phase.padEnd(11)} ${detail} (${ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(2)} s`})\n`,
  );
};

function printChange(verb: string, lab: string, r: ChangeResult, started: number): void {
  reportDiagnostics(
    r.diagnostics.filter((d) => d.severity !== "error"),
    false,
  );
  const { report } = r;
  for (const f of report.failures) process.stderr.write(`  ✗ ${f.pod}: ${f.error}\n`);
  const total = ((performance.now() - started) / 1000).toFixed(2);
  process.stdout.write(
    `lab ${lab} ${verb}: ${r.state.pods.length} pods (${report.podsAdded} added, ${report.podsRemoved} removed, ${report.podsKept} kept) in ${total} s\n`,
  );
  if (report.failures.length)
    throw new UserError(`${report.failures.length} pods could not be attached (above)`);
}

function wrapLabErrors<T>(fn: () => Promise<T>): Promise<T> {
  return fn().catch((e: unknown) => {
    if (e instanceof LabError || e instanceof TargetError) throw new UserError(e.message);
    throw e;
  });
}

interface ChangeFlags {
  allow?: string[];
  cniExec?: boolean;
  filename: string[];
  name: string;
  verbose?: boolean;
  quiet?: boolean;
}

function registerChange(
  lab: Command,
  name: "up" | "apply" | "delete",
  description: string,
  run: typeof labUp,
  fileRequired: boolean,
): void {
  const cmd = lab
    .command(name)
    .description(description)
    .option("-q, --quiet", "no progress lines")
    .option("--cni-exec", "run pods' CNI calls by executing the installed plugins in the node (slower)")
    .option(
      "--allow <code>",
      "build despite this plan error, reported as a warning (service-range-alias: to observe the black hole); repeatable",
      (value: string, previous: string[] = []) => [...previous, value],
    );
  addFileOption(cmd, fileRequired);
  addNameOption(cmd);
  cmd.action((flags: ChangeFlags) =>
    wrapLabErrors(async () => {
      const started = performance.now();
      const sources = flags.filename ? readFiles(flags.filename) : [];
      const r = await run(
        {
          lab: flags.name,
          progress: flags.quiet ? undefined : progressLine,
          cni: flags.cniExec ? "exec" : "agent",
          allow: flags.allow,
        },
        sources,
      );
      printChange(name === "up" ? "is up" : name === "apply" ? "applied" : "deleted", flags.name, r, started);
    }),
  );
}

/**
 * The probe's target. A name that is not a pod, a node or an external host is resolved the way the
 * source pod resolves it: through the cluster DNS with its search path (from a node or an external
 * host, from the store's Services).
 */
async function probeTarget(lab: string, src: Endpoint, target: string, namespace: string): Promise<Endpoint> {
  let found: Endpoint | undefined;
  let notFound: unknown;
  try {
    found = endpointIn(lab, target, namespace, true);
  } catch (e) {
    notFound = e;
  }
  const isName = !found || found.kind === "service";
  if (src.kind === "pod" && src.netns && isName) {
    try {
      const r = await resolveInPod(src.netns.slice("/run/netns/".length), target);
      return {
        label: r.name === target ? `${target} (DNS)` : `${target} (DNS: ${r.name})`,
        kind: "service",
        ips: r.addresses,
      };
    } catch (e) {
      if (!(e instanceof ResolveError)) throw e;
      // Not a pod either: say both, the pods to choose from first.
      throw new UserError(notFound ? `${(notFound as Error).message}; ${e.message}` : e.message);
    }
  }
  if (found) return found;
  throw notFound;
}

function endpointIn(lab: string, text: string, namespace: string | undefined, allowIp: boolean): Endpoint {
  const state = readLabState(lab);
  if (!state)
    throw new UserError(`lab "${lab}" does not exist; start it with: podnet lab up --name ${lab} -f FILE`);
  return resolveEndpoint(state, lab, text, namespace, { allowIp });
}

function formatProbe(
  from: Endpoint,
  to: Endpoint,
  port: number,
  protocol: string,
  r: ProbeResult & { why?: string },
): string {
  const dst = `${to.label}${to.kind === "ip" ? "" : ` (${to.ips[0]})`}:${port}/${protocol}`;
  const head = `${r.outcome.padEnd(9)} ${from.label} → ${dst}  ${r.latencyMs.toFixed(2)} ms`;
  if (r.outcome === "connected") return `${head}${r.answer ? `\n  answer: ${r.answer}` : ""}`;
  return `${head}${r.reason ? `  (${r.reason})` : ""}${r.why ? `\n  why: ${r.why}` : ""}`;
}

export function registerLabCommand(program: Command): void {
  const lab = program
    .command("lab")
    .description("Run whole clusters on this machine from manifests: real namespaces, real packets")
    .addHelpText(
      "after",
      "\nExamples:\n  podnet lab up -f examples/quickstart.yaml\n  podnet lab status\n  podnet lab probe -n shop client web-7d4b9c-x2x9q 8080\n  podnet lab matrix --namespaces shop\n  podnet lab exec -n shop client -- ip addr\n  podnet lab down",
    );

  registerChange(
    lab,
    "up",
    "Build the lab from manifests (or, without -f, adopt and converge what the lab stores)",
    labUp,
    false,
  );
  registerChange(
    lab,
    "apply",
    "Add or change objects in a running lab (pods, labels, services, policies)",
    labApply,
    true,
  );
  registerChange(lab, "delete", "Remove the objects named in the files from a running lab", labDelete, true);

  const label = lab
    .command("label <kind> <name> <labels...>")
    .description("Change labels like kubectl label: key=value sets, key- removes")
    .option("-n, --namespace <namespace>", "namespace of the object", "default")
    .option("--overwrite", "allow changing an existing label's value");
  addNameOption(label);
  label.action(
    (
      kind: string,
      name: string,
      labels: string[],
      flags: { namespace: string; overwrite?: boolean; name: string },
    ) =>
      wrapLabErrors(async () => {
        const started = performance.now();
        const r = await labLabel(
          { lab: flags.name },
          { kind, name, namespace: flags.namespace, changes: labels, overwrite: flags.overwrite ?? false },
        );
        printChange("labelled", flags.name, r, started);
      }),
  );

  const status = lab.command("status").description("Nodes, pods, IPs and health of a lab");
  addNameOption(status);
  addOutputOption(status);
  status.action((flags: { name: string; output: OutputFormat }) =>
    wrapLabErrors(async () => {
      const s = await labStatus({ lab: flags.name });
      if (!s.exists) throw new UserError(`lab "${flags.name}" does not exist`);
      const state = s.state;
      const data = {
        lab: s.lab,
        agents: s.agents,
        clusters: (state?.plan?.clusters ?? []).map((c) => ({
          name: c.name,
          fabric: c.fabric.mode,
          podMTU: c.fabric.podMTU,
          nodes: c.nodes.map((n) => ({ name: n.name, address: n.address, podCIDRs: n.podCIDRs })),
          externalHosts: c.externalHosts,
        })),
        peerings: (state?.plan?.peerings ?? []).map((p) => ({
          name: p.name,
          transitCIDR: p.transitCIDR,
          sides: p.sides.map((x) => ({
            cluster: x.cluster,
            address: x.address,
            routes: x.routes.map((r) => r.dst),
          })),
        })),
        pods: (state?.pods ?? []).map((p) => ({
          cluster: p.cluster,
          namespace: p.namespace,
          name: p.name,
          node: p.node,
          ips: p.ips,
          ports: p.ports.map((x) => `${x.port}/${x.protocol}`),
          healthy: !s.missing.includes(`${p.namespace}/${p.name}`),
        })),
      };
      printData(data, flags.output, () => {
        const agent = s.agents
          .map((a) =>
            a.problem
              ? `${a.role} agent: ${a.problem}`
              : `${a.role} agent: pid ${a.pid}, ${a.role === "node" ? `${a.nodes?.length ?? 0} nodes` : `${a.sockets} sockets in ${a.pods} namespaces, cluster DNS ${a.dns?.length ? `serving ${a.dns.join(", ")}` : "not running"}`}, ${((a.rssBytes ?? 0) / 2 ** 20).toFixed(0)} MiB`,
          )
          .join("\n");
        const nodes = formatTable(
          ["CLUSTER", "NODE", "ADDRESS", "POD CIDR", "FABRIC", "POD MTU"],
          data.clusters.flatMap((c) =>
            c.nodes.map((n) => [c.name, n.name, n.address, n.podCIDRs.join(","), c.fabric, c.podMTU]),
          ),
        );
        // With several clusters the same namespace/name can exist in each: the cluster leads.
        const several = data.clusters.length > 1;
        const pods = formatTable(
          [...(several ? ["CLUSTER"] : []), "NAMESPACE", "NAME", "NODE", "IP", "PORTS", "STATUS"],
          data.pods.map((p) => [
            ...(several ? [p.cluster] : []),
            p.namespace,
            p.name,
            p.node,
            p.ips.join(","),
            p.ports.join(",") || "-",
            p.healthy ? "Running" : "Missing",
          ]),
        );
        const ext = data.clusters.flatMap((c) =>
          c.externalHosts.map((h) => `external/${h.name} ${h.address}`),
        );
        const peerings = data.peerings.length
          ? [
              "",
              formatTable(
                ["PEERING", "TRANSIT", "ROUTERS", "ROUTES OVER IT"],
                data.peerings.map((p) => [
                  p.name,
                  p.transitCIDR,
                  p.sides.map((x) => `${x.cluster} ${x.address}`).join(" <-> "),
                  p.sides.map((x) => `${x.cluster}: ${x.routes.join(",")}`).join("; "),
                ]),
              ),
            ]
          : [];
        return [
          `lab ${s.lab}`,
          agent,
          "",
          nodes,
          "",
          pods,
          ...(ext.length ? ["", ...ext] : []),
          ...peerings,
        ].join("\n");
      });
    }),
  );

  const services = lab
    .command("services")
    .description(
      "Services of a lab: VIPs, ports, endpoints, and the nodes whose service proxy is programmed",
    );
  addNameOption(services);
  addOutputOption(services);
  services.action((flags: { name: string; output: OutputFormat }) =>
    wrapLabErrors(async () => {
      const views = await labServices({ lab: flags.name });
      const several = new Set(views.map((v) => v.cluster)).size > 1;
      printData(views, flags.output, () =>
        formatTable(
          [
            ...(several ? ["CLUSTER"] : []),
            "NAMESPACE",
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "PORTS",
            "ENDPOINTS",
            "PROGRAMMED NODES",
          ],
          views.map((v) => [
            ...(several ? [v.cluster] : []),
            v.namespace,
            v.name,
            v.type,
            v.clusterIPs.join(",") || "None",
            v.ports.join(",") || "-",
            v.endpoints
              .filter((e) => e.ready)
              .map((e) => `${e.ip}:${Object.values(e.ports).join("/") || "-"}`)
              .join(",") || "<none>",
            !v.proxied ? "not proxied" : v.programmedNodes.join(",") || "none (agent not running?)",
          ]),
        ),
      );
    }),
  );

  const certs = lab
    .command("certs")
    .description(
      "The lab's DNS-over-TLS files: the lab CA and each cluster DNS's certificate (dns.CLUSTER.LAB) and key",
    );
  addNameOption(certs);
  addOutputOption(certs);
  certs.action((flags: { name: string; output: OutputFormat }) =>
    wrapLabErrors(async () => {
      const state = readLabState(flags.name);
      if (!state) throw new LabError(`lab "${flags.name}" does not exist`);
      const found = labDnsCertificates(flags.name, state.plan?.clusters.map((c) => c.name) ?? []);
      if (!found)
        throw new LabError(
          `lab "${flags.name}" has no DNS certificates: no cluster uses DNS over TLS (spec.dns.tls, or tls in spec.dns.forward[])`,
        );
      printData(found, flags.output, () =>
        [
          `CA: ${found.ca}`,
          formatTable(
            ["CLUSTER", "SERVER NAME", "CERTIFICATE", "KEY"],
            found.clusters.map((c) => [c.cluster, c.serverName, c.cert, c.key]),
          ),
        ].join("\n"),
      );
    }),
  );

  const down = lab
    .command("down")
    .description("Remove everything the lab made: namespaces, links, rules, files, its agent");
  addNameOption(down);
  down.action((flags: { name: string }) =>
    wrapLabErrors(async () => {
      const started = performance.now();
      const r = await labDown({ lab: flags.name });
      process.stdout.write(
        `lab ${flags.name} is down: ${r.namespaces} namespaces deleted${r.agentStopped ? ", agent stopped" : ""} in ${((performance.now() - started) / 1000).toFixed(2)} s\n`,
      );
    }),
  );

  const probeCmd = lab
    .command("probe <from> <target> <port>")
    .description(
      "Connect from a pod (or node/NAME, external/NAME) to a pod, IP or service: connected or blocked",
    )
    .option("-n, --namespace <namespace>", "namespace of FROM and TARGET pods", "default")
    .addOption(new Option("--protocol <protocol>", "tcp or udp").choices(["tcp", "udp"]).default("tcp"))
    .option("--timeout <ms>", "give up after this many milliseconds", "1000");
  addNameOption(probeCmd);
  addOutputOption(probeCmd);
  probeCmd.action(
    (
      from: string,
      target: string,
      port: string,
      flags: { namespace: string; protocol: string; timeout: string; name: string; output: OutputFormat },
    ) =>
      wrapLabErrors(async () => {
        const src = endpointIn(flags.name, from, flags.namespace, false);
        const dst = await probeTarget(flags.name, src, target, flags.namespace);
        const portNumber = Number(port);
        if (!Number.isInteger(portNumber) || portNumber < 1 || portNumber > 65535)
          throw new UserError(`port "${port}" is not a port number (1-65535)`);
        if (!src.netns) throw new UserError(`${src.label} has no namespace to probe from`);
        const protocol = flags.protocol.toUpperCase() as "TCP" | "UDP";
        const host = dst.ips[0] as string;
        const r = await probe({
          fromNetns: src.netns,
          host,
          port: portNumber,
          protocol,
          timeoutMs: Number(flags.timeout),
        });
        // The address plan's explanation of a blocked probe (across clusters, aliased service ranges).
        const plan = readLabState(flags.name)?.plan;
        const why = r.outcome === "blocked" && plan ? explainBlocked(plan, src, host) : undefined;
        const result = why ? { ...r, why } : r;
        printData(
          { from: src.label, to: dst.label, ip: host, port: portNumber, protocol, ...result },
          flags.output,
          () => formatProbe(src, dst, portNumber, protocol, result),
        );
        if (r.outcome !== "connected") process.exitCode = 2;
      }),
  );

  const matrix = lab
    .command("matrix")
    .description("Probe every pair of pods in parallel and print a truth table (. connected, X blocked)")
    .option("--namespaces <list>", "only pods in these namespaces (comma-separated)")
    .option("--ports <list>", "ports to probe (default: the ports the pods declare)")
    .option("--protocols <list>", "tcp,udp (default tcp)", "tcp")
    .option("--timeout <ms>", "per probe", "1000");
  addNameOption(matrix);
  addOutputOption(matrix);
  matrix.action(
    (flags: {
      namespaces?: string;
      ports?: string;
      protocols: string;
      timeout: string;
      name: string;
      output: OutputFormat;
    }) =>
      wrapLabErrors(async () => {
        const state = readLabState(flags.name);
        if (!state) throw new UserError(`lab "${flags.name}" does not exist`);
        const namespaces = flags.namespaces?.split(",").filter(Boolean);
        // The lab's own DNS pods only when asked for (--namespaces kube-system), as kubectl hides system pods.
        const pods = state.pods.filter((p) =>
          namespaces ? namespaces.includes(p.namespace) : !isClusterDnsPod(p),
        );
        if (pods.length === 0) throw new UserError("no pods selected");
        const ports = flags.ports
          ? flags.ports.split(",").map(Number)
          : [...new Set(pods.flatMap((p) => p.ports.map((x) => x.port)))].sort((a, b) => a - b);
        if (ports.length === 0) throw new UserError("the selected pods declare no ports: pass --ports");
        const protocols = flags.protocols.split(",").map((p) => p.toUpperCase() as "TCP" | "UDP");
        const names = pods.map((p) => `${p.namespace}/${p.name}`);
        const jobs = pods.flatMap((from) =>
          pods.flatMap((to) =>
            ports.flatMap((port) =>
              protocols.map((protocol) => ({
                from: `${from.namespace}/${from.name}`,
                to: `${to.namespace}/${to.name}`,
                port,
                protocol,
                spec: {
                  fromNetns: from.netns,
                  host: to.ips[0] as string,
                  port,
                  protocol,
                  timeoutMs: Number(flags.timeout),
                },
              })),
            ),
          ),
        );
        const started = performance.now();
        const results = await probeMany(
          jobs.map((j) => j.spec),
          { concurrency: 256 },
        );
        const why = (from: string, ip: string) => {
          const pod = pods.find((p) => `${p.namespace}/${p.name}` === from);
          return pod && state.plan
            ? explainBlocked(state.plan, { label: from, kind: "pod", cluster: pod.cluster, ips: pod.ips }, ip)
            : undefined;
        };
        const cells = jobs.map((j, i) => {
          const r = results[i] as ProbeResult;
          const because = r.outcome === "blocked" ? why(j.from, j.spec.host) : undefined;
          return {
            from: j.from,
            to: j.to,
            port: j.port,
            protocol: j.protocol,
            ...r,
            ...(because ? { why: because } : {}),
          };
        });
        const seconds = ((performance.now() - started) / 1000).toFixed(2);
        printData({ pods: names, ports, protocols, results: cells }, flags.output, () =>
          ports
            .flatMap((port) =>
              protocols.map((protocol) => {
                const at = new Map(
                  cells
                    .filter((c) => c.port === port && c.protocol === protocol)
                    .map((c) => [`${c.from}|${c.to}`, c]),
                );
                return `${port}/${protocol}:\n${formatMatrix(names, names, (r, c) => (at.get(`${r}|${c}`)?.outcome === "connected" ? "." : "X"))}`;
              }),
            )
            .concat(
              // Each reason once, with one of the pairs it explains.
              [...new Map(cells.flatMap((c) => (c.why ? [[c.why, `${c.from} → ${c.to}`] as const] : [])))]
                .map(([reason, pair]) => `why ${pair} (and alike): ${reason}`)
                .join("\n") || [],
            )
            .concat(`${jobs.length} probes in ${seconds} s`)
            .join("\n\n"),
        );
      }),
  );

  const exec = lab
    .command("exec <target> <command...>")
    .description(
      "Run a command in a pod's network namespace (or node/NAME, external/NAME): podnet lab exec POD -- CMD",
    )
    .option("-n, --namespace <namespace>", "namespace of the pod", "default");
  addNameOption(exec);
  exec.action((target: string, command: string[], flags: { namespace: string; name: string }) =>
    wrapLabErrors(async () => {
      const ep = endpointIn(flags.name, target, flags.namespace, false);
      if (!ep.netns) throw new UserError(`${ep.label} has no namespace`);
      const ns = ep.netns.slice("/run/netns/".length);
      const [cmd, ...args] = command;
      if (!cmd) throw new UserError("no command: podnet lab exec POD -- CMD [ARGS...]");
      const r = spawnSync("ip", ["netns", "exec", ns, cmd, ...args], { stdio: "inherit" });
      if (r.error) throw new UserError(`cannot run ${cmd}: ${r.error.message}`);
      process.exitCode = r.status ?? 1;
    }),
  );

  const tour = lab
    .command("tour")
    .description(
      "A narrated tour with real packets: the quick-start (pods, fabrics, masquerade, external reachability, DNS, policy), or two peered clusters with forwarded DNS when the manifests have them",
    )
    .argument("[file]", "manifests of the tour (same as -f)")
    .option("-f, --filename <file>", "manifests of the tour's cluster(s)", "examples/quickstart.yaml")
    .addHelpText(
      "after",
      "\nExamples:\n  podnet lab tour                                # examples/quickstart.yaml\n  podnet lab tour examples/two-clusters.yaml     # peered clusters, forwarded DNS, routed vs overlay",
    );
  tour.option("--name <lab>", "the lab the tour builds (and removes)", "tour");
  tour.action((file: string | undefined, flags: { filename: string; name: string }) =>
    wrapLabErrors(async () => {
      const sources = readFiles([file ?? flags.filename]);
      const options = { lab: flags.name, sources, write: (t: string) => process.stdout.write(t) };
      const r = isClustersTour(loadManifestSources(sources).state)
        ? await runClustersTour(options)
        : await runTour(options);
      if (r.failed.length) process.exitCode = 1;
    }),
  );

  // The lab's long-running process, started by `up`; not for people.
  const agent = lab
    .command("agent", { hidden: true })
    .description("run one of a lab's agents (started by lab up)")
    .addOption(
      new Option("--role <role>", "node or workloads").choices(["node", "workloads"]).makeOptionMandatory(),
    );
  addNameOption(agent);
  agent.action((flags: { name: string; role: AgentRole }) =>
    runAgent(flags.name, flags.role, (line) =>
      process.stdout.write(`${new Date().toISOString()} ${line}\n`),
    ).then(() => new Promise<void>(() => {})),
  );
}
