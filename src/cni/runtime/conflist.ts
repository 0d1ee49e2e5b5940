/**
 * Loading network configurations: a `.conflist` (a network configuration list) or a single plugin's
 * `.conf`, which becomes a one-plugin list as libcni does. Every problem is reported at once, each with
 * file, line, field and a fix (`ConfigError`, CNI code 7).
 */
import { readFileSync } from "node:fs";
import type { Diagnostic } from "../../api/diagnostics.js";
import type { NetworkConfigList } from "../spec.js";
import { ConfigError } from "./errors.js";
import { jsonValueOffsets, lineOf } from "./json-positions.js";

/** A network (list) name: what libcni accepts, and safe in cache file names. */
export const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const SEMVER = /^\d+\.\d+\.\d+$/;

/** Reads and validates a .conflist or .conf file. */
export function loadConfList(file: string): NetworkConfigList {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError(file, [
      {
        severity: "error",
        code: "cni-config-unreadable",
        message: `cannot read the network configuration: ${(error as Error).message}`,
        hint: "pass the path of a .conflist or .conf file",
        source: { file, line: 1 },
      },
    ]);
  }
  return parseConfList(text, file);
}

/** Parses and validates the text of a .conflist or .conf. `file` names it in errors. */
export function parseConfList(text: string, file = "<inline>"): NetworkConfigList {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const offset = jsonErrorOffset(text, (error as Error).message);
    const line = lineOf(text, offset);
    const column = offset - text.lastIndexOf("\n", offset - 1);
    const what =
      offset >= text.length ? "unexpected end of input" : `unexpected ${JSON.stringify(text[offset])}`;
    throw new ConfigError(file, [
      {
        severity: "error",
        code: "cni-config-json",
        message: `not valid JSON: ${what} at line ${line}, column ${column}`,
        hint: "network configurations are JSON (no comments, no trailing commas)",
        source: { file, line },
      },
    ]);
  }
  const offsets = jsonValueOffsets(text);
  return validateConfList(value, file, (path) => {
    // The nearest enclosing value that exists (a missing field is reported on its object).
    for (let p = path; ; p = parentPath(p)) {
      const offset = offsets.get(p);
      if (offset !== undefined) return lineOf(text, offset);
      if (p === "") return 1;
    }
  });
}

/** Where JSON.parse failed: V8 names a position for some errors only; otherwise the shortest prefix that
 * fails for a reason other than ending early ends at the offending character. */
function jsonErrorOffset(text: string, message: string): number {
  const at = /position (\d+)/.exec(message);
  if (at?.[1] !== undefined) return Number(at[1]);
  const failsEarly = (n: number): boolean => {
    try {
      JSON.parse(text.slice(0, n));
      return false;
    } catch (e) {
      // Errors at the very end of the prefix only mean it stops early.
      const m = (e as Error).message;
      if (/Unexpected end/.test(m)) return false;
      const p = /position (\d+)/.exec(m);
      return !(p && Number(p[1]) >= n);
    }
  };
  let lo = 1;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (failsEarly(mid)) hi = mid;
    else lo = mid + 1;
  }
  return Math.max(0, lo - 1);
}

function parentPath(path: string): string {
  const cut = Math.max(path.lastIndexOf("."), path.lastIndexOf("["));
  return cut <= 0 ? "" : path.slice(0, cut);
}

/**
 * Validates a configuration already parsed (from a file, or built in code) and returns it as a
 * `NetworkConfigList` (a plain .conf becomes a one-plugin list). `lineOfPath` locates fields for errors.
 */
export function validateConfList(
  value: unknown,
  file = "<inline>",
  lineOfPath?: (path: string) => number,
): NetworkConfigList {
  const diagnostics: Diagnostic[] = [];
  const report = (path: string, message: string, hint: string, code = "cni-config-invalid") =>
    diagnostics.push({
      severity: "error",
      code,
      message,
      hint,
      path: path || undefined,
      source: { file, line: lineOfPath?.(path) ?? 1 },
    });

  if (!isObject(value)) {
    report(
      "",
      `a network configuration must be a JSON object, got ${describe(value)}`,
      'write {"cniVersion": "1.0.0", "name": "mynet", "plugins": [{"type": "bridge", ...}]}',
    );
    throw new ConfigError(file, diagnostics);
  }

  const isList = "plugins" in value || !("type" in value);
  const name = checkName(value, report);
  const versions = checkVersions(value, report);
  let plugins: NetworkConfigList["plugins"] = [];
  let disableCheck: boolean | undefined;
  let disableGC: boolean | undefined;

  if (isList) {
    disableCheck = checkBool(value, "disableCheck", report);
    disableGC = checkBool(value, "disableGC", report);
    const raw = value.plugins;
    if (raw === undefined)
      report(
        "plugins",
        'missing field "plugins" (and no "type": this is neither a .conflist nor a .conf)',
        'add "plugins": [{"type": "bridge", ...}] — or, for a single plugin, a top-level "type"',
      );
    else if (!Array.isArray(raw) || raw.length === 0)
      report(
        "plugins",
        `"plugins" must be a non-empty list of plugin configurations, got ${describe(raw)}`,
        'list the chain in order, e.g. "plugins": [{"type": "bridge"}, {"type": "portmap"}]',
      );
    else {
      plugins = raw.map((p, i) => checkPlugin(p, `plugins[${i}]`, report));
    }
  } else {
    // A single plugin's .conf: the whole object is the plugin.
    plugins = [checkPlugin(value, "", report)];
  }

  if (diagnostics.length > 0) throw new ConfigError(file, diagnostics);
  const list: NetworkConfigList = { cniVersion: versions.cniVersion ?? "", name, plugins };
  if (versions.cniVersions) list.cniVersions = versions.cniVersions;
  if (disableCheck !== undefined) list.disableCheck = disableCheck;
  if (disableGC !== undefined) list.disableGC = disableGC;
  return list;
}

type Report = (path: string, message: string, hint: string, code?: string) => void;

function checkName(obj: Record<string, unknown>, report: Report): string {
  const name = obj.name;
  if (name === undefined) {
    report("name", 'missing field "name" (the network name)', 'add "name": "mynet"');
    return "";
  }
  if (typeof name !== "string" || !NETWORK_NAME.test(name)) {
    report(
      "name",
      `"name" must be a string of letters, digits, '_', '.' or '-' starting with a letter or digit, got ${describe(name)}`,
      'use a name such as "podnet" or "pod-net.v1"',
    );
    return "";
  }
  return name;
}

function checkVersions(
  obj: Record<string, unknown>,
  report: Report,
): { cniVersion?: string; cniVersions?: string[] } {
  const out: { cniVersion?: string; cniVersions?: string[] } = {};
  const v = obj.cniVersion;
  if (v !== undefined) {
    if (typeof v === "string" && SEMVER.test(v)) out.cniVersion = v;
    else
      report(
        "cniVersion",
        `"cniVersion" must be a version string like "1.0.0", got ${describe(v)}`,
        'write "cniVersion": "1.0.0"',
      );
  }
  const vs = obj.cniVersions;
  if (vs !== undefined) {
    if (!Array.isArray(vs))
      report(
        "cniVersions",
        `"cniVersions" must be a list of version strings, got ${describe(vs)}`,
        'write "cniVersions": ["1.0.0", "1.1.0"]',
      );
    else {
      const ok: string[] = [];
      vs.forEach((x, i) => {
        if (typeof x === "string" && SEMVER.test(x)) ok.push(x);
        else
          report(
            `cniVersions[${i}]`,
            `each entry of "cniVersions" must be a version string like "1.1.0", got ${describe(x)}`,
            'write "cniVersions": ["1.0.0", "1.1.0"]',
          );
      });
      if (ok.length === vs.length) out.cniVersions = ok;
    }
  }
  if (v === undefined && (vs === undefined || (Array.isArray(vs) && vs.length === 0)))
    report(
      "cniVersion",
      'missing field "cniVersion" (and no "cniVersions"): the spec version of this configuration',
      'add "cniVersion": "1.0.0" (or "cniVersions": ["1.0.0", "1.1.0"])',
    );
  return out;
}

function checkBool(obj: Record<string, unknown>, key: string, report: Report): boolean | undefined {
  const v = obj[key];
  if (v === undefined) return undefined;
  if (typeof v === "boolean") return v;
  // libcni also accepts the strings "true" and "false".
  if (typeof v === "string" && /^(true|false)$/i.test(v)) return v.toLowerCase() === "true";
  report(key, `"${key}" must be true or false, got ${describe(v)}`, `write "${key}": true`);
  return undefined;
}

function checkPlugin(p: unknown, path: string, report: Report): NetworkConfigList["plugins"][number] {
  const at = (field: string) => (path ? `${path}.${field}` : field);
  if (!isObject(p)) {
    report(
      path,
      `a plugin configuration must be an object, got ${describe(p)}`,
      'write {"type": "bridge", ...}',
    );
    return { type: "" };
  }
  const type = p.type;
  if (typeof type !== "string" || !isExecutableName(type))
    report(
      at("type"),
      type === undefined
        ? 'missing field "type" (the plugin executable to run)'
        : `"type" must name a plugin executable (no '/', not empty), got ${describe(type)}`,
      'set "type" to the file name of a plugin in the CNI bin directories, e.g. "bridge"',
    );
  const caps = p.capabilities;
  if (caps !== undefined) {
    if (!isObject(caps))
      report(
        at("capabilities"),
        `"capabilities" must be an object of booleans, got ${describe(caps)}`,
        'write "capabilities": {"portMappings": true}',
      );
    else
      for (const [k, b] of Object.entries(caps))
        if (typeof b !== "boolean")
          report(
            at(`capabilities.${k}`),
            `capability "${k}" must be true or false, got ${describe(b)}`,
            `write "${k}": true`,
          );
  }
  const ipam = p.ipam;
  if (ipam !== undefined) {
    if (!isObject(ipam))
      report(
        at("ipam"),
        `"ipam" must be an object, got ${describe(ipam)}`,
        'write "ipam": {"type": "host-local", ...}',
      );
    else if (typeof ipam.type !== "string" || !isExecutableName(ipam.type))
      report(
        at("ipam.type"),
        ipam.type === undefined
          ? 'missing field "ipam.type" (the IPAM plugin executable)'
          : `"ipam.type" must name an IPAM plugin executable, got ${describe(ipam.type)}`,
        'set "ipam": {"type": "host-local", ...}',
      );
  }
  for (const key of ["args", "dns"] as const) {
    const v = p[key];
    if (v !== undefined && !isObject(v))
      report(at(key), `"${key}" must be an object, got ${describe(v)}`, `write "${key}": {...} or remove it`);
  }
  return { ...p, type: typeof type === "string" ? type : "" };
}

function isExecutableName(s: string): boolean {
  return s.length > 0 && s !== "." && s !== ".." && !/[/\\\s]/.test(s);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "object") return "an object";
  return `${typeof v} ${String(v)}`;
}
