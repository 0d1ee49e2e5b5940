/**
 * The edge of src/pki: certificates and keys as files in one directory, as cfssl and kubeadm lay them
 * out: ca.pem + ca-key.pem, NAME.pem + NAME-key.pem. Keys are written 0600, certificates 0644, each file
 * whole or not at all (a temporary file renamed). An existing CA is kept, so certificates issued with it
 * earlier stay valid, unless `force` asks for a new one.
 */
import { X509Certificate } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type CertificateUsage, createCa, issueCertificate, type PemPair, PkiError } from "./certificates.js";

export const CA_CERT_FILE = "ca.pem";
export const CA_KEY_FILE = "ca-key.pem";

/** Where a certificate and its key were written. */
export interface WrittenPair {
  name: string;
  certPath: string;
  keyPath: string;
}

const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function writeAtomic(path: string, text: string, mode: number): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, text, { mode });
  chmodSync(temporary, mode); // the umask may have narrowed it
  renameSync(temporary, path);
}

/** Writes NAME.pem (0644) and NAME-key.pem (0600) in `dir`. */
export function writePemPair(dir: string, name: string, pair: PemPair): WrittenPair {
  if (!FILE_NAME.test(name) || name === "ca")
    throw new PkiError(
      `"${name}" cannot name certificate files`,
      "use letters, digits, '.', '_' and '-' (not starting with them), and not ca",
    );
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const certPath = join(dir, `${name}.pem`);
  const keyPath = join(dir, `${name}-key.pem`);
  writeAtomic(keyPath, pair.keyPem, 0o600);
  writeAtomic(certPath, pair.certPem, 0o644);
  return { name, certPath, keyPath };
}

/** The CA in `dir` (ca.pem, ca-key.pem), or undefined when there is none. */
export function readCa(dir: string): PemPair | undefined {
  const certPath = join(dir, CA_CERT_FILE);
  const keyPath = join(dir, CA_KEY_FILE);
  const haveCert = existsSync(certPath);
  const haveKey = existsSync(keyPath);
  if (!haveCert && !haveKey) return undefined;
  if (!haveCert || !haveKey)
    throw new PkiError(
      `${dir} has ${haveCert ? CA_CERT_FILE : CA_KEY_FILE} without ${haveCert ? CA_KEY_FILE : CA_CERT_FILE}`,
      "restore the missing file, or pass --force (force: true) to create a new CA (certificates signed by the old one stop being trusted)",
    );
  return { certPem: readFileSync(certPath, "utf8"), keyPem: readFileSync(keyPath, "utf8") };
}

export interface EnsureCaOptions {
  commonName: string;
  validDays?: number;
  /** Create a new CA even when one exists. */
  force?: boolean;
  now?: Date;
}

/** The CA in `dir`, created (and written) when absent or when `force`; `created` says which. */
export async function ensureCa(
  dir: string,
  options: EnsureCaOptions,
): Promise<{ ca: PemPair; created: boolean; certPath: string }> {
  const certPath = join(dir, CA_CERT_FILE);
  const existing = options.force ? undefined : readCa(dir);
  if (existing) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(existing.certPem);
    } catch (e) {
      throw new PkiError(
        `${certPath} is not a PEM certificate: ${(e as Error).message}`,
        "pass --force (force: true) to create a new CA",
      );
    }
    if (!cert.ca)
      throw new PkiError(
        `${certPath} is not a CA certificate`,
        "pass --force (force: true) to create a new CA",
      );
    if (new Date(cert.validTo).getTime() <= (options.now ?? new Date()).getTime())
      throw new PkiError(
        `the CA in ${certPath} expired on ${cert.validTo}`,
        "pass --force (force: true) to create a new CA, then reissue every certificate",
      );
    return { ca: existing, created: false, certPath };
  }
  const ca = await createCa(options);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  writeAtomic(join(dir, CA_KEY_FILE), ca.keyPem, 0o600);
  writeAtomic(certPath, ca.certPem, 0o644);
  return { ca, created: true, certPath };
}

export interface DnsCertificatesOptions {
  /** The directory for every file. */
  dir: string;
  /** The server certificate's file name and CN, e.g. dns (dns.pem, dns-key.pem). */
  name: string;
  /** subjectAltName DNS names of the server; default [name] when it is a DNS name. */
  dnsNames?: string[];
  ipAddresses?: string[];
  /** Client certificates (for mutual TLS), one per name: NAME.pem with clientAuth usage. */
  clients?: string[];
  /** CN of a new CA; default "podnet DNS CA". */
  caName?: string;
  validDays?: number;
  force?: boolean;
  now?: Date;
}

export interface DnsCertificates {
  caPath: string;
  caCreated: boolean;
  server: WrittenPair;
  clients: WrittenPair[];
}

/**
 * What `podnet dns certs` writes: the CA (kept when present), a server certificate for the DNS server
 * and client certificates for forwarders that must authenticate (mutual TLS).
 */
export async function writeDnsCertificates(options: DnsCertificatesOptions): Promise<DnsCertificates> {
  const { ca, created, certPath } = await ensureCa(options.dir, {
    commonName: options.caName ?? "podnet DNS CA",
    ...(options.force !== undefined ? { force: options.force } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
  const common = {
    ...(options.validDays !== undefined ? { validDays: options.validDays } : {}),
    ...(options.now ? { now: options.now } : {}),
  };
  const dnsNames = options.dnsNames ?? (options.name.includes(".") ? [options.name] : []);
  const issue = async (name: string, usage: CertificateUsage, names: string[], ips: string[]) =>
    writePemPair(
      options.dir,
      name,
      await issueCertificate(ca, { commonName: name, dnsNames: names, ipAddresses: ips, usage, ...common }),
    );
  const server = await issue(options.name, "server", dnsNames, options.ipAddresses ?? []);
  const clients: WrittenPair[] = [];
  for (const client of options.clients ?? []) clients.push(await issue(client, "client", [], []));
  return { caPath: certPath, caCreated: created, server, clients };
}
