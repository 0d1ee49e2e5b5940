/**
 * `podnet cni add|del|check|status|gc|install`: the CNI runtime client from the command line, as a
 * container runtime would call a network's plugin chain (cnitool's job, with kubectl's habits).
 */
import { type Command, CommanderError, Option } from "commander";
import { installPlugins } from "../../cni/install.js";
import {
  type Attachment,
  CniRuntime,
  loadConfList,
  PluginError,
  type ValidAttachment,
} from "../../cni/runtime/index.js";
import { CNI_SERVER_SOCKET, CniError, type NetworkConfigList, type Result } from "../../cni/spec.js";
import { type OutputFormat, printData, UserError } from "../options.js";
import { formatTable } from "../table.js";

interface CommonFlags {
  binDir?: string[];
  cacheDir?: string;
  pluginNetns?: string;
  verbose?: boolean;
  output: OutputFormat;
}

interface AttachmentFlags extends CommonFlags {
  netns?: string;
  containerId: string;
  ifname: string;
  args?: string;
  capArgs?: string;
}

/** Where plugins are looked for when no --bin-dir is given: $CNI_PATH, else the usual directories. */
export function defaultBinDirs(): string[] {
  const fromEnv = process.env.CNI_PATH?.split(":").filter(Boolean);
  return fromEnv?.length ? fromEnv : ["/opt/cni/bin", "/usr/lib/cni"];
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** "K=V;K2=V2" → {K: "V", K2: "V2"}. */
export function parseCniArgs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of text.split(";")) {
    if (pair.trim() === "") continue;
    const eq = pair.indexOf("=");
    if (eq <= 0)
      throw new UserError(
        `--args: "${pair}" is not KEY=VALUE\n    fix: write --args 'K8S_POD_NAME=web;K8S_POD_NAMESPACE=shop'`,
      );
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

function parseCapArgs(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UserError(
      `--cap-args: not valid JSON: ${(error as Error).message}\n    fix: write --cap-args '{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}'`,
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new UserError(
      `--cap-args: must be a JSON object of capability arguments\n    fix: write --cap-args '{"portMappings":[...]}'`,
    );
  return value as Record<string, unknown>;
}

function runtimeFrom(flags: CommonFlags): CniRuntime {
  return new CniRuntime({
    binDirs: flags.binDir?.length ? flags.binDir : defaultBinDirs(),
    ...(flags.cacheDir ? { cacheDir: flags.cacheDir } : {}),
    ...(flags.pluginNetns ? { pluginNetns: flags.pluginNetns } : {}),
    ...(flags.verbose
      ? {
          onInvoke: (e) =>
            process.stderr.write(
              `${e.command} ${e.plugin} (${e.path ?? "not found"}): ${e.error ? "failed" : "ok"} in ${Math.round(e.durationMs)} ms\n`,
            ),
        }
      : {}),
  });
}

function attachmentFrom(flags: AttachmentFlags): Attachment {
  return {
    containerID: flags.containerId,
    ifname: flags.ifname,
    ...(flags.netns ? { netns: flags.netns } : {}),
    ...(flags.args !== undefined ? { args: parseCniArgs(flags.args) } : {}),
    ...(flags.capArgs !== undefined ? { capabilityArgs: parseCapArgs(flags.capArgs) } : {}),
  };
}

function addCommonOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        "--bin-dir <dir>",
        "directory of plugin executables, searched in order; repeatable (default: $CNI_PATH, else /opt/cni/bin and /usr/lib/cni)",
      ).argParser(collect),
    )
    .option("--cache-dir <dir>", "where results are cached, as libcni (default /var/lib/cni)")
    .option(
      "--plugin-netns <path>",
      "run the plugins inside this network namespace (e.g. a node's, /run/netns/node-1)",
    )
    .option("-v, --verbose", "print every plugin invocation and its duration on stderr")
    .addOption(
      new Option("-o, --output <format>", "output format")
        .choices(["table", "json", "yaml"])
        .default("table"),
    );
}

function addAttachmentOptions(cmd: Command, netnsRequired: boolean): Command {
  const netns = new Option("--netns <path>", "the container's network namespace (CNI_NETNS)");
  if (netnsRequired) netns.makeOptionMandatory();
  return cmd
    .addOption(netns)
    .requiredOption("--container-id <id>", "the container ID (CNI_CONTAINERID)")
    .option("--ifname <name>", "interface name inside the container (CNI_IFNAME)", "eth0")
    .option("--args <K=V;...>", "extra arguments (CNI_ARGS)")
    .option("--cap-args <json>", 'capability arguments, e.g. \'{"portMappings":[...],"bandwidth":{...}}\'');
}

/** Runs an action; CNI and user errors print as `podnet cni VERB: message` and exit 1. */
function action<A extends unknown[]>(
  verb: string,
  fn: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (error) {
      if (!(error instanceof CniError || error instanceof UserError)) throw error;
      const lines = [`podnet cni ${verb}: ${error.message}`];
      if (
        error instanceof CniError &&
        error.details?.startsWith("fix:") &&
        !error.message.includes(error.details)
      )
        lines.push(`    ${error.details}`);
      if (
        error instanceof PluginError &&
        error.stderr?.trim() &&
        error.origin === "runtime" &&
        error.code !== 0
      )
        lines.push(`    stderr: ${error.stderr.trim().split("\n").slice(-3).join("\n    ")}`);
      if (error instanceof PluginError)
        for (const e of error.cleanupErrors) lines.push(`    cleanup after the failed ADD: ${e.message}`);
      process.stderr.write(`${lines.join("\n")}\n`);
      throw new CommanderError(1, `podnet.cni.${verb}`, lines[0] ?? "");
    }
  };
}

function loadList(file: string): NetworkConfigList {
  return loadConfList(file);
}

export function formatResult(result: Result): string {
  const interfaces = result.interfaces ?? [];
  const parts: string[] = [];
  if (interfaces.length > 0)
    parts.push(
      formatTable(
        ["INTERFACE", "MAC", "MTU", "SANDBOX"],
        interfaces.map((i) => [i.name, i.mac ?? "", i.mtu ?? "", i.sandbox ?? "<host>"]),
      ),
    );
  const ips = result.ips ?? [];
  parts.push(
    ips.length > 0
      ? formatTable(
          ["ADDRESS", "GATEWAY", "INTERFACE"],
          ips.map((ip) => [
            ip.address,
            ip.gateway ?? "",
            ip.interface !== undefined ? (interfaces[ip.interface]?.name ?? String(ip.interface)) : "",
          ]),
        )
      : "no IP addresses",
  );
  const routes = result.routes ?? [];
  if (routes.length > 0)
    parts.push(
      formatTable(
        ["ROUTE", "VIA"],
        routes.map((r) => [r.dst, r.gw ?? "<default gateway>"]),
      ),
    );
  const dns = result.dns;
  if (dns && (dns.nameservers?.length || dns.search?.length || dns.domain))
    parts.push(
      `DNS: nameservers ${dns.nameservers?.join(", ") || "none"}${dns.search?.length ? `; search ${dns.search.join(" ")}` : ""}${dns.domain ? `; domain ${dns.domain}` : ""}`,
    );
  return parts.join("\n\n");
}

/**
 * The server starts ip and nft with posix_spawn, right inside the pod's namespace, when the netns addon
 * is built: ~2 ms less per command than Node's spawn and `ip -n` (which copies the mount table). Without
 * it, the server works as before.
 */
async function useNativeExec(log?: (line: string) => void): Promise<void> {
  try {
    const native = await import("../../linux/netns-native.js");
    const { useSyncSpawner } = await import("../../linux/exec.js");
    const { useNetnsSwitcher } = await import("../../linux/netns-context.js");
    native.spawnSyncLight("true", []);
    useSyncSpawner(native.spawnSyncLight);
    useNetnsSwitcher(native.withNetns);
  } catch (e) {
    log?.(`netns addon unavailable, using Node's spawn: ${(e as Error).message}`);
  }
}

export function registerCniCommand(program: Command): void {
  const cni = program
    .command("cni")
    .description("Run a CNI network configuration's plugin chain for a container (the runtime side of CNI)")
    .addHelpText(
      "after",
      `
Examples:
  podnet cni add net.conflist --netns /run/netns/pod-1 --container-id pod-1
  podnet cni add net.conflist --netns /run/netns/pod-1 --container-id pod-1 \\
      --cap-args '{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}'
  podnet cni check net.conflist --netns /run/netns/pod-1 --container-id pod-1
  podnet cni del net.conflist --container-id pod-1
  podnet cni gc net.conflist --valid pod-2/eth0
  podnet cni install --dir /opt/cni/bin

Results are cached per attachment under --cache-dir (libcni's format), so DEL and CHECK get the ADD result.`,
    );

  const add = cni
    .command("add <conf>")
    .description("ADD: attach the container to the network (plugins in order); prints the result");
  addAttachmentOptions(add, true);
  addCommonOptions(add);
  add.action(
    action("add", async (file: string, flags: AttachmentFlags) => {
      const list = loadList(file);
      const result = await runtimeFrom(flags).add(list, attachmentFrom(flags));
      printData(result, flags.output, () => formatResult(result));
    }),
  );

  const del = cni
    .command("del <conf>")
    .description("DEL: detach the container (plugins in reverse order, with the cached result); idempotent");
  addAttachmentOptions(del, false);
  addCommonOptions(del);
  del.action(
    action("del", async (file: string, flags: AttachmentFlags) => {
      const list = loadList(file);
      await runtimeFrom(flags).del(list, attachmentFrom(flags));
      const data = {
        network: list.name,
        containerID: flags.containerId,
        ifname: flags.ifname,
        deleted: true,
      };
      printData(
        data,
        flags.output,
        () => `deleted ${flags.containerId}/${flags.ifname} from network ${list.name}`,
      );
    }),
  );

  const check = cni
    .command("check <conf>")
    .description("CHECK: ask every plugin whether the attachment is as it was ADDed (0.4.0 and later)");
  addAttachmentOptions(check, true);
  addCommonOptions(check);
  check.action(
    action("check", async (file: string, flags: AttachmentFlags) => {
      const list = loadList(file);
      const outcome = await runtimeFrom(flags).check(list, attachmentFrom(flags));
      printData(outcome, flags.output, () =>
        outcome.performed
          ? `CHECK passed: ${flags.containerId}/${flags.ifname} on network ${list.name}`
          : `CHECK not run: ${outcome.skipped}`,
      );
    }),
  );

  const status = cni
    .command("status <conf>")
    .description("STATUS: ask every plugin whether it is ready to ADD (1.1.0 and later)");
  addCommonOptions(status);
  status.action(
    action("status", async (file: string, flags: CommonFlags) => {
      const list = loadList(file);
      const outcome = await runtimeFrom(flags).status(list);
      printData(outcome, flags.output, () =>
        outcome.performed
          ? `network ${list.name}: ready (${list.plugins.length} plugin${list.plugins.length === 1 ? "" : "s"})`
          : `STATUS not run: ${outcome.skipped}`,
      );
    }),
  );

  const gc = cni
    .command("gc <conf>")
    .description(
      "GC: DEL cached attachments of the network not listed as valid, then send GC to the plugins (1.1.0 and later)",
    )
    .addOption(
      new Option(
        "--valid <id/ifname...>",
        "attachments still in use, as CONTAINER_ID/IFNAME; repeatable",
      ).default([]),
    );
  addCommonOptions(gc);
  gc.action(
    action("gc", async (file: string, flags: CommonFlags & { valid: string[] }) => {
      const list = loadList(file);
      const valid: ValidAttachment[] = flags.valid.map((v) => {
        const slash = v.lastIndexOf("/");
        if (slash <= 0 || slash === v.length - 1)
          throw new UserError(
            `--valid: "${v}" is not CONTAINER_ID/IFNAME\n    fix: write --valid pod-1/eth0`,
          );
        return { containerID: v.slice(0, slash), ifname: v.slice(slash + 1) };
      });
      const report = await runtimeFrom(flags).gc(list, valid);
      printData(report, flags.output, () => {
        if (report.skipped) return `GC not run: ${report.skipped}`;
        const lines = report.deleted.map((a) => `deleted stale attachment ${a.containerID}/${a.ifname}`);
        lines.push(
          report.pluginsCollected
            ? `GC sent to ${list.plugins.length} plugin${list.plugins.length === 1 ? "" : "s"}`
            : `GC not sent to the plugins: version ${list.cniVersion} has no GC (1.1.0 and later)`,
        );
        return lines.join("\n");
      });
    }),
  );

  cni
    .command("install")
    .description("Install podnet's CNI plugins (podnet, podnet-ipam) into a bin directory")
    .requiredOption("--dir <dir>", "the CNI bin directory, e.g. /opt/cni/bin")
    .action(
      action("install", async (flags: { dir: string }) => {
        let installed: string[];
        try {
          installed = installPlugins(flags.dir);
        } catch (error) {
          throw new UserError(
            `${(error as Error).message}\n    fix: build podnet (npx tsc -p .) and make ${flags.dir} writable`,
          );
        }
        process.stdout.write(`${installed.map((p) => `installed ${p}`).join("\n")}\n`);
      }),
    );

  cni
    .command("serve")
    .description(
      "Serve podnet's plugins from this process in the current network namespace (run it in a node's: `ip netns exec NODE podnet cni serve`); installed plugins use it instead of starting Node per call",
    )
    .option("-v, --verbose", "log every call and its duration on stderr")
    .action(
      action("serve", async (flags: { verbose?: boolean }) => {
        const { startCniServer } = await import("../../cni/server.js");
        const log = flags.verbose ? (line: string) => process.stderr.write(`${line}\n`) : undefined;
        await useNativeExec(log);
        let server: Awaited<ReturnType<typeof startCniServer>>;
        try {
          server = await startCniServer({ log });
        } catch (error) {
          throw new UserError(
            `cannot listen on @${CNI_SERVER_SOCKET}: ${(error as Error).message}\n    fix: is a podnet CNI server already running in this network namespace? (ss -xlp | grep podnet-cni)`,
          );
        }
        process.stdout.write(`serving podnet CNI plugins on @${CNI_SERVER_SOCKET} (pid ${process.pid})\n`);
        await new Promise<void>((resolve) => {
          const stop = () => server.close(() => resolve());
          process.once("SIGTERM", stop);
          process.once("SIGINT", stop);
        });
      }),
    );
}
