/**
 * `podnet dns serve --config FILE`: the DNS server on its own (see src/dns/server/README.md).
 * `podnet dns certs --out DIR --name NAME`: a CA and certificates for DNS over TLS (see src/pki/README.md).
 */
import { isIP } from "node:net";
import type { Command } from "commander";
import { loadDnsConfig } from "../../dns/server/config.js";
import { startDnsServer } from "../../dns/server/server.js";
import { UserError } from "../options.js";

interface ServeFlags {
  config: string;
  listen: string;
}

interface CertsFlags {
  out: string;
  name: string;
  dnsName: string[];
  ip: string[];
  client: string[];
  caName: string;
  days: string;
  force?: boolean;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
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
          `listening on ${l.address} port ${l.port} (${l.transport === "tls" ? "DNS over TLS" : "udp, tcp"}) for ${l.zones.join(" ")}\n`,
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

  dns
    .command("certs")
    .description(
      "Write a CA and certificates for DNS over TLS: a server certificate (and client certificates for mutual TLS)",
    )
    .requiredOption("--out <dir>", "directory for the PEM files (created when missing)")
    .requiredOption("--name <name>", "the server certificate: files NAME.pem, NAME-key.pem; CN and DNS name")
    .option("--dns-name <name>", "a DNS name of the server (repeatable; default: --name)", collect, [])
    .option("--ip <address>", "an IP address of the server (repeatable)", collect, [])
    .option("--client <name>", "a client certificate NAME.pem for a forwarder (repeatable)", collect, [])
    .option("--ca-name <cn>", "the CA's common name, when a CA is created", "podnet DNS CA")
    .option("--days <days>", "validity of the certificates issued now", "825")
    .option(
      "--force",
      "create a new CA even when DIR has one (certificates signed by the old one stop verifying)",
    )
    .addHelpText(
      "after",
      [
        "",
        "Writes ca.pem and ca-key.pem (unless DIR has them: the CA is kept, so certificates issued earlier",
        "stay valid), NAME.pem with NAME-key.pem, and CLIENT.pem with CLIENT-key.pem per --client. Keys are",
        "written 0600. Certificates are ECDSA P-256; the server's holds --dns-name and --ip as subject",
        "alternative names, which forwarders verify (tls_servername NAME, or the IP address).",
        "",
        "Examples:",
        "  podnet dns certs --out pki --name dns.c2.podnet --ip 10.245.1.3 --client c1",
        "  # the remote cluster's DNS (Corefile):",
        "  tls://.:853 {",
        "      tls pki/dns.c2.podnet.pem pki/dns.c2.podnet-key.pem pki/ca.pem { client_auth require_and_verify }",
        "      ...",
        "  }",
        "  # the forwarding side:",
        "  forward c2.example tls://10.245.1.3 {",
        "      tls pki/c1.pem pki/c1-key.pem pki/ca.pem",
        "      tls_servername dns.c2.podnet",
        "  }",
        "  dig @10.245.1.3 +tls +tls-ca=pki/ca.pem +tls-hostname=dns.c2.podnet www.c2.example",
      ].join("\n"),
    )
    .action(async (flags: CertsFlags) => {
      const days = Number(flags.days);
      // Loaded here: the X.509 library costs every other command its start-up time otherwise.
      const { PkiError } = await import("../../pki/certificates.js");
      const { writeDnsCertificates } = await import("../../pki/files.js");
      try {
        const written = await writeDnsCertificates({
          dir: flags.out,
          name: flags.name,
          ...(flags.dnsName.length ? { dnsNames: flags.dnsName } : {}),
          ipAddresses: flags.ip,
          clients: flags.client,
          caName: flags.caName,
          validDays: days,
          force: flags.force === true,
        });
        process.stdout.write(
          `${written.caCreated ? "created" : "kept"} CA ${written.caPath}\n` +
            [written.server, ...written.clients]
              .map((p) => `wrote ${p.certPath} and ${p.keyPath}\n`)
              .join(""),
        );
      } catch (e) {
        if (e instanceof PkiError) throw new UserError(`${e.message}\n    fix: ${e.hint}`);
        if ((e as NodeJS.ErrnoException).code)
          throw new UserError(`cannot write to ${flags.out}: ${(e as Error).message}`);
        throw e;
      }
    });
}
