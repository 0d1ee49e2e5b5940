/**
 * The contract between the DNS records (what the cluster zone answers, `records/`) and the DNS server
 * (wire format, transports, forwarding, cache, `server/`). Plain data, independent of any wire library:
 * record `data` shapes follow the common JavaScript convention (dns-packet's) so that encoding is direct.
 */

export type RecordType = "A" | "AAAA" | "SRV" | "PTR" | "CNAME" | "TXT" | "SOA" | "NS";

export interface SrvData {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

export interface SoaData {
  mname: string;
  rname: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}

/** One resource record, class IN. Names are absolute without the trailing dot, lower case. */
export type DnsRecord =
  | { name: string; type: "A" | "AAAA"; ttl: number; data: string }
  | { name: string; type: "CNAME" | "PTR" | "NS"; ttl: number; data: string }
  | { name: string; type: "SRV"; ttl: number; data: SrvData }
  | { name: string; type: "TXT"; ttl: number; data: string[] }
  | { name: string; type: "SOA"; ttl: number; data: SoaData };

export type Rcode = "NOERROR" | "NXDOMAIN" | "SERVFAIL" | "REFUSED" | "NOTIMP" | "FORMERR";

/** What an authoritative zone answers for one question. */
export interface LookupResult {
  rcode: Rcode;
  /** Answer section (CNAME chains included, in order). */
  answers: DnsRecord[];
  /** Authority section: the zone's SOA for NXDOMAIN and NODATA, as CoreDNS does. */
  authority: DnsRecord[];
  /** Additional section: e.g. the A/AAAA of SRV targets. */
  additionals: DnsRecord[];
}

/**
 * An authoritative source for a set of zones. `qtype` is the query type's mnemonic (e.g. "A", "ANY",
 * "MX", or "TYPE65" for unknown ones); `qname` is lower case, without the trailing dot.
 * Returns undefined when `qname` is outside every zone it serves (the server then forwards or refuses).
 */
export interface ZoneAnswerer {
  /** The zones served, e.g. ["cluster.local", "in-addr.arpa", "ip6.arpa"]. */
  readonly zones: readonly string[];
  lookup(qname: string, qtype: string): LookupResult | undefined;
}
