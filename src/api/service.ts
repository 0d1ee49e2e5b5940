/** Service: type, cluster IPs and families, ports, selector, affinity, traffic policies. */
import { type Cidr, familyName, formatCidr, type IpAddress, parseCidr, parseIp } from "../ipam/cidr.js";
import type { Field, ObjCtx } from "./context.js";
import { NODE_PORT_RANGE, SESSION_AFFINITY_DEFAULT_TIMEOUT } from "./defaults.js";
import type { ReadMeta } from "./meta.js";
import { namespacedMeta, readLabels } from "./meta.js";
import { checkPortName, readPort, readProtocol } from "./pod.js";
import type { IpFamily, Service, ServicePort, ServiceType } from "./types.js";
import { cidrErrorMessage, dns1123Label, dns1123Subdomain, specialIpProblem } from "./validate.js";

const TYPES: readonly ServiceType[] = ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];
const FAMILIES: readonly IpFamily[] = ["IPv4", "IPv6"];
const POLICIES = ["SingleStack", "PreferDualStack", "RequireDualStack"] as const;
const MAX_AFFINITY_TIMEOUT = 86400;

/** An IP address with its text as written in the manifest (which is what the state keeps). */
export type WrittenIp = IpAddress & { text: string };

/** Reads an IP address field; reports syntax errors. */
export function readIp(f: Field): WrittenIp | undefined {
  const s = f.str();
  if (s === undefined || s === "") return undefined;
  try {
    return { ...parseIp(s), text: s };
  } catch (e) {
    f.error(cidrErrorMessage(e));
    return undefined;
  }
}

/** Reads a CIDR field (strict: no host bits); reports syntax errors. */
export function readCidr(f: Field): Cidr | undefined {
  const s = f.str();
  if (s === undefined) return undefined;
  try {
    return parseCidr(s);
  } catch (e) {
    const message = cidrErrorMessage(e);
    let hint: string | undefined;
    try {
      // Only host bits can make the strict parse fail where the loose one succeeds.
      hint = `write ${formatCidr(parseCidr(s, { strict: false }))}`;
    } catch {}
    f.error(message, hint);
    return undefined;
  }
}

/** A Service with Kubernetes' defaults for everything a manifest may leave out. */
export function defaultService(meta: Service["meta"], type: Service["type"] = "ClusterIP"): Service {
  return {
    kind: "Service",
    meta,
    type,
    clusterIPs: [],
    ipFamilies: [],
    ipFamilyPolicy: "SingleStack",
    ports: [],
    sessionAffinity: "None",
    internalTrafficPolicy: "Cluster",
    loadBalancerIngress: [],
    loadBalancerSourceRanges: [],
    externalIPs: [],
    publishNotReadyAddresses: false,
  };
}

export function readService(o: ObjCtx, meta: ReadMeta): Service {
  const spec = o.root.get("spec").map();
  const type = spec.get("type").oneOf(TYPES) ?? "ClusterIP";
  const svc = defaultService(namespacedMeta(meta, o.location), type);
  const external = type === "NodePort" || type === "LoadBalancer";

  // Cluster IPs.
  const cipF = spec.get("clusterIP");
  const cipsF = spec.get("clusterIPs");
  const cip = cipF.str();
  const ipsFamilies: (IpFamily | undefined)[] = [];
  const readOneClusterIp = (f: Field, s: string | undefined): string | undefined => {
    if (s === undefined || s === "") return undefined;
    if (s === "None") return "None";
    try {
      parseIp(s);
    } catch (e) {
      f.error(
        cidrErrorMessage(e),
        'use an address in the service CIDR, "None" for a headless Service, or leave it unset',
      );
      return undefined;
    }
    return s;
  };
  const first = readOneClusterIp(cipF, cip);
  const cipItems = cipsF.list();
  const ips: string[] = [];
  cipItems.forEach((f, i) => {
    const s = f.str();
    const v = readOneClusterIp(f, s);
    if (v === undefined) return;
    if (v === "None" && cipItems.length > 1)
      f.error('invalid value "None": must be the only value when present');
    if (i === 0 && cip !== undefined && cip !== "" && s !== cip) {
      f.error(
        `invalid value ${JSON.stringify(s)}: must match \`clusterIP\` (${JSON.stringify(cip)})`,
        "give the same address in clusterIP and clusterIPs[0], or only one of them",
      );
    }
    ips.push(v);
    ipsFamilies.push(v === "None" ? undefined : familyName(parseIp(v).family));
  });
  if (cipItems.length > 2)
    cipsF.error(`must have at most 2 items (one per IP family), found ${cipItems.length}`);
  if (ipsFamilies.length === 2 && ipsFamilies[0] !== undefined && ipsFamilies[0] === ipsFamilies[1]) {
    cipsF.error(
      `may not have more than one address of the same IP family (${ipsFamilies[0]})`,
      "give one IPv4 and one IPv6 address for a dual-stack Service",
    );
  }
  if (first !== undefined) svc.clusterIP = first;
  else if (ips[0] !== undefined) svc.clusterIP = ips[0];
  svc.clusterIPs = ips.length > 0 ? ips : svc.clusterIP !== undefined ? [svc.clusterIP] : [];
  const headless = svc.clusterIP === "None";
  if (type === "ExternalName") {
    if (svc.clusterIP !== undefined)
      (cipF.set ? cipF : cipsF).error(
        "Forbidden: must not be set for ExternalName services",
        "remove clusterIP",
      );
  } else if (headless && type !== "ClusterIP") {
    (cipF.set ? cipF : cipsF).error(
      `invalid value "None": may not be set to 'None' for ${type} services`,
      "use type ClusterIP for a headless Service",
    );
  }

  // IP families.
  const famF = spec.get("ipFamilies");
  const famItems = famF.list();
  const families: IpFamily[] = [];
  for (const f of famItems) {
    const fam = f.oneOf(FAMILIES);
    if (fam === undefined) continue;
    if (families.includes(fam)) f.error(`Duplicate value: ${JSON.stringify(fam)}`);
    else families.push(fam);
  }
  if (famItems.length > 2) famF.error(`must have at most 2 items, found ${famItems.length}`);
  ipsFamilies.forEach((fam, i) => {
    const want = families[i];
    if (fam !== undefined && want !== undefined && fam !== want) {
      (cipItems[i] ?? cipF).error(
        `invalid value: expected an ${want} value as indicated by \`ipFamilies[${i}]\``,
      );
    }
  });
  if (families.length === 0)
    for (const fam of ipsFamilies) if (fam && !families.includes(fam)) families.push(fam);
  svc.ipFamilies = families;
  const polF = spec.get("ipFamilyPolicy");
  const policy = polF.oneOf(POLICIES);
  const multi = families.length > 1 || ipsFamilies.length > 1;
  if (policy === "SingleStack" && multi) {
    polF.error(
      "invalid value \"SingleStack\": must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families or cluster IPs are specified",
      "set ipFamilyPolicy: RequireDualStack",
    );
  }
  svc.ipFamilyPolicy = policy ?? (multi ? "RequireDualStack" : "SingleStack");
  if (type === "ExternalName") {
    if (famF.set) famF.error("Forbidden: may not be set for ExternalName services");
    if (polF.set) polF.error("Forbidden: may not be set for ExternalName services");
  }

  // Ports.
  const portsF = spec.get("ports");
  const portItems = portsF.list();
  if (
    portItems.length === 0 &&
    !headless &&
    type !== "ExternalName" &&
    !(portsF.set && !Array.isArray(portsF.v))
  ) {
    portsF.required(
      "Required value",
      "add at least one port (a headless Service, clusterIP: None, may have none)",
    );
  }
  const names = new Map<string, number>();
  const seen = new Map<string, number>();
  const nodePorts = new Map<string, number>();
  portItems.forEach((pf, i) => {
    const pm = pf.map();
    if (!pm.set) return;
    const nameF = pm.get("name");
    const name = nameF.str();
    if (name === undefined || name === "") {
      if (portItems.length > 1 && (name === "" || !nameF.set)) {
        nameF.required(
          "Required value: ports must be named when a Service has more than one port",
          "add a name, e.g. name: http",
        );
      }
    } else {
      const errs = dns1123Label(name);
      if (errs.length > 0) nameF.error(`invalid port name ${JSON.stringify(name)}: ${errs.join("; ")}`);
      const prev = names.get(name);
      if (prev !== undefined)
        nameF.error(
          `Duplicate value: ${JSON.stringify(name)} (also spec.ports[${prev}].name)`,
          "give each port a unique name",
        );
      else names.set(name, i);
    }
    const protocol = readProtocol(pm.get("protocol"));
    const portF = pm.get("port");
    const port = readPort(portF);
    if (!portF.set) portF.required();
    const sp: ServicePort = { protocol, port: port ?? 0, targetPort: port ?? 0 };
    if (name !== undefined && name !== "") sp.name = name;
    if (port !== undefined) {
      const key = `${port}/${protocol}`;
      const prev = seen.get(key);
      if (prev !== undefined) {
        pf.error(
          `Duplicate value: port ${key} is already defined by spec.ports[${prev}]`,
          "remove the duplicate port or change its port or protocol",
        );
      } else seen.set(key, i);
    }
    const tpF = pm.get("targetPort");
    const tp = tpF.intOrStr();
    if (typeof tp === "number" && tp !== 0) {
      if (readPort(tpF, "targetPort") !== undefined) sp.targetPort = tp;
    } else if (typeof tp === "string" && tp !== "") {
      if (/^\d+$/.test(tp)) {
        tpF.error(
          `invalid value ${JSON.stringify(tp)}: a named port must contain at least one letter (a-z)`,
          `write the number without quotes for a port number: ${tp}`,
        );
      } else if (checkPortName(tpF, tp)) sp.targetPort = tp;
    }
    const npF = pm.get("nodePort");
    const np = npF.int();
    if (np !== undefined && np !== 0) {
      if (!external) {
        npF.error(
          `Forbidden: may not be used when \`type\` is '${type}'`,
          "remove nodePort, or use type NodePort or LoadBalancer",
        );
      } else if (np < NODE_PORT_RANGE.min || np > NODE_PORT_RANGE.max) {
        npF.error(
          `invalid value ${np}: provided port is not in the valid range. The range of valid ports is ${NODE_PORT_RANGE.min}-${NODE_PORT_RANGE.max}`,
          "remove nodePort to have one allocated",
        );
      } else {
        const key = `${np}/${protocol}`;
        const prev = nodePorts.get(key);
        if (prev !== undefined)
          npF.error(`Duplicate value: nodePort ${np} is also used by spec.ports[${prev}]`);
        else nodePorts.set(key, i);
        sp.nodePort = np;
      }
    }
    if (port !== undefined) svc.ports.push(sp);
  });

  // Selector.
  const selF = spec.get("selector");
  if (selF.set) {
    svc.selector = readLabels(selF);
    if (Object.keys(svc.selector).length === 0 && type !== "ExternalName" && !Array.isArray(selF.v)) {
      selF.warning(
        "an empty selector selects every pod in the namespace",
        "remove the selector for a Service whose endpoints come from EndpointSlices",
      );
    }
  }

  // Session affinity.
  svc.sessionAffinity = spec.get("sessionAffinity").oneOf(["None", "ClientIP"] as const) ?? "None";
  const sacF = spec.get("sessionAffinityConfig").map();
  const toF = sacF.get("clientIP").map().get("timeoutSeconds");
  const timeout = toF.int();
  if (svc.sessionAffinity === "ClientIP") {
    if (timeout !== undefined && (timeout <= 0 || timeout > MAX_AFFINITY_TIMEOUT)) {
      toF.error(`invalid value ${timeout}: must be greater than 0 and less than ${MAX_AFFINITY_TIMEOUT}`);
    }
    svc.sessionAffinityTimeoutSeconds = timeout ?? SESSION_AFFINITY_DEFAULT_TIMEOUT;
  } else if (sacF.set) {
    sacF.error(
      "Forbidden: must not be set when `sessionAffinity` is None",
      "remove sessionAffinityConfig or set sessionAffinity: ClientIP",
    );
  }

  // Traffic policies.
  const etpF = spec.get("externalTrafficPolicy");
  const etp = etpF.oneOf(["Cluster", "Local"] as const);
  if (etpF.set && !external) {
    etpF.error(
      "Forbidden: may only be set when `type` is 'NodePort' or 'LoadBalancer'",
      "remove externalTrafficPolicy",
    );
  } else if (external) svc.externalTrafficPolicy = etp ?? "Cluster";
  svc.internalTrafficPolicy =
    spec.get("internalTrafficPolicy").oneOf(["Cluster", "Local"] as const) ?? "Cluster";

  // External addresses.
  const lbF = spec.get("loadBalancerIP");
  const lb = readIp(lbF);
  if (lb) {
    svc.loadBalancerIP = lb.text;
    if (type !== "LoadBalancer") lbF.warning("ignored unless `type` is 'LoadBalancer'");
  }
  const lbsrF = spec.get("loadBalancerSourceRanges");
  for (const f of lbsrF.list()) {
    const c = readCidr(f);
    if (c) svc.loadBalancerSourceRanges.push(formatCidr(c));
  }
  if (lbsrF.set && lbsrF.list().length > 0 && type !== "LoadBalancer") {
    lbsrF.error(
      "Forbidden: may only be used when `type` is 'LoadBalancer'",
      "remove loadBalancerSourceRanges or use type LoadBalancer",
    );
  }
  for (const f of spec.get("externalIPs").list()) {
    const ip = readIp(f);
    if (!ip) continue;
    const problem = specialIpProblem(ip);
    if (problem) f.error(`invalid value ${JSON.stringify(ip.text)}: ${problem}`);
    else svc.externalIPs.push(ip.text);
  }
  const enF = spec.get("externalName");
  const en = enF.str();
  if (type === "ExternalName") {
    if (en === undefined || en === "") {
      if (!enF.set || en === "")
        enF.required(
          "Required value: externalName is required for ExternalName services",
          "set externalName to a DNS name, e.g. db.example.com",
        );
    } else {
      const trimmed = en.endsWith(".") ? en.slice(0, -1) : en;
      const errs = dns1123Subdomain(trimmed);
      if (errs.length > 0) enF.error(`invalid value ${JSON.stringify(en)}: ${errs.join("; ")}`);
      svc.externalName = en;
    }
  } else if (en !== undefined && en !== "") {
    enF.warning(`ignored unless \`type\` is 'ExternalName'`, "remove externalName");
  }
  svc.publishNotReadyAddresses = spec.get("publishNotReadyAddresses").bool() ?? false;

  // Status: load-balancer ingress addresses.
  const ingress = o.root.get("status").map().get("loadBalancer").map().get("ingress").list();
  for (const f of ingress) {
    const ip = readIp(f.map().get("ip"));
    if (ip) svc.loadBalancerIngress.push(ip.text);
  }
  return svc;
}
