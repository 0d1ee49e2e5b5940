/**
 * Reading query names the way CoreDNS's kubernetes plugin does (plugin/kubernetes/parse.go,
 * plugin/pkg/dnsutil/reverse.go), and the dashed forms of IP addresses it generates and accepts.
 */
import { formatIp, tryParseIp } from "../../ipam/cidr.js";

/** A name under the cluster domain, taken apart. Absent fields are "" (CoreDNS's wildcard-free reading). */
export interface RecordRequest {
  /** `svc` or `pod`; "" for the apex, `svc.<zone>` and `pod.<zone>` (empty non-terminals: NODATA). */
  podOrSvc: "" | "svc" | "pod";
  namespace: string;
  /** The service name, or for pod names the dashed IP. */
  service: string;
  /** One label left of the service: an endpoint's hostname. */
  endpoint: string;
  /** Two labels left of the service: `_<port>._<protocol>` (underscores stripped). */
  port: string;
  protocol: string;
}

const stripUnderscore = (label: string) => (label.startsWith("_") ? label.slice(1) : label);

/**
 * Parses `base`, the query name with `.<zone>` removed ("" for the apex). Undefined for names the plugin
 * calls invalid (NXDOMAIN): a last label other than `svc`/`pod`, or more than two labels left of the service.
 */
export function parseRequest(base: string): RecordRequest | undefined {
  const r: RecordRequest = { podOrSvc: "", namespace: "", service: "", endpoint: "", port: "", protocol: "" };
  if (base === "" || base === "svc" || base === "pod") return r;
  const labels = base.split(".");
  let last = labels.length - 1;
  const kind = labels[last];
  if (kind !== "svc" && kind !== "pod") return undefined;
  r.podOrSvc = kind;
  if (--last < 0) return r;
  r.namespace = labels[last] ?? "";
  if (--last < 0) return r;
  r.service = labels[last] ?? "";
  if (--last < 0) return r;
  if (last === 0) r.endpoint = labels[0] ?? "";
  else if (last === 1) {
    r.protocol = stripUnderscore(labels[1] ?? "");
    r.port = stripUnderscore(labels[0] ?? "");
  } else return undefined;
  return r;
}

/** CoreDNS's endpointHostname: the endpoint's hostname, else its IP with `.` or `:` replaced by `-`. */
export function dashedIp(ip: string): string {
  return ip.includes(".") ? ip.replaceAll(".", "-") : ip.replaceAll(":", "-");
}

/**
 * The address a pod name stands for (findPods): three dashes and no `--` make a dotted quad, anything else
 * is read as IPv6 with `-` for `:`. Canonical text, or undefined when it is not an address.
 */
export function podNameAddress(podName: string): string | undefined {
  let dashes = 0;
  for (let i = 0; i < podName.length; i++) if (podName.charCodeAt(i) === 45) dashes++;
  const text =
    dashes === 3 && !podName.includes("--") ? podName.replaceAll("-", ".") : podName.replaceAll("-", ":");
  const ip = tryParseIp(text);
  return ip ? formatIp(ip) : undefined;
}

const HEX = /^[0-9a-f]$/;

/**
 * The address a reverse name (`d.c.b.a.in-addr.arpa`, 32 nibbles `.ip6.arpa`) stands for, in canonical
 * text; undefined for any other name (a partial reverse name, a bad label). As dnsutil's
 * ExtractAddressFromReverse, IPv4 labels are not normalised: `01.0.0.10` matches nothing.
 */
export function addressFromReverse(name: string): string | undefined {
  if (name.endsWith(".in-addr.arpa")) {
    const labels = name.slice(0, -".in-addr.arpa".length).split(".");
    if (labels.length !== 4) return undefined;
    const text = labels.reverse().join(".");
    const ip = tryParseIp(text);
    return ip && formatIp(ip) === text ? text : undefined;
  }
  if (name.endsWith(".ip6.arpa")) {
    const labels = name.slice(0, -".ip6.arpa".length).split(".");
    if (labels.length !== 32 || !labels.every((l) => HEX.test(l))) return undefined;
    labels.reverse();
    const groups: string[] = [];
    for (let i = 0; i < 32; i += 4) groups.push(labels.slice(i, i + 4).join(""));
    const ip = tryParseIp(groups.join(":"));
    return ip ? formatIp(ip) : undefined;
  }
  return undefined;
}

/** The reverse name of a canonical address, e.g. `1.0.96.10.in-addr.arpa`. */
export function reverseName(ip: string): string {
  const parsed = tryParseIp(ip);
  if (!parsed) throw new Error(`not an IP address: ${ip}`);
  if (parsed.family === 4) return `${ip.split(".").reverse().join(".")}.in-addr.arpa`;
  const hex = parsed.value.toString(16).padStart(32, "0");
  return `${[...hex].reverse().join(".")}.ip6.arpa`;
}

export function isIpv6(ip: string): boolean {
  return ip.includes(":");
}
