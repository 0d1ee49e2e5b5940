/** `podnet dns serve --config FILE`: the DNS server on its own (see src/dns/server/README.md). */
import { isIP } from "node:net";
import type { Command } from "commander";
import { loadDnsConfig } from "../../dns/server/config.js";
import { startDnsServer } from "../../dns/server/server.js";
import { UserError } from "../options.js";

interface ServeFlags {
  config: string;
  listen: string;
}

export function registerDnsCommand(program: Command): void {
  const dns = program.command("dns").description("The cluster DNS server");
  dns
    .command("serve")
    .description(
      "Serve DNS as the configuration says (Corefile-like: server blocks, hosts, forward, cache, prometheus) until interrupted",
    )
    .requiredOption("--config <file>", "the server configuration")
    .option("--listen <address>", "address for server blocks without `bind`", "127.0.0.1")
    .addHelpText(
      "after",
      [
        "",
        "Blocks without `bind` listen on 127.0.0.1 (loopback) unless --listen says otherwise; the port comes",
        "from each block's key (ZONE:PORT, 53 when absent). The `kubernetes` directive needs the cluster's",
        "records and is served when the lab starts the server; standalone, use hosts blocks and forward.",
        "",
        "Example:",
        "  podnet dns serve --config Corefile",
        "  dig @127.0.0.1 -p 1053 db.example.internal",
      ].join("\n"),
    )
    .action(async (flags: ServeFlags) => {
      if (isIP(flags.listen) === 0)
        throw new UserError(
          `--listen "${flags.listen}" is not an IP address\n    fix: give an address such as 127.0.0.1`,
        );
      const config = loadDnsConfig(flags.config);
      let handle: Awaited<ReturnType<typeof startDnsServer>>;
      try {
        handle = await startDnsServer(config, { defaultListen: flags.listen });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code) throw new UserError((e as Error).message);
        throw e;
      }
      for (const l of handle.listeners)
        process.stdout.write(
          `listening on ${l.address} port ${l.port} (udp, tcp) for ${l.zones.join(" ")}\n`,
        );
      for (const m of handle.metrics)
        process.stdout.write(`metrics on http://${m.address}:${m.port}/metrics\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          handle.close().then(resolve, resolve);
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      });
    });
}
