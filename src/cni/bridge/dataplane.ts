// What podnet's ADD programs, as steps (data): one sequence in the node namespace (bridge if missing,
// gateway addresses, the veth pair created with its peer directly in the pod namespace, master, hairpin,
// up) and one in the pod namespace (lo up, addresses, link up, routes). apply.ts runs them as `ip -batch`
// lines or as netlink messages. MAC addresses are chosen here (deterministic, locally administered), so
// nothing has to be read back. Pure: unit-tested without root.
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

/**
 * One kernel operation of an ADD (or DEL), as data: the `ip -batch` applier prints it as a line
 * (stepLine), the netlink applier encodes it as a message. Both run the same steps in the same order.
 */
export type DataplaneStep =
  | { op: "bridge-add"; name: string; mac: string }
  /** `replace` for the bridge's gateways (idempotent), add for the pod's (a clash is an error). IPv6: no DAD. */
  | { op: "addr-add"; dev: string; ip: IpAddress; prefix: number; replace: boolean }
  | { op: "link-up"; dev: string }
  | {
      op: "veth-add";
      name: string;
      mac: string;
      mtu: number;
      master: string;
      peer: { name: string; mac: string; mtu: number; netns: string };
    }
  | { op: "hairpin-on"; dev: string }
  | { op: "neigh-stale"; dev: string; ip: IpAddress; mac: string }
  | { op: "route-add"; dst: Cidr; gw?: IpAddress; dev: string }
  | { op: "link-del"; dev: string };

/** The `ip -batch` line of a step (also how the netlink applier names a failed step). */
export function stepLine(step: DataplaneStep): string {
  switch (step.op) {
    case "bridge-add":
      return ipLine("link", "add", step.name, "address", step.mac, "type", "bridge");
    case "addr-add": {
      const tokens = [
        "addr",
        step.replace ? "replace" : "add",
        `${formatIp(step.ip)}/${step.prefix}`,
        "dev",
        step.dev,
      ];
      if (step.ip.family === 6) tokens.push("nodad");
      return ipLine(...tokens);
    }
    case "link-up":
      return ipLine("link", "set", step.dev, "up");
    case "veth-add":
      return ipLine(
        "link",
        "add",
        step.name,
        "address",
        step.mac,
        "mtu",
        step.mtu,
        "master",
        step.master,
        "type",
        "veth",
        "peer",
        "name",
        step.peer.name,
        "address",
        step.peer.mac,
        "mtu",
        step.peer.mtu,
        "netns",
        step.peer.netns,
      );
    case "hairpin-on":
      return ipLine("link", "set", step.dev, "type", "bridge_slave", "hairpin", "on");
    case "neigh-stale":
      return ipLine(
        "neigh",
        "replace",
        formatIp(step.ip),
        "lladdr",
        step.mac,
        "dev",
        step.dev,
        "nud",
        "stale",
      );
    case "route-add": {
      const tokens = ["route", "add", formatCidr(step.dst)];
      if (step.gw) tokens.push("via", formatIp(step.gw));
      tokens.push("dev", step.dev);
      return ipLine(...tokens);
    }
    case "link-del":
      return ipLine("link", "del", step.dev);
  }
}

/**
 * The node namespace's steps. `bridgeStep` and `vethStep` are the 1-based numbers of the steps that create
 * the bridge and the veth pair (as `ip -batch` numbers its lines).
 */
export function nodeSteps(plan: AttachPlan): {
  steps: DataplaneStep[];
  bridgeStep?: number;
  vethStep: number;
} {
  const steps: DataplaneStep[] = [];
  let bridgeStep: number | undefined;
  if (plan.createBridgeMac) {
    steps.push({ op: "bridge-add", name: plan.bridge, mac: plan.createBridgeMac });
    bridgeStep = steps.length;
  }
  for (const a of plan.bridgeAddresses) {
    steps.push({ op: "addr-add", dev: plan.bridge, ip: a.ip, prefix: a.prefix, replace: true });
  }
  steps.push({ op: "link-up", dev: plan.bridge });
  steps.push({
    op: "veth-add",
    name: plan.hostIf,
    mac: plan.hostMac,
    mtu: plan.mtu,
    master: plan.bridge,
    peer: { name: plan.containerIf, mac: plan.containerMac, mtu: plan.mtu, netns: plan.netns },
  });
  const vethStep = steps.length;
  if (plan.hairpin) steps.push({ op: "hairpin-on", dev: plan.hostIf });
  steps.push({ op: "link-up", dev: plan.hostIf });
  // The node learns the pod's address at once, with its (new) MAC: an address used by a deleted pod may
  // still sit in the node's neighbour table with the old MAC for ~30 s, which black-holes the new pod
  // (the reference bridge plugin sends a gratuitous ARP for the same reason). `stale`: the kernel
  // confirms it on first use and then keeps it current as usual.
  for (const a of plan.addresses) {
    steps.push({ op: "neigh-stale", dev: plan.bridge, ip: a.ip, mac: plan.containerMac });
  }
  return { steps, ...(bridgeStep ? { bridgeStep } : {}), vethStep };
}

/** The pod namespace's steps: setup, then one step per route (`routeSteps[i]` installs `plan.routes[i]`). */
export function podSteps(plan: AttachPlan): { steps: DataplaneStep[]; routeSteps: DataplaneStep[] } {
  const dev = plan.containerIf;
  const steps: DataplaneStep[] = [{ op: "link-up", dev: "lo" }];
  for (const a of plan.addresses) {
    steps.push({ op: "addr-add", dev, ip: a.ip, prefix: a.subnet.prefix, replace: false });
  }
  steps.push({ op: "link-up", dev });
  const routeSteps: DataplaneStep[] = plan.routes.map((r) => ({
    op: "route-add",
    dst: r.dst,
    ...(r.gw ? { gw: r.gw } : {}),
    dev,
  }));
  return { steps, routeSteps };
}

/** The node namespace batch. `vethLine` is the 1-based number of the line that creates the veth pair. */
export function nodeBatch(plan: AttachPlan): { lines: string[]; bridgeLine?: number; vethLine: number } {
  const { steps, bridgeStep, vethStep } = nodeSteps(plan);
  return {
    lines: steps.map(stepLine),
    ...(bridgeStep ? { bridgeLine: bridgeStep } : {}),
    vethLine: vethStep,
  };
}

/** The pod namespace batch: setup lines, then one line per route (`routeLines[i]` installs `plan.routes[i]`). */
export function podBatch(plan: AttachPlan): { lines: string[]; routeLines: string[] } {
  const { steps, routeSteps } = podSteps(plan);
  return { lines: steps.map(stepLine), routeLines: routeSteps.map(stepLine) };
}

/** Routes as the result reports them. */
export function resultRoutes(routes: readonly PodRoute[]): Route[] {
  return routes.map((r) =>
    r.gw ? { dst: formatCidr(r.dst), gw: formatIp(r.gw) } : { dst: formatCidr(r.dst) },
  );
}
