/** podnet.dev/v1alpha1 kinds: Cluster (address ranges, fabric, DNS) and ExternalHost; and Namespace. */

import {
  type Cidr,
  cidrSize,
  containsIp,
  familyName,
  formatCidr,
  formatIp,
  hostBits,
  type IpAddress,
  nthAddress,
  parseCidr,
  parseIp,
} from "../ipam/cidr.js";
import type { Field, ObjCtx } from "./context.js";
import { CLUSTER_DEFAULTS, DNS_SERVICE_ADDRESS_INDEX, IPV6_DEFAULTS, VXLAN_OVERHEAD } from "./defaults.js";
import type { ReadMeta } from "./meta.js";
import { clusterScopedMeta } from "./meta.js";
import { segments } from "./path.js";
import { readPort, readProtocol } from "./pod.js";
import { readCidr, readIp } from "./service.js";
import type {
  Cluster,
  DnsForwardTls,
  DnsForwardZone,
  DnsTlsSpec,
  ExternalHost,
  ExternalHostPort,
  FabricMode,
  IpFamily,
  Namespace,
  PodRecordsMode,
} from "./types.js";
import { cidrErrorMessage, dns1123Subdomain } from "./validate.js";

const SPEC_FIELDS = [
  "nodeCIDR",
  "podCIDR",
  "podCIDRs",
  "serviceCIDR",
  "serviceCIDRs",
  "externalCIDR",
  "loadBalancerCIDRs",
  "nodeCIDRMaskSize",
  "clusterDomain",
  "nodes",
  "fabric",
  "dns",
];
const FABRIC_FIELDS = ["mode", "vni", "port", "mtu", "advertiseToRouter", "masquerade"];
const DNS_FIELDS = ["serviceIP", "ttl", "podRecords", "forward", "upstream", "tls"];
const MAX_VNI = 16777215;
const MIN_MTU = 1280;
const MAX_MTU = 9000;
const IPV4_MIN_MTU = 576;
const MAX_NODES = 5000;
const MAX_TTL = 3600;

/** Cluster reading results the loader needs for checks that depend on other objects. */
export interface ClusterInfo {
  cluster: Cluster;
  podCidrs: Cidr[];
  nodeCidr?: Cidr;
  nodesGiven: boolean;
}

const cidrDefault = (text: string): Cidr => parseCidr(text);

/**
 * The cluster DNS address (the DNS_SERVICE_ADDRESS_INDEX-th of the service CIDR), or undefined when
 * the CIDR does not hold it and at least one address after it.
 */
function dnsAddressOf(svc: Cidr): string | undefined {
  if (cidrSize(svc) <= BigInt(DNS_SERVICE_ADDRESS_INDEX + 1)) return undefined;
  return formatIp(nthAddress(svc, DNS_SERVICE_ADDRESS_INDEX));
}

/** A CIDR list with a singular shorthand (`podCIDR` / `podCIDRs`): at most one per family, IPv4 first. */
function readCidrList(
  spec: Field,
  singular: string,
  plural: string,
): { cidrs: Cidr[]; given: boolean; field: Field } {
  const oneF = spec.get(singular);
  const manyF = spec.get(plural);
  if (oneF.set && manyF.set) {
    oneF.error(
      `give either spec.${singular} or spec.${plural}, not both`,
      `move ${singular} into the ${plural} list`,
    );
  }
  if (oneF.set && !manyF.set) {
    const c = readCidr(oneF);
    return { cidrs: c ? [c] : [], given: true, field: oneF };
  }
  if (!manyF.set) return { cidrs: [], given: false, field: manyF };
  const items = manyF.list();
  const out: Cidr[] = [];
  for (const f of items) {
    const c = readCidr(f);
    if (!c) continue;
    if (out.some((x) => x.family === c.family)) {
      f.error(
        `invalid value ${JSON.stringify(formatCidr(c))}: may specify no more than one CIDR for each IP family`,
        "give one IPv4 and/or one IPv6 CIDR",
      );
      continue;
    }
    out.push(c);
  }
  if (Array.isArray(manyF.v) && items.length === 0)
    manyF.required("Required value: must have at least one CIDR");
  if (items.length > 2) manyF.error(`must have at most 2 items (one per IP family), found ${items.length}`);
  if (out.length === 2 && out[0]?.family === 6 && out[1]) {
    manyF.error(
      "dual-stack ranges must list the IPv4 CIDR first (podnet's primary family is IPv4)",
      `write [${formatCidr(out[1])}, ${formatCidr(out[0])}]`,
    );
    out.reverse();
  }
  return { cidrs: out, given: true, field: manyF };
}

function familiesOf(cidrs: Cidr[]): IpFamily[] {
  return cidrs.map((c) => familyName(c.family));
}

/** `ip`, `ip:port` or `[ipv6]:port`, as written in DNS server lists. */
export function checkServer(s: string): string | undefined {
  let host = s;
  let port: string | undefined;
  const bracket = /^\[([^\]]+)\]:(\d+)$/.exec(s);
  if (bracket) {
    host = bracket[1] as string;
    port = bracket[2];
  } else if ((s.match(/:/g) ?? []).length === 1) {
    [host, port] = s.split(":") as [string, string];
  }
  let ip: IpAddress;
  try {
    ip = parseIp(host);
  } catch (e) {
    return `must be an IP address, ip:port or [ipv6]:port: ${cidrErrorMessage(e)}`;
  }
  if (bracket && ip.family !== 6) return "only IPv6 addresses are written in brackets";
  if (port !== undefined && !/^\d+$/.test(port)) return `invalid port ${JSON.stringify(port)}`;
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535))
    return `invalid port ${port}: must be between 1 and 65535, inclusive`;
  return undefined;
}

function readServers(f: Field): string[] {
  const out: string[] = [];
  for (const sf of f.list()) {
    const s = sf.str();
    if (s === undefined) continue;
    const err = checkServer(s);
    if (err)
      sf.error(
        `invalid server ${JSON.stringify(s)}: ${err}`,
        "write e.g. 10.96.0.10, 10.96.0.10:53 or [fd00::a]:53",
      );
    else out.push(s);
  }
  return out;
}

/** `spec.dns.forward[].cluster`: a Cluster name, not this cluster's own. */
function readClusterRef(f: Field, self: string | undefined): string | undefined {
  const name = f.str();
  if (name === undefined) return undefined;
  const errs = dns1123Subdomain(name);
  if (errs.length > 0) {
    f.error(`invalid cluster name ${JSON.stringify(name)}: ${errs.join("; ")}`);
    return undefined;
  }
  if (name === self) {
    f.error(
      `cluster ${name} cannot forward a zone to its own DNS (it answers its own zones already)`,
      "name another cluster of the lab, or remove this forward entry",
    );
    return undefined;
  }
  return name;
}

/** `spec.dns.forward[].tls`: DNS over TLS to the upstream (`{}` = defaults). */
function readForwardTls(f: Field, toCluster: boolean): DnsForwardTls | undefined {
  const m = f.map();
  if (!m.set) return undefined;
  m.only(["serverName", "ca"]);
  const tls: DnsForwardTls = {};
  const nameF = m.get("serverName");
  const serverName = nameF.set ? readDomain(nameF, "server name") : undefined;
  if (serverName !== undefined) tls.serverName = serverName;
  else if (!nameF.set && !toCluster)
    nameF.required(
      "Required value: the name the servers' certificate carries",
      "write tls: {serverName: dns.example.org} (with cluster: NAME the lab knows the name)",
    );
  const caF = m.get("ca");
  const ca = caF.str();
  if (ca !== undefined) {
    if (!ca.startsWith("/"))
      caF.error(`invalid CA path ${JSON.stringify(ca)}: must be absolute`, "write e.g. /etc/podnet/ca.pem");
    else tls.ca = ca;
  } else if (!caF.set && !toCluster)
    caF.required(
      "Required value: the CA bundle that signed the servers' certificate",
      "write tls: {ca: /path/to/ca.pem} (with cluster: NAME the lab CA is used)",
    );
  return tls;
}

function readDomain(f: Field, what: string): string | undefined {
  const s = f.str();
  if (s === undefined) return undefined;
  const trimmed = s.endsWith(".") ? s.slice(0, -1) : s;
  const errs = dns1123Subdomain(trimmed);
  if (errs.length > 0) {
    f.error(`invalid ${what} ${JSON.stringify(s)}: ${errs.join("; ")}`);
    return undefined;
  }
  return trimmed;
}

export function readCluster(o: ObjCtx, meta: ReadMeta): ClusterInfo {
  const d = CLUSTER_DEFAULTS;
  const spec = o.root.get("spec").map();
  spec.only(SPEC_FIELDS);

  const nodeF = spec.get("nodeCIDR");
  const nodeCidr = nodeF.set ? readCidr(nodeF) : cidrDefault(d.nodeCIDR);

  const pods = readCidrList(spec, "podCIDR", "podCIDRs");
  const svcs = readCidrList(spec, "serviceCIDR", "serviceCIDRs");
  const defaultFor = (fam: IpFamily, kind: "pod" | "service"): Cidr =>
    cidrDefault(
      fam === "IPv4"
        ? kind === "pod"
          ? (d.podCIDRs[0] as string)
          : (d.serviceCIDRs[0] as string)
        : kind === "pod"
          ? IPV6_DEFAULTS.podCIDR
          : IPV6_DEFAULTS.serviceCIDR,
    );
  let podCidrs = pods.cidrs;
  let svcCidrs = svcs.cidrs;
  if (!pods.given)
    podCidrs = svcs.given
      ? familiesOf(svcCidrs).map((f) => defaultFor(f, "pod"))
      : d.podCIDRs.map(cidrDefault);
  if (!svcs.given)
    svcCidrs = pods.given
      ? familiesOf(podCidrs).map((f) => defaultFor(f, "service"))
      : d.serviceCIDRs.map(cidrDefault);
  if (pods.given && svcs.given && podCidrs.length > 0 && svcCidrs.length > 0) {
    const pf = familiesOf(podCidrs).join(", ");
    const sf = familiesOf(svcCidrs).join(", ");
    if (pf !== sf) {
      svcs.field.error(
        `service CIDR families (${sf}) must match the pod CIDR families (${pf})`,
        "give a service CIDR for each family that has a pod CIDR, and no other",
      );
    }
  }
  svcCidrs.forEach((c) => {
    if (hostBits(c.family) - c.prefix > 20) {
      const min = hostBits(c.family) - 20;
      svcs.field.error(
        `service CIDR ${formatCidr(c)} is too large: the prefix length must be >= ${min} for ${familyName(c.family)} (at most 2^20 addresses, as kube-apiserver requires)`,
        `use e.g. ${c.family === 4 ? "10.96.0.0/12" : "fd00:10:96::/112"}`,
      );
    }
  });

  const extF = spec.get("externalCIDR");
  const externalCidr = extF.set ? readCidr(extF) : cidrDefault(d.externalCIDR);
  const lbF = spec.get("loadBalancerCIDRs");
  let lbCidrs: string[] = [...d.loadBalancerCIDRs];
  if (lbF.set) {
    lbCidrs = [];
    for (const f of lbF.list()) {
      const c = readCidr(f);
      if (c) lbCidrs.push(formatCidr(c));
    }
  }

  // nodeCIDRMaskSize: a number (IPv4) or {ipv4, ipv6}.
  const maskF = spec.get("nodeCIDRMaskSize");
  const mask = { ...d.nodeCIDRMaskSize };
  const maskFields: Record<IpFamily, Field> = { IPv4: maskF, IPv6: maskF };
  if (typeof maskF.v === "number") {
    const n = maskF.int();
    if (n !== undefined) mask.ipv4 = n;
  } else if (maskF.set) {
    const mm = maskF.map();
    mm.only(["ipv4", "ipv6"]);
    const v4 = mm.get("ipv4");
    const v6 = mm.get("ipv6");
    maskFields.IPv4 = v4;
    maskFields.IPv6 = v6;
    mask.ipv4 = v4.int() ?? mask.ipv4;
    mask.ipv6 = v6.int() ?? mask.ipv6;
  }
  for (const c of podCidrs) {
    const family = familyName(c.family);
    const size = c.family === 4 ? mask.ipv4 : mask.ipv6;
    const max = hostBits(c.family) - 2;
    const f = maskFields[family];
    if (size < c.prefix) {
      f.error(
        `node mask size /${size} is shorter than the pod CIDR ${formatCidr(c)}: each node's block must fit inside it`,
        `use a mask size between ${c.prefix} and ${Math.min(c.prefix + 16, max)}`,
      );
    } else if (size - c.prefix > 16) {
      f.error(
        `node mask size /${size} is more than 16 bits longer than the pod CIDR ${formatCidr(c)} (kube-controller-manager's limit)`,
        `use a mask size between ${c.prefix} and ${c.prefix + 16}`,
      );
    } else if (size > max) {
      f.error(
        `node mask size /${size} leaves no addresses for pods (${family} blocks must be /${max} or larger)`,
      );
    }
  }

  const domainF = spec.get("clusterDomain");
  let clusterDomain = d.clusterDomain;
  if (domainF.set) {
    const s = domainF.str();
    if (s?.endsWith("."))
      domainF.error(
        `invalid cluster domain ${JSON.stringify(s)}: must not end with '.'`,
        `write ${s.slice(0, -1)}`,
      );
    else clusterDomain = readDomain(domainF, "cluster domain") ?? clusterDomain;
  }

  const nodesF = spec.get("nodes");
  let nodeCount = nodesF.int() ?? d.nodeCount;
  if (nodeCount < 1 || nodeCount > MAX_NODES) {
    nodesF.error(`invalid value ${nodeCount}: must be between 1 and ${MAX_NODES}, inclusive`);
    nodeCount = d.nodeCount;
  }

  // Fabric.
  const fab = spec.get("fabric").map();
  fab.only(FABRIC_FIELDS);
  const fabric = { ...d.fabric };
  fabric.mode = fab.get("mode").oneOf<FabricMode>(["routed", "vxlan"]) ?? fabric.mode;
  const vniF = fab.get("vni");
  const vni = vniF.int();
  if (vni !== undefined) {
    if (vni < 1 || vni > MAX_VNI)
      vniF.error(`invalid VNI ${vni}: must be between 1 and ${MAX_VNI}, inclusive`);
    else fabric.vni = vni;
  }
  const portF = fab.get("port");
  fabric.port = readPort(portF, "VXLAN port") ?? fabric.port;
  const mtuF = fab.get("mtu");
  const mtu = mtuF.int();
  if (mtu !== undefined) {
    if (mtu < MIN_MTU || mtu > MAX_MTU)
      mtuF.error(`invalid MTU ${mtu}: must be between ${MIN_MTU} and ${MAX_MTU}, inclusive`);
    else fabric.mtu = mtu;
  }
  fabric.advertiseToRouter = fab.get("advertiseToRouter").bool() ?? fabric.advertiseToRouter;
  fabric.masquerade = fab.get("masquerade").bool() ?? fabric.masquerade;
  const podMtu = fabric.mode === "vxlan" ? fabric.mtu - VXLAN_OVERHEAD : fabric.mtu;
  const mtuAt = mtuF.set ? mtuF : fab.get("mode");
  if (fabric.mode === "vxlan" && podCidrs.some((c) => c.family === 4) && podMtu < IPV4_MIN_MTU) {
    mtuAt.error(
      `pod MTU ${podMtu} (underlay ${fabric.mtu} - ${VXLAN_OVERHEAD} VXLAN overhead) is below ${IPV4_MIN_MTU}, the IPv4 minimum`,
      `raise spec.fabric.mtu to at least ${IPV4_MIN_MTU + VXLAN_OVERHEAD}`,
    );
  }
  if (podCidrs.some((c) => c.family === 6) && podMtu < MIN_MTU) {
    mtuAt.error(
      `pod MTU ${podMtu}${fabric.mode === "vxlan" ? ` (underlay ${fabric.mtu} - ${VXLAN_OVERHEAD} VXLAN overhead)` : ""} is below ${MIN_MTU}, the IPv6 minimum`,
      `raise spec.fabric.mtu to at least ${MIN_MTU + (fabric.mode === "vxlan" ? VXLAN_OVERHEAD : 0)}`,
    );
  }
  if (fabric.mode === "vxlan" && fabric.advertiseToRouter) {
    fab
      .get("advertiseToRouter")
      .warning(
        "has no effect in vxlan mode: pods are not addressable from outside the cluster",
        "remove it, or use mode: routed",
      );
  }

  // DNS.
  const dnsF = spec.get("dns").map();
  dnsF.only(DNS_FIELDS);
  const dns: Cluster["dns"] = { ...d.dns, forward: [], upstream: [] };
  const sipF = dnsF.get("serviceIP");
  const sip = readIp(sipF);
  if (sip) {
    if (svcCidrs.length > 0 && !svcCidrs.some((c) => containsIp(c, sip))) {
      sipF.error(
        `${sip.text} is outside the service CIDRs (${svcCidrs.map(formatCidr).join(", ")})`,
        "the cluster DNS Service's ClusterIP must be inside a service CIDR",
      );
    }
    dns.serviceIP = sip.text;
  } else if (svcCidrs[0] && !sipF.set) {
    const def = dnsAddressOf(svcCidrs[0]);
    if (def === undefined) {
      svcs.field.error(
        `service CIDR ${formatCidr(svcCidrs[0])} is too small to hold the cluster DNS address (its ${DNS_SERVICE_ADDRESS_INDEX}th address)`,
        "use a larger service CIDR or set spec.dns.serviceIP",
      );
    } else dns.serviceIP = def;
  }
  const ttlF = dnsF.get("ttl");
  const ttl = ttlF.int();
  if (ttl !== undefined) {
    if (ttl < 0 || ttl > MAX_TTL)
      ttlF.error(`invalid TTL ${ttl}: must be between 0 and ${MAX_TTL}, inclusive`);
    else dns.ttl = ttl;
  }
  dns.podRecords =
    dnsF.get("podRecords").oneOf<PodRecordsMode>(["disabled", "insecure", "verified"]) ?? dns.podRecords;
  const zones = new Set<string>();
  for (const zf of dnsF.get("forward").list()) {
    const zm = zf.map();
    if (!zm.set) continue;
    zm.only(["zone", "servers", "cluster", "tls"]);
    const zoneF = zm.get("zone");
    const zone = readDomain(zoneF, "zone");
    if (!zoneF.set) zoneF.required();
    const serversF = zm.get("servers");
    const servers = readServers(serversF);
    // Exactly one of servers and cluster (another Cluster's DNS; whether it exists is checked in
    // src/plan/dns-checks.ts, which sees every cluster).
    const clusterF = zm.get("cluster");
    const target = clusterF.set ? readClusterRef(clusterF, meta.name) : undefined;
    const serversGiven = serversF.set && !(Array.isArray(serversF.v) && serversF.v.length === 0);
    if (clusterF.set && serversF.set) {
      clusterF.error(
        "give either servers or cluster, not both",
        "cluster: NAME forwards to that cluster's DNS; servers lists addresses of any DNS server",
      );
    } else if (!clusterF.set && !serversGiven) {
      serversF.required(
        "Required value: at least one server, or cluster",
        "list the DNS servers of the zone, e.g. [10.112.0.10], or name another cluster of the lab: cluster: c2",
      );
    }
    const tls = readForwardTls(zm.get("tls"), clusterF.set);
    if (zone !== undefined) {
      if (zones.has(zone)) zoneF.error(`Duplicate value: ${JSON.stringify(zone)}`);
      zones.add(zone);
      const entry: DnsForwardZone = { zone, servers, source: zf.o.source(segments(zf.path)) };
      if (target !== undefined) entry.cluster = target;
      if (tls) entry.tls = tls;
      dns.forward.push(entry);
    }
  }
  dns.upstream = readServers(dnsF.get("upstream"));
  const tlsF = dnsF.get("tls").map();
  if (tlsF.set) {
    tlsF.only(["clientAuth"]);
    const clientAuth = tlsF.get("clientAuth").oneOf<DnsTlsSpec["clientAuth"]>(["none", "require"]);
    dns.tls = { clientAuth: clientAuth ?? "none" };
  }

  const cluster: Cluster = {
    kind: "Cluster",
    meta: {
      name: meta.name ?? "",
      cluster: meta.name ?? "",
      labels: meta.labels,
      annotations: meta.annotations,
      source: o.location,
    },
    nodeCIDR: nodeCidr ? formatCidr(nodeCidr) : d.nodeCIDR,
    podCIDRs: podCidrs.map(formatCidr),
    serviceCIDRs: svcCidrs.map(formatCidr),
    externalCIDR: externalCidr ? formatCidr(externalCidr) : d.externalCIDR,
    loadBalancerCIDRs: lbCidrs,
    nodeCIDRMaskSize: mask,
    clusterDomain,
    fabric,
    dns,
    nodeCount,
    implicit: false,
  };
  const info: ClusterInfo = { cluster, podCidrs, nodesGiven: nodesF.set };
  if (nodeCidr) info.nodeCidr = nodeCidr;
  return info;
}

/** The implicit cluster used when no Cluster object is declared. */
export function defaultCluster(name: string): ClusterInfo {
  const d = CLUSTER_DEFAULTS;
  const svc = cidrDefault(d.serviceCIDRs[0] as string);
  const cluster: Cluster = {
    kind: "Cluster",
    meta: { name, cluster: name, labels: {}, annotations: {} },
    ...structuredClone(d),
    implicit: true,
  };
  const dnsIp = dnsAddressOf(svc);
  if (cluster.dns.serviceIP === undefined && dnsIp) cluster.dns.serviceIP = dnsIp;
  return {
    cluster,
    podCidrs: d.podCIDRs.map(cidrDefault),
    nodeCidr: cidrDefault(d.nodeCIDR),
    nodesGiven: false,
  };
}

export function readExternalHost(o: ObjCtx, meta: ReadMeta): ExternalHost {
  const spec = o.root.get("spec").map();
  spec.only(["address", "ports"]);
  const host: ExternalHost = {
    kind: "ExternalHost",
    meta: clusterScopedMeta(meta, o.location),
    ports: [],
  };
  const ip = readIp(spec.get("address"));
  if (ip) host.address = ip.text;
  const seen = new Set<string>();
  for (const pf of spec.get("ports").list()) {
    const pm = pf.map();
    if (!pm.set) continue;
    pm.only(["port", "protocol"]);
    const portF = pm.get("port");
    const port = readPort(portF);
    if (!portF.set) portF.required();
    const protocol = readProtocol(pm.get("protocol"));
    if (port === undefined) continue;
    const key = `${port}/${protocol}`;
    if (seen.has(key)) pf.error(`Duplicate value: port ${key}`);
    seen.add(key);
    const p: ExternalHostPort = { port, protocol };
    host.ports.push(p);
  }
  return host;
}

export function readNamespace(o: ObjCtx, meta: ReadMeta): Namespace {
  return {
    kind: "Namespace",
    meta: clusterScopedMeta(meta, o.location),
    implicit: false,
  };
}
