/**
 * X.509 certificates for podnet's TLS (DNS over TLS between clusters): a CA and certificates it signs,
 * ECDSA P-256 with SHA-256, subject alternative names (DNS names and IP addresses), server and/or client
 * usage. Pure: PEM text in, PEM text out, no files (files.ts writes them).
 *
 * Node can verify certificates but not create them, so the encoding comes from @peculiar/x509 on Node's
 * webcrypto. That library resolves its ASN.1 codecs through tsyringe, which needs a Reflect metadata
 * polyfill loaded before it: hence the `reflect-metadata` import first (its own line, kept first).
 */
import "reflect-metadata";
import { createPrivateKey, KeyObject, randomBytes, webcrypto } from "node:crypto";
import { isIP } from "node:net";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY_MS = 86_400_000;
/** Certificates start an hour early: clocks of two namespaces agree, but other machines' may not. */
const BACKDATE_MS = 3_600_000;

export const DEFAULT_CA_VALID_DAYS = 3650;
export const DEFAULT_CERT_VALID_DAYS = 825;

/** A certificate and its private key, both PEM (the key PKCS#8). */
export interface PemPair {
  certPem: string;
  keyPem: string;
}

export type CertificateUsage = "server" | "client" | "both";

export interface CaOptions {
  commonName: string;
  /** Default 3650. */
  validDays?: number;
  /** Start of validity (default now; backdated by an hour). */
  now?: Date;
}

export interface IssueOptions {
  commonName: string;
  /** subjectAltName DNS entries; a server is verified against these (or the IPs). */
  dnsNames?: string[];
  /** subjectAltName IP entries (IPv4 or IPv6). */
  ipAddresses?: string[];
  /** extendedKeyUsage: serverAuth, clientAuth or both. */
  usage: CertificateUsage;
  /** Default 825 (the longest browsers accept; nothing here needs longer). */
  validDays?: number;
  now?: Date;
}

/** Input that cannot make a certificate: what is wrong and how to fix it. */
export class PkiError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = "PkiError";
  }
}

const DNS_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

function checkCommonName(name: string): void {
  if (!name.trim() || name.length > 64)
    throw new PkiError(
      `common name "${name}" must have 1 to 64 characters`,
      "give a short name such as dns.cluster-a.podnet",
    );
}

function checkValidDays(days: number): void {
  if (!Number.isInteger(days) || days < 1 || days > 36500)
    throw new PkiError(
      `validity of ${days} days is not a whole number from 1 to 36500`,
      "give days, e.g. 365",
    );
}

function checkNames(dnsNames: readonly string[], ipAddresses: readonly string[]): void {
  for (const name of dnsNames)
    if (name.length > 253 || !DNS_NAME.test(name))
      throw new PkiError(
        `"${name}" is not a DNS name for a certificate`,
        "write a name such as dns.c2.podnet (a leading *. is allowed); IP addresses go to ipAddresses",
      );
  for (const ip of ipAddresses)
    if (isIP(ip) === 0)
      throw new PkiError(`"${ip}" is not an IP address`, "write an IPv4 or IPv6 address such as 10.96.0.10");
}

/** A distinguished name with only a CN, its value escaped as RFC 4514 asks. */
function distinguishedName(commonName: string): string {
  return `CN=${commonName.replace(/([,+"\\<>;=])/g, "\\$1").replace(/^([ #])/, "\\$1")}`;
}

/** A positive 16-byte serial number (RFC 5280 §4.1.2.2: at most 20 bytes, positive). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] as number) & 0x7f) | 0x01;
  return bytes.toString("hex");
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"])) as CryptoKeyPair;
}

function privateKeyPem(key: CryptoKey): string {
  return KeyObject.from(key as webcrypto.CryptoKey).export({ type: "pkcs8", format: "pem" }) as string;
}

async function importPrivateKey(pem: string): Promise<CryptoKey> {
  let der: Buffer;
  try {
    der = createPrivateKey(pem).export({ type: "pkcs8", format: "der" });
  } catch (e) {
    throw new PkiError(
      `the CA key cannot be read: ${(e as Error).message}`,
      "give the PEM private key written with the CA (ca-key.pem)",
    );
  }
  try {
    return (await webcrypto.subtle.importKey("pkcs8", der, ALGORITHM, false, ["sign"])) as CryptoKey;
  } catch (e) {
    throw new PkiError(
      `the CA key is not an ECDSA P-256 key: ${(e as Error).message}`,
      "create the CA with podnet (createCa or `podnet dns certs`)",
    );
  }
}

function validity(now: Date | undefined, days: number): { notBefore: Date; notAfter: Date } {
  const start = (now ?? new Date()).getTime();
  return { notBefore: new Date(start - BACKDATE_MS), notAfter: new Date(start + days * DAY_MS) };
}

/** A self-signed CA certificate (basicConstraints CA, pathLen 0: it signs leaves only) and its key. */
export async function createCa(options: CaOptions): Promise<PemPair> {
  checkCommonName(options.commonName);
  const days = options.validDays ?? DEFAULT_CA_VALID_DAYS;
  checkValidDays(days);
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: distinguishedName(options.commonName),
    ...validity(options.now, days),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString("pem"), keyPem: privateKeyPem(keys.privateKey) };
}

/** A leaf certificate signed by `ca`, with a new key. */
export async function issueCertificate(ca: PemPair, options: IssueOptions): Promise<PemPair> {
  checkCommonName(options.commonName);
  const days = options.validDays ?? DEFAULT_CERT_VALID_DAYS;
  checkValidDays(days);
  const dnsNames = options.dnsNames ?? [];
  const ipAddresses = options.ipAddresses ?? [];
  checkNames(dnsNames, ipAddresses);
  if (options.usage !== "server" && options.usage !== "client" && options.usage !== "both")
    throw new PkiError(`usage "${options.usage}" is not a certificate usage`, "write server, client or both");
  if (options.usage !== "client" && !dnsNames.length && !ipAddresses.length)
    throw new PkiError(
      `server certificate "${options.commonName}" has no DNS name or IP address`,
      "clients verify a server by its subjectAltName (the CN is not used): give DNS names or IP addresses (podnet dns certs: --dns-name, --ip)",
    );
  let caCert: x509.X509Certificate;
  try {
    caCert = new x509.X509Certificate(ca.certPem);
  } catch (e) {
    throw new PkiError(
      `the CA certificate cannot be read: ${(e as Error).message}`,
      "give the PEM certificate written with the CA (ca.pem)",
    );
  }
  const signingKey = await importPrivateKey(ca.keyPem);
  const keys = await generateKeys();
  const usages: string[] = [];
  if (options.usage !== "client") usages.push(x509.ExtendedKeyUsage.serverAuth);
  if (options.usage !== "server") usages.push(x509.ExtendedKeyUsage.clientAuth);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    // ECDSA keys sign (the handshake); they never encipher keys.
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(usages, false),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
  ];
  const names = [
    ...dnsNames.map((value) => ({ type: "dns" as const, value: value.toLowerCase() })),
    ...ipAddresses.map((value) => ({ type: "ip" as const, value })),
  ];
  if (names.length) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: distinguishedName(options.commonName),
    issuer: caCert.subject,
    ...validity(options.now, days),
    publicKey: keys.publicKey,
    signingKey,
    signingAlgorithm: ALGORITHM,
    extensions,
  });
  return { certPem: cert.toString("pem"), keyPem: privateKeyPem(keys.privateKey) };
}
