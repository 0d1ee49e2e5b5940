// Reads a resolv.conf into a CNI dns object (nameserver, domain, search, options), as host-local does.
import { readFileSync } from "node:fs";
import type { Dns } from "../spec.js";

export function parseResolvConf(text: string): Dns {
  const dns: Dns = {};
  const nameservers: string[] = [];
  const options: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/[#;].*$/, "").trim();
    if (line === "") continue;
    const [key, ...values] = line.split(/\s+/);
    if (key === "nameserver" && values[0]) nameservers.push(values[0]);
    else if (key === "domain" && values[0]) dns.domain = values[0];
    else if (key === "search") dns.search = values;
    else if (key === "options") options.push(...values);
  }
  if (nameservers.length > 0) dns.nameservers = nameservers;
  if (options.length > 0) dns.options = options;
  return dns;
}

export function readResolvConf(path: string): Dns {
  return parseResolvConf(readFileSync(path, "utf8"));
}
