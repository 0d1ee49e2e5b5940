/**
 * The `hosts` directive: a static zone from inline `ADDRESS NAME...` lines and/or a hosts-format file, as
 * CoreDNS's hosts plugin. A ZoneAnswerer like the cluster zone: A/AAAA for the names, PTR for the
 * addresses (when the reverse zone is among its zones), NODATA for other types of a known name, NXDOMAIN
 * (with a synthesized SOA, so that denials can be cached) for unknown names inside its zones.
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { dirname, resolve } from "node:path";
import { type Diagnostic, InvalidInputError } from "../../api/diagnostics.js";
import type { DnsRecord, LookupResult, ZoneAnswerer } from "../types.js";
import { type HostsConfig, type HostsEntry, inZone, normalizeZone } from "./config.js";

/** The reverse-lookup name of an address: 4.3.2.1.in-addr.arpa, or nibbles under ip6.arpa. */
export function reverseName(address: string): string {
  if (isIP(address) === 4) return `${address.split(".").reverse().join(".")}.in-addr.arpa`;
  const [head = "", tail = ""] = address.split("::");
  const groups = (s: string) => (s ? s.split(":") : []);
  const h = groups(head);
  const t = groups(tail);
  const all = address.includes("::") ? [...h, ...Array(8 - h.length - t.length).fill("0"), ...t] : h;
  const hex = all.map((g) => g.padStart(4, "0")).join("");
  return `${[...hex].reverse().join(".")}.ip6.arpa`;
}

/** Reads `ADDRESS NAME...` lines of a hosts file (comments with #). */
export function readHostsFile(path: string): { entries: HostsEntry[]; diagnostics: Diagnostic[] } {
  const entries: HostsEntry[] = [];
  const diagnostics: Diagnostic[] = [];
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    diagnostics.push({
      severity: "error",
      code: "dns-hosts",
      message: `cannot read the hosts file: ${(e as Error).message}`,
      hint: "give an existing file to the hosts directive (relative paths start at the configuration file)",
      source: { file: path, line: 1 },
    });
    return { entries, diagnostics };
  }
  text.split("\n").forEach((raw, i) => {
    const words = (raw.split("#")[0] ?? "").trim().split(/\s+/).filter(Boolean);
    if (!words.length) return;
    const [address = "", ...names] = words;
    const zones = names.map(normalizeZone);
    if (isIP(address) === 0 || !names.length || zones.some((z) => z === undefined)) {
      diagnostics.push({
        severity: "error",
        code: "dns-hosts",
        message: `"${raw.trim()}" is not an ADDRESS NAME... line`,
        hint: "write an IP address then one or more host names",
        source: { file: path, line: i + 1 },
      });
      return;
    }
    entries.push({ address, names: zones as string[], line: i + 1 });
  });
  return { entries, diagnostics };
}

const SOA_TIMERS = { refresh: 7200, retry: 1800, expire: 86400 };

/** A ZoneAnswerer over static records. */
export class StaticZone implements ZoneAnswerer {
  readonly zones: readonly string[];
  /** name → records at that name. */
  private readonly records = new Map<string, DnsRecord[]>();
  /** Names that exist (with records, or with names below them: empty non-terminals answer NODATA). */
  private readonly existing = new Set<string>();
  private readonly serial = Math.floor(Date.now() / 1000) >>> 0;

  constructor(
    zones: readonly string[],
    records: readonly DnsRecord[],
    private readonly ttl: number,
  ) {
    // Most specific zone first, so the SOA is that of the closest enclosing zone.
    this.zones = [...zones].sort((a, b) => b.length - a.length);
    for (const record of records) {
      if (!this.zoneOf(record.name)) continue;
      const list = this.records.get(record.name) ?? [];
      if (!list.some((r) => r.type === record.type && JSON.stringify(r.data) === JSON.stringify(record.data)))
        list.push(record);
      this.records.set(record.name, list);
      for (let name = record.name; ; ) {
        this.existing.add(name);
        const zone = this.zoneOf(name);
        const dot = name.indexOf(".");
        if (name === zone || dot < 0) break;
        name = name.slice(dot + 1);
      }
    }
  }

  private zoneOf(name: string): string | undefined {
    return this.zones.find((zone) => inZone(name, zone));
  }

  private soa(zone: string): DnsRecord {
    const apex = zone === "." ? "" : `.${zone}`;
    return {
      name: zone,
      type: "SOA",
      ttl: this.ttl,
      data: {
        mname: `ns.dns${apex}`,
        rname: `hostmaster${apex}`,
        serial: this.serial,
        ...SOA_TIMERS,
        minimum: this.ttl,
      },
    };
  }

  lookup(qname: string, qtype: string): LookupResult | undefined {
    const zone = this.zoneOf(qname);
    if (zone === undefined) return undefined;
    const here = this.records.get(qname) ?? [];
    const answers = qtype === "ANY" ? here : here.filter((r) => r.type === qtype);
    if (qtype === "SOA" && qname === zone) answers.push(this.soa(zone));
    if (answers.length) return { rcode: "NOERROR", answers, authority: [], additionals: [] };
    const exists = this.existing.has(qname) || qname === zone;
    return {
      rcode: exists ? "NOERROR" : "NXDOMAIN",
      answers: [],
      authority: [this.soa(zone)],
      additionals: [],
    };
  }
}

/** The static zone of a `hosts` directive; `configFile` locates a relative hosts file. */
export function buildHostsZone(config: HostsConfig, configFile: string): StaticZone {
  const entries = [...config.entries];
  if (config.file) {
    const path = resolve(dirname(configFile), config.file);
    const read = readHostsFile(path);
    if (read.diagnostics.length) throw new InvalidInputError(read.diagnostics);
    entries.push(...read.entries);
  }
  const records: DnsRecord[] = [];
  for (const entry of entries) {
    const type = isIP(entry.address) === 4 ? "A" : "AAAA";
    for (const name of entry.names) {
      records.push({ name, type, ttl: config.ttl, data: entry.address });
      records.push({ name: reverseName(entry.address), type: "PTR", ttl: config.ttl, data: name });
    }
  }
  return new StaticZone(config.zones, records, config.ttl);
}
