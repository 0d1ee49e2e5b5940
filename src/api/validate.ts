/**
 * Kubernetes' syntax rules for names, label keys and values, ports and protocols, with the API
 * server's wording (k8s.io/apimachinery/pkg/util/validation). Each function returns the list of
 * problems (empty when valid). IP and CIDR syntax is src/ipam/cidr.ts; only the API's extra rules
 * about addresses live here.
 */
import { CidrError, containsIp, type IpAddress, parseCidr } from "../ipam/cidr.js";
import type { Protocol } from "./types.js";

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export const DNS1123_LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc')";
export const DNS1123_SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')";
export const DNS1035_LABEL_MSG =
  "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name', or 'abc-123')";
const QUALIFIED_NAME_MSG =
  "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName', or 'my.name', or '123-abc')";
const LABEL_VALUE_MSG =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue', or 'my_value', or '12345')";

const maxLen = (n: number) => `must be no more than ${n} characters`;

export type NameRule = "dns1123Label" | "dns1123Subdomain" | "dns1035Label";

export function dns1123Label(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 63) errs.push(maxLen(63));
  if (!DNS1123_LABEL.test(v)) errs.push(DNS1123_LABEL_MSG);
  return errs;
}

export function dns1123Subdomain(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 253) errs.push(maxLen(253));
  if (!DNS1123_SUBDOMAIN.test(v)) errs.push(DNS1123_SUBDOMAIN_MSG);
  return errs;
}

export function dns1035Label(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 63) errs.push(maxLen(63));
  if (!DNS1035_LABEL.test(v)) errs.push(DNS1035_LABEL_MSG);
  return errs;
}

export function checkName(rule: NameRule, v: string): string[] {
  if (rule === "dns1123Label") return dns1123Label(v);
  if (rule === "dns1035Label") return dns1035Label(v);
  return dns1123Subdomain(v);
}

/** A plausible valid spelling of an invalid name, for hints. */
export function suggestName(rule: NameRule, v: string): string | undefined {
  let s = v.toLowerCase().replace(rule === "dns1123Subdomain" ? /[^a-z0-9.-]+/g : /[^a-z0-9-]+/g, "-");
  s = s.replace(/-+/g, "-").replace(/^[-.]+|[-.]+$/g, "");
  if (rule === "dns1123Subdomain") s = s.replace(/\.+/g, ".").replace(/-?\.-?/g, ".");
  if (rule === "dns1035Label") s = s.replace(/^[0-9-]+/, "");
  const limit = rule === "dns1123Subdomain" ? 253 : 63;
  s = s.slice(0, limit).replace(/[-.]+$/, "");
  return s !== "" && s !== v && checkName(rule, s).length === 0 ? s : undefined;
}

export function describeRule(rule: NameRule): string {
  if (rule === "dns1123Label") return "a lowercase RFC 1123 label (at most 63 characters)";
  if (rule === "dns1035Label") return "a DNS-1035 label (at most 63 characters, starting with a letter)";
  return "a lowercase RFC 1123 subdomain (at most 253 characters)";
}

/** Memoizes a validator for the few distinct keys and values that manifests repeat many times. */
function memo(fn: (v: string) => string[]): (v: string) => string[] {
  const cache = new Map<string, string[]>();
  return (v) => {
    let r = cache.get(v);
    if (r === undefined) {
      r = fn(v);
      if (cache.size > 50000) cache.clear();
      cache.set(v, r);
    }
    return r;
  };
}

/** Label and annotation keys: an optional DNS subdomain prefix and '/', then a name of at most 63 characters. */
export const qualifiedName = memo(qualifiedNameUncached);

function qualifiedNameUncached(v: string): string[] {
  const errs: string[] = [];
  const parts = v.split("/");
  let name = v;
  if (parts.length === 2) {
    const prefix = parts[0] as string;
    name = parts[1] as string;
    if (prefix.length === 0) errs.push("prefix part must be non-empty");
    else for (const m of dns1123Subdomain(prefix)) errs.push(`prefix part ${m}`);
  } else if (parts.length > 2) {
    return [
      `${QUALIFIED_NAME_MSG.replace("name part must", "a qualified name must")} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
    ];
  }
  if (name.length === 0) errs.push("name part must be non-empty");
  else {
    if (name.length > 63) errs.push(`name part ${maxLen(63)}`);
    if (!QUALIFIED_NAME.test(name)) errs.push(QUALIFIED_NAME_MSG);
  }
  return errs;
}

export const labelValue = memo((v: string): string[] => {
  const errs: string[] = [];
  if (v.length > 63) errs.push(maxLen(63));
  if (!LABEL_VALUE.test(v)) errs.push(LABEL_VALUE_MSG);
  return errs;
});

/** IANA_SVC_NAME (RFC 6335): named container ports and the ports that refer to them. */
export function ianaSvcName(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 15) errs.push(maxLen(15));
  if (!/^[-a-z0-9]+$/.test(v))
    errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
  if (v.includes("--")) errs.push("must not contain consecutive hyphens");
  if (!/[a-z]/.test(v)) errs.push("must contain at least one letter (a-z)");
  if (v.startsWith("-") || v.endsWith("-")) errs.push("must not begin or end with a hyphen");
  return errs;
}

export function portNumber(n: number): string | undefined {
  return n >= 1 && n <= 65535 ? undefined : "must be between 1 and 65535, inclusive";
}

export const PROTOCOLS: readonly Protocol[] = ["SCTP", "TCP", "UDP"];

export function supportedValues(values: readonly string[]): string {
  return `supported values: ${values.map((v) => `"${v}"`).join(", ")}`;
}

/** Levenshtein distance, for "did you mean" hints. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] as number;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j] as number;
      prev[j] = Math.min(tmp + 1, (prev[j - 1] as number) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length] as number;
}

/** The closest candidate (case-insensitive match first, then small edit distance). */
export function closest(value: string, candidates: readonly string[]): string | undefined {
  const lower = value.toLowerCase();
  const exact = candidates.find((c) => c.toLowerCase() === lower);
  if (exact) return exact;
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(value.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(lower, c.toLowerCase());
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best;
}

/** The message of a CidrError (it names the text and the fix); anything else is a bug and rethrown. */
export function cidrErrorMessage(e: unknown): string {
  if (e instanceof CidrError) return e.message;
  throw e;
}

const SPECIAL_RANGES = (
  [
    ["0.0.0.0/32", "may not be unspecified (0.0.0.0 or ::)"],
    ["::/128", "may not be unspecified (0.0.0.0 or ::)"],
    ["127.0.0.0/8", "may not be in the loopback range (127.0.0.0/8)"],
    ["169.254.0.0/16", "may not be in the link-local range (169.254.0.0/16)"],
    ["224.0.0.0/4", "may not be in the multicast range (224.0.0.0/4)"],
    ["::1/128", "may not be the loopback address (::1)"],
    ["fe80::/10", "may not be in the link-local range (fe80::/10)"],
    ["ff00::/8", "may not be in the multicast range (ff00::/8)"],
  ] as const
).map(([cidr, problem]) => ({ cidr: parseCidr(cidr), problem }));

/**
 * Rejects addresses that cannot be a service's external address: unspecified, loopback, link-local
 * and multicast (as Kubernetes' ValidateNonSpecialIP).
 */
export function specialIpProblem(ip: IpAddress): string | undefined {
  return SPECIAL_RANGES.find((r) => containsIp(r.cidr, ip))?.problem;
}
