/**
 * The lab's DNS PKI on disk (names in cluster-dns.ts `labDnsPki`): on up/apply, when any cluster serves
 * DNS over TLS or forwards over TLS, the lab CA (kept once made) and a certificate per such cluster DNS,
 * `dns.CLUSTER.LAB`, with serverAuth and clientAuth (it serves DoT and presents itself for mutual TLS).
 * An existing certificate is kept: the running servers hold it. Everything is under the lab's directory,
 * which `lab down` removes. The PKI code (an X.509 library) is loaded only when a lab uses TLS: it
 * costs ~0.5 s of start-up to every lab command otherwise.
 */
import { existsSync } from "node:fs";
import type { Cluster } from "../api/types.js";
import { clustersNeedingDnsCertificates, labDnsPki } from "./cluster-dns.js";

export interface LabDnsCertificates {
  ca: string;
  /** Per cluster: its certificate and key, and the name they are issued for. */
  clusters: { cluster: string; serverName: string; cert: string; key: string; created?: boolean }[];
}

/** Makes what is missing; undefined when no cluster uses TLS (nothing is written then). */
export async function ensureLabDnsCertificates(
  lab: string,
  clusters: readonly Cluster[],
): Promise<LabDnsCertificates | undefined> {
  const names = clustersNeedingDnsCertificates(clusters);
  if (!names.length) return undefined;
  const { issueCertificate } = await import("../pki/certificates.js");
  const { ensureCa, writePemPair } = await import("../pki/files.js");
  const pki = labDnsPki(lab);
  const { ca } = await ensureCa(pki.dir, { commonName: `podnet lab ${lab} DNS CA` });
  const out: LabDnsCertificates = { ca: pki.ca, clusters: [] };
  for (const cluster of names) {
    const serverName = pki.serverName(cluster);
    const created = !existsSync(pki.cert(cluster)) || !existsSync(pki.key(cluster));
    if (created) {
      const pair = await issueCertificate(ca, {
        commonName: serverName,
        dnsNames: [serverName],
        usage: "both",
      });
      writePemPair(pki.dir, serverName, pair);
    }
    out.clusters.push({ cluster, serverName, cert: pki.cert(cluster), key: pki.key(cluster), created });
  }
  return out;
}

/** What exists for a lab (for `podnet lab certs`), without making anything. */
export function labDnsCertificates(lab: string, clusters: readonly string[]): LabDnsCertificates | undefined {
  const pki = labDnsPki(lab);
  if (!existsSync(pki.ca)) return undefined;
  return {
    ca: pki.ca,
    clusters: clusters
      .filter((c) => existsSync(pki.cert(c)))
      .map((c) => ({
        cluster: c,
        serverName: pki.serverName(c),
        cert: pki.cert(c),
        key: pki.key(c),
      })),
  };
}
