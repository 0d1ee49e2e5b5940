// What podnet's ADD programs, as `ip -batch` lines: one batch in the node namespace (bridge if missing,
// gateway addresses, the veth pair created with its peer directly in the pod namespace, master, hairpin,
// up) and one in the pod namespace (lo up, addresses, link up, routes). MAC addresses are chosen here
// (deterministic, locally administered), so nothing has to be read back. Pure: unit-tested without root.
import {
  type Cidr,
  type Family,
  formatCidr,
  formatIp,
  hostBits,
  type IpAddress,
  parseCidr,
  parseIp,
} from "../../ipam/cidr.js";
import { ipLine } from "../../linux/ip.js";
import { CniError, ErrorCode, type Result, type Route } from "../spec.js";

/** One address of the pod, from the IPAM result. */
export interface PodAddress {
  ip: IpAddress;
  /** The subnet (address with its prefix, host bits cleared). */
  subnet: Cidr;
  /** Gateway from IPAM, or the subnet's first address when IPAM gave none. */
  gateway: IpAddress;
}

export interface PodRoute {
  dst: Cidr;
  gw?: IpAddress;
}

export interface AttachPlan {
  bridge: string;
  /** Create the bridge with this MAC (undefined: it exists). */
  createBridgeMac?: string;
  /** Gateway addresses to put on the bridge (with the subnet's prefix). */
  bridgeAddresses: { ip: IpAddress; prefix: number }[];
  hostIf: string;
  hostMac: string;
  containerIf: string;
  containerMac: string;
  mtu: number;
  netns: string;
  hairpin: boolean;
  addresses: PodAddress[];
  routes: PodRoute[];
}

function hostOnlyCidr(ip: IpAddress, prefix: number): Cidr {
  const bits = hostBits(ip.family);
  const mask = ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - prefix)) - 1n);
  return { family: ip.family, network: ip.value & mask, prefix };
}

/** Reads the IPAM result's addresses ("10.1.0.5/24") with their gateways. Throws CniError(7). */
export function podAddresses(ipam: Result, ipamType: string): PodAddress[] {
  const ips = ipam.ips ?? [];
  if (ips.length === 0) {
    throw new CniError(
      ErrorCode.InvalidConfig,
      `IPAM plugin ${ipamType} returned no addresses; check the ipam section's ranges`,
    );
  }
  return ips.map((c, i) => {
    const slash = c.address.indexOf("/");
    let ip: IpAddress;
    let prefix: number;
    try {
      if (slash < 0) throw new Error("the prefix length is missing");
      ip = parseIp(c.address.slice(0, slash));
      prefix = Number(c.address.slice(slash + 1));
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > hostBits(ip.family))
        throw new Error("bad prefix length");
    } catch (e) {
      throw new CniError(
        ErrorCode.DecodeFailure,
        `IPAM plugin ${ipamType} returned ips[${i}].address "${c.address}", which is not an address with a prefix length (${(e as Error).message})`,
      );
    }
    const subnet = hostOnlyCidr(ip, prefix);
    const gateway = c.gateway ? parseIp(c.gateway) : { family: ip.family, value: subnet.network + 1n };
    return { ip, subnet, gateway };
  });
}

function defaultDst(family: Family): Cidr {
  return { family, network: 0n, prefix: 0 };
}

/**
 * The pod's routes: IPAM's routes (a route without `gw` goes via the gateway of its family, or on-link
 * when there is none) plus, with isDefaultGateway, a default route per family via the gateway unless IPAM
 * already lists one. Duplicates are dropped.
 */
export function podRoutes(
  addresses: readonly PodAddress[],
  ipamRoutes: readonly Route[],
  isDefaultGateway: boolean,
): PodRoute[] {
  const out: PodRoute[] = [];
  const seen = new Set<string>();
  const gatewayOf = (f: Family) => addresses.find((a) => a.ip.family === f)?.gateway;
  const push = (r: PodRoute) => {
    const key = formatCidr(r.dst);
    if (seen.has(key)) return;
    seen.add(key);
    out.push(r);
  };
  for (const r of ipamRoutes) {
    let dst: Cidr;
    try {
      dst = parseCidr(r.dst);
    } catch (e) {
      throw new CniError(ErrorCode.InvalidConfig, `route dst "${r.dst}": ${(e as Error).message}`);
    }
    const gw = r.gw ? parseIp(r.gw) : gatewayOf(dst.family);
    push(gw ? { dst, gw } : { dst });
  }
  if (isDefaultGateway) {
    const families = [...new Set(addresses.map((a) => a.ip.family))];
    for (const f of families) {
      const gw = gatewayOf(f);
      if (gw) push({ dst: defaultDst(f), gw });
    }
  }
  return out;
}

/** The node namespace batch. `vethLine` is the 1-based number of the line that creates the veth pair. */
export function nodeBatch(plan: AttachPlan): { lines: string[]; bridgeLine?: number; vethLine: number } {
  const lines: string[] = [];
  let bridgeLine: number | undefined;
  if (plan.createBridgeMac) {
    lines.push(ipLine("link", "add", plan.bridge, "address", plan.createBridgeMac, "type", "bridge"));
    bridgeLine = lines.length;
  }
  for (const a of plan.bridgeAddresses) {
    const tokens = ["addr", "replace", `${formatIp(a.ip)}/${a.prefix}`, "dev", plan.bridge];
    if (a.ip.family === 6) tokens.push("nodad");
    lines.push(ipLine(...tokens));
  }
  lines.push(ipLine("link", "set", plan.bridge, "up"));
  lines.push(
    ipLine(
      "link",
      "add",
      plan.hostIf,
      "address",
      plan.hostMac,
      "mtu",
      plan.mtu,
      "master",
      plan.bridge,
      "type",
      "veth",
      "peer",
      "name",
      plan.containerIf,
      "address",
      plan.containerMac,
      "mtu",
      plan.mtu,
      "netns",
      plan.netns,
    ),
  );
  const vethLine = lines.length;
  if (plan.hairpin) lines.push(ipLine("link", "set", plan.hostIf, "type", "bridge_slave", "hairpin", "on"));
  lines.push(ipLine("link", "set", plan.hostIf, "up"));
  // The node learns the pod's address at once, with its (new) MAC: an address used by a deleted pod may
  // still sit in the node's neighbour table with the old MAC for ~30 s, which black-holes the new pod
  // (the reference bridge plugin sends a gratuitous ARP for the same reason). `stale`: the kernel
  // confirms it on first use and then keeps it current as usual.
  for (const a of plan.addresses) {
    lines.push(
      ipLine(
        "neigh",
        "replace",
        formatIp(a.ip),
        "lladdr",
        plan.containerMac,
        "dev",
        plan.bridge,
        "nud",
        "stale",
      ),
    );
  }
  return { lines, ...(bridgeLine ? { bridgeLine } : {}), vethLine };
}

/** The pod namespace batch: setup lines, then one line per route (`routeLines[i]` installs `plan.routes[i]`). */
export function podBatch(plan: AttachPlan): { lines: string[]; routeLines: string[] } {
  const dev = plan.containerIf;
  const lines = [ipLine("link", "set", "lo", "up")];
  for (const a of plan.addresses) {
    const tokens = ["addr", "add", `${formatIp(a.ip)}/${a.subnet.prefix}`, "dev", dev];
    if (a.ip.family === 6) tokens.push("nodad");
    lines.push(ipLine(...tokens));
  }
  lines.push(ipLine("link", "set", dev, "up"));
  const routeLines = plan.routes.map((r) => {
    const tokens = ["route", "add", formatCidr(r.dst)];
    if (r.gw) tokens.push("via", formatIp(r.gw));
    tokens.push("dev", dev);
    return ipLine(...tokens);
  });
  return { lines, routeLines };
}

/** Routes as the result reports them. */
export function resultRoutes(routes: readonly PodRoute[]): Route[] {
  return routes.map((r) =>
    r.gw ? { dst: formatCidr(r.dst), gw: formatIp(r.gw) } : { dst: formatCidr(r.dst) },
  );
}
