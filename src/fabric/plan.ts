/**
 * planFabric: how pods on different nodes reach each other, as plain data.
 *
 * routed (host-gw): every node routes each other node's pod block via that node's underlay address;
 * with advertiseToRouter the upstream router holds the same routes, so hosts behind it reach pod IPs.
 * vxlan: every node has a VXLAN device (MTU = underlay - 50) and, per peer, a route to the peer's block
 * via the peer's VTEP address (onlink), a permanent neighbour entry for that address and an FDB entry
 * that sends frames for the peer's VTEP MAC to the peer's underlay address (flannel's layout, no
 * learning, no multicast). Pure: the node agent applies it, the explainer reads it.
 */
import { deterministicMac } from "../linux/names.js";
import type { ClusterPlan, NodePlan } from "../plan/types.js";

export const VXLAN_DEVICE = "vxlan0";
export const UNDERLAY_DEVICE = "eth0";

export interface FabricRoute {
  dst: string;
  /** Next hop; for an IPv6 destination an IPv4 next hop stands for its link-local twin (ipv6NextHopFor). */
  via: string;
  dev: string;
  /** The next hop is reachable on the device without a connected route (VXLAN VTEP addresses). */
  onlink: boolean;
}

export interface VxlanDevice {
  name: string;
  vni: number;
  port: number;
  /** This node's underlay address: the outer source. */
  local: string;
  dev: string;
  mtu: number;
  mac: string;
  /** The VTEP addresses on the device: the network address of each of the node's pod blocks (/32, /128). */
  addresses: string[];
}

export interface FabricNeighbor {
  ip: string;
  mac: string;
  dev: string;
}

export interface FabricFdbEntry {
  mac: string;
  /** The peer's underlay address: where encapsulated frames go. */
  dst: string;
  dev: string;
}

export interface FabricNodePlan {
  node: string;
  routes: FabricRoute[];
  vxlan?: VxlanDevice;
  neighbors: FabricNeighbor[];
  fdb: FabricFdbEntry[];
}

export interface FabricPlan {
  cluster: string;
  mode: "routed" | "vxlan";
  nodes: FabricNodePlan[];
  /** Routes the upstream router holds to reach pod blocks (routed + advertiseToRouter only). */
  routerRoutes: FabricRoute[];
}

/** The network address of a CIDR's text, as a host address (10.244.1.0/24 -> 10.244.1.0). */
function networkOf(cidr: string): string {
  return cidr.slice(0, cidr.indexOf("/"));
}

function hostPrefix(ip: string): string {
  return ip.includes(":") ? `${ip}/128` : `${ip}/32`;
}

export function vtepMac(cluster: string, node: string): string {
  return deterministicMac("vxlan", cluster, node);
}

export function planFabric(cluster: ClusterPlan, routerDevice = "sw0"): FabricPlan {
  const { fabric } = cluster;
  const viaNode = (peer: NodePlan, dev: string): FabricRoute[] =>
    peer.podCIDRs.map((block) => ({ dst: block, via: peer.address, dev, onlink: false }));

  if (fabric.mode === "routed") {
    return {
      cluster: cluster.name,
      mode: "routed",
      nodes: cluster.nodes.map((node) => ({
        node: node.name,
        routes: cluster.nodes.filter((p) => p !== node).flatMap((peer) => viaNode(peer, UNDERLAY_DEVICE)),
        neighbors: [],
        fdb: [],
      })),
      routerRoutes: fabric.advertiseToRouter
        ? cluster.nodes.flatMap((peer) => viaNode(peer, routerDevice))
        : [],
    };
  }

  return {
    cluster: cluster.name,
    mode: "vxlan",
    nodes: cluster.nodes.map((node) => {
      const peers = cluster.nodes.filter((p) => p !== node);
      return {
        node: node.name,
        vxlan: {
          name: VXLAN_DEVICE,
          vni: fabric.vni ?? 1,
          port: fabric.port ?? 4789,
          local: node.address,
          dev: UNDERLAY_DEVICE,
          mtu: fabric.podMTU,
          mac: vtepMac(cluster.name, node.name),
          addresses: node.podCIDRs.map((block) => hostPrefix(networkOf(block))),
        },
        routes: peers.flatMap((peer) =>
          peer.podCIDRs.map((block) => ({
            dst: block,
            via: networkOf(block),
            dev: VXLAN_DEVICE,
            onlink: true,
          })),
        ),
        neighbors: peers.flatMap((peer) =>
          peer.podCIDRs.map((block) => ({
            ip: networkOf(block),
            mac: vtepMac(cluster.name, peer.name),
            dev: VXLAN_DEVICE,
          })),
        ),
        fdb: peers.map((peer) => ({
          mac: vtepMac(cluster.name, peer.name),
          dst: peer.address,
          dev: VXLAN_DEVICE,
        })),
      };
    }),
    routerRoutes: [],
  };
}

/**
 * The node's fabric as batch lines: `ip` for the device, neighbours and routes, `bridge` for the FDB
 * (iproute2 keeps FDB entries in the bridge tool). Apply `ip` first: the FDB needs the device.
 */
export function fabricCommands(node: FabricNodePlan): { ip: string[]; bridge: string[] } {
  const ip: string[] = [];
  const v = node.vxlan;
  if (v) {
    ip.push(
      `link add ${v.name} type vxlan id ${v.vni} dstport ${v.port} local ${v.local} dev ${v.dev} nolearning`,
      `link set ${v.name} address ${v.mac} mtu ${v.mtu} up`,
      ...v.addresses.map((a) => `addr replace ${a} dev ${v.name}`),
    );
  }
  for (const n of node.neighbors) ip.push(`neigh replace ${n.ip} lladdr ${n.mac} dev ${n.dev} nud permanent`);
  for (const r of node.routes) ip.push(routeLine(r));
  const bridge = node.fdb.map((n) => `fdb append ${n.mac} dev ${n.dev} dst ${n.dst}`);
  return { ip, bridge };
}

/**
 * The IPv6 next hop that stands for a node's IPv4 underlay address: a link-local address with the IPv4
 * address in its last 32 bits (172.29.0.2 → fe80::ac1d:2). Linux accepts IPv4 routes with IPv6 next hops
 * but not the reverse ("IPv6 does not support RTA_VIA attribute"), so an IPv6 pod block is routed via this
 * address, which the lab gives each underlay interface of an IPv4-only node network.
 */
export function ipv6NextHopFor(ipv4: string): string {
  const [a, b, c, d] = ipv4.split(".").map(Number) as [number, number, number, number];
  return `fe80::${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
}

export function routeLine(r: FabricRoute): string {
  const v6dst = r.dst.includes(":");
  const v4via = !r.via.includes(":");
  const via = v6dst && v4via ? ipv6NextHopFor(r.via) : r.via;
  // ip infers the family from the destination (batch lines take no -6).
  return `route replace ${r.dst} via ${via} dev ${r.dev}${r.onlink ? " onlink" : ""}`;
}
