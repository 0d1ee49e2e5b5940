/**
 * planTopology: the namespaces, links, addresses, routes, sysctls and nftables rules of one cluster of a
 * lab, as plain data (ip/bridge batch lines per namespace), from its address plan. Pure: `podnet lab up`
 * applies it, `--dry-run` prints it, tests read it.
 *
 *   underlay ns   sw0 (bridge: the node switch, router address = nodes' gateway)
 *                 ext0 (bridge: the router's external side, external hosts' gateway)
 *                 + routes to pod blocks when routed with advertiseToRouter
 *   node ns       eth0 (on sw0), default via the router; fabric routes / VXLAN; masquerade for pods;
 *                 cbr0 and the pods' veths come from the CNI plugin
 *   external ns   eth0 (on ext0), default via the router
 * Nothing routes to or from the root namespace: the underlay has no default route.
 */
import { fabricCommands, ipv6NextHopFor, planFabric, routeLine } from "../fabric/plan.js";
import { containsIp, formatCidr, tryParseCidr, tryParseIp } from "../ipam/cidr.js";
import { deterministicMac } from "../linux/names.js";
import type { ClusterPlan, PeeringPlan } from "../plan/types.js";
import {
  EXTERNAL_SWITCH,
  externalUplinkName,
  MASQ_TABLE,
  NODE_SWITCH,
  netnsNames,
  nodeUplinkName,
  POD_BRIDGE,
  peeringLinkName,
} from "./names.js";
import { type ServiceRoute, serviceRouteLines } from "./service-routes.js";

export type NamespaceRole = "underlay" | "node" | "external";

export interface NamespacePlan {
  /** `ip netns` name. */
  name: string;
  role: NamespaceRole;
  cluster: string;
  /** The node or external host it is (absent for the underlay). */
  object?: string;
  /** Written before the links are configured. */
  sysctls: Record<string, string>;
  /** `ip -batch` lines run inside the namespace; all idempotent (replace, set). */
  ip: string[];
  /** `bridge -batch` lines (VXLAN FDB entries). */
  bridge: string[];
  /** nftables ruleset applied inside the namespace (one transaction), if any. */
  nft?: string;
  /**
   * Underlay only: what converge prunes against. Peering links (named PEERING_LINK_PREFIX…) not listed
   * here are deleted, and so are routes of protocol ROUTER_ROUTE_PROTO to destinations not listed.
   */
  router?: { peeringLinks: string[]; routeDsts: string[] };
}

export interface ClusterTopology {
  lab: string;
  cluster: string;
  /** Created first, in this order (underlay, nodes, external hosts). */
  namespaces: NamespacePlan[];
  /** `ip -batch` lines run in the root namespace that create the veth pairs directly inside the lab's
   * namespaces (nothing stays in the root namespace). Each creates one link; "File exists" means done. */
  links: string[];
}

/** The underlay's fixed MAC addresses: derived from the cluster and object names. */
export function underlayMacs(cluster: string) {
  return {
    routerNodeSide: deterministicMac("router", cluster, NODE_SWITCH),
    routerExternalSide: deterministicMac("router", cluster, EXTERNAL_SWITCH),
    node: (node: string) => deterministicMac("node", cluster, node),
    external: (host: string) => deterministicMac("external", cluster, host),
  };
}

function prefixLength(cidr: string): number {
  return Number(cidr.slice(cidr.indexOf("/") + 1));
}

/** No ICMP rate limit: a burst of probes to closed ports must each get "port unreachable" (refused),
 * not time out after the kernel's default ~6 answers. */
export const PROBE_SYSCTLS: Record<string, string> = { "net.ipv4.icmp_ratemask": "0" };

function forwardingSysctls(v6: boolean): Record<string, string> {
  const s: Record<string, string> = { ...PROBE_SYSCTLS, "net.ipv4.ip_forward": "1" };
  if (v6) s["net.ipv6.conf.all.forwarding"] = "1";
  return s;
}

/**
 * Routes the lab's router holds beyond its own networks and the fabric's pod blocks: over peerings, and
 * host routes to external hosts whose fixed address lies outside the external network. They carry this
 * protocol number (no name in rt_protos) so that converge finds and removes the ones no longer planned.
 */
export const ROUTER_ROUTE_PROTO = 98;

/**
 * Masquerade of pod egress to anything outside the cluster's own ranges, to the node's address.
 * `nonMasqueradeCIDRs` (ip-masq-agent's list): peered clusters' pod ranges that are routed both ways,
 * so their pods see (and answer) the client pod's own IP.
 */
export function masqueradeRuleset(cluster: ClusterPlan, nonMasqueradeCIDRs: readonly string[] = []): string {
  const { ranges } = cluster;
  const lines = [
    `table inet ${MASQ_TABLE} {`,
    "  chain postrouting {",
    "    type nat hook postrouting priority 100; policy accept;",
  ];
  for (const family of [4, 6] as const) {
    const isFamily = (c: string) => (family === 6) === c.includes(":");
    const pods = ranges.podCIDRs.filter(isFamily);
    if (pods.length === 0) continue;
    const inside = [
      ...pods,
      ...ranges.serviceCIDRs.filter(isFamily),
      ranges.nodeCIDR,
      ...nonMasqueradeCIDRs.filter(isFamily),
    ].filter(isFamily);
    const ip = family === 4 ? "ip" : "ip6";
    lines.push(
      `    ${ip} saddr { ${pods.join(", ")} } ${ip} daddr != { ${inside.join(", ")} } oifname "eth0" masquerade`,
    );
  }
  lines.push("  }", "}");
  return `${lines.join("\n")}\n`;
}

/** Whether `address` lies outside `cidr` (an external host with a fixed address elsewhere). */
function outside(cidr: string, address: string): boolean {
  const net = tryParseCidr(cidr);
  const ip = tryParseIp(address);
  return !!net && !!ip && (net.family !== ip.family || !containsIp(net, ip));
}

/** A CIDR as `ip -j route` prints it back (compressed IPv6), for comparing planned and present routes. */
export function canonicalCidr(text: string): string {
  const cidr = tryParseCidr(text.includes("/") ? text : hostRoute(text));
  return cidr ? formatCidr(cidr) : text;
}

const hostRoute = (ip: string) => (ip.includes(":") ? `${ip}/128` : `${ip}/32`);

/** The MAC of a router's end of a peering link. */
function peeringMac(peering: PeeringPlan, cluster: string): string {
  return deterministicMac("peering", peering.name, cluster);
}

/**
 * The router's end of each peering of the cluster: address on the transit network, static neighbour,
 * and a route (protocol ROUTER_ROUTE_PROTO) to every range the peer's router routes. IPv6 ranges go via
 * the link-local twin of the peer's IPv4 transit address (ipv6NextHopFor): this kernel refuses IPv6
 * routes with IPv4 next hops. The first cluster of a peering creates the veth pair (in both routers).
 */
function peeringLines(
  lab: string,
  cluster: ClusterPlan,
  peerings: readonly PeeringPlan[],
  mtuOf: (cluster: string) => number,
): { links: string[]; ip: string[]; names: string[]; dsts: string[] } {
  const out = { links: [] as string[], ip: [] as string[], names: [] as string[], dsts: [] as string[] };
  for (const peering of peerings) {
    const index = peering.sides.findIndex((s) => s.cluster === cluster.name);
    const self = peering.sides[index];
    const peer = peering.sides[1 - index];
    if (index < 0 || !self || !peer) continue;
    const link = peeringLinkName(peering, self.cluster);
    const peerLink = peeringLinkName(peering, peer.cluster);
    const prefix = prefixLength(peering.transitCIDR);
    const mac = peeringMac(peering, self.cluster);
    const peerMac = peeringMac(peering, peer.cluster);
    if (index === 0) {
      const mtu = Math.min(mtuOf(self.cluster), mtuOf(peer.cluster));
      out.links.push(
        `link add ${link} mtu ${mtu} netns ${netnsNames.underlay(lab, self.cluster)} type veth peer name ${peerLink} mtu ${mtu} netns ${netnsNames.underlay(lab, peer.cluster)}`,
      );
    }
    const v6 = self.routes.some((r) => r.dst.includes(":"));
    out.names.push(link);
    out.ip.push(
      `link set ${link} address ${mac}`,
      `addr replace ${self.address}/${prefix} dev ${link}`,
      `link set ${link} up`,
      `neigh replace ${peer.address} lladdr ${peerMac} dev ${link} nud permanent`,
      ...(v6
        ? [
            `addr replace ${ipv6NextHopFor(self.address)}/64 dev ${link} nodad`,
            `neigh replace ${ipv6NextHopFor(peer.address)} lladdr ${peerMac} dev ${link} nud permanent`,
          ]
        : []),
    );
    for (const r of self.routes) {
      out.dsts.push(r.dst);
      out.ip.push(
        `${routeLine({ dst: r.dst, via: r.via, dev: link, onlink: false })} proto ${ROUTER_ROUTE_PROTO}`,
      );
    }
  }
  return out;
}

export function planTopology(
  lab: string,
  cluster: ClusterPlan,
  serviceRoutes: readonly ServiceRoute[] = [],
  /** The lab's peerings (those of other clusters are ignored) and the MTU of every cluster's underlay. */
  peerings: readonly PeeringPlan[] = [],
  mtuOf: (cluster: string) => number = () => cluster.fabric.underlayMTU,
): ClusterTopology {
  const name = cluster.name;
  const underlay = netnsNames.underlay(lab, name);
  const mtu = cluster.fabric.underlayMTU;
  const v6 = cluster.ranges.podCIDRs.some((c) => c.includes(":"));
  const nodePrefix = prefixLength(cluster.ranges.nodeCIDR);
  const extPrefix = prefixLength(cluster.ranges.externalCIDR);
  const fabric = planFabric(cluster, NODE_SWITCH);
  const links: string[] = [];

  // The underlay is static: fixed MACs and permanent neighbour entries, so that no first packet between
  // nodes, the router and external hosts waits on ARP (what a converged network looks like at once).
  const mac = underlayMacs(name);
  const router = cluster.router;
  const underlayIp = [
    "link set lo up",
    `link add ${NODE_SWITCH} mtu ${mtu} type bridge`,
    `link set ${NODE_SWITCH} address ${mac.routerNodeSide}`,
    `addr replace ${router.nodeNetworkAddress}/${nodePrefix} dev ${NODE_SWITCH}`,
    `link set ${NODE_SWITCH} up`,
    `link add ${EXTERNAL_SWITCH} mtu ${mtu} type bridge`,
    `link set ${EXTERNAL_SWITCH} address ${mac.routerExternalSide}`,
    `addr replace ${router.externalNetworkAddress}/${extPrefix} dev ${EXTERNAL_SWITCH}`,
    `link set ${EXTERNAL_SWITCH} up`,
  ];

  const nonMasquerade = peerings.flatMap(
    (p) => p.sides.find((s) => s.cluster === name)?.nonMasqueradeCIDRs ?? [],
  );
  const routerDsts: string[] = [];
  // IPv6 ranges of peers: the nodes send IPv6 beyond the cluster to the router as they do IPv4, via the
  // router's link-local twin (only then: a cluster without IPv6 peers keeps no IPv6 default route).
  const routerV6 = ipv6NextHopFor(router.nodeNetworkAddress);
  const v6Peers =
    v6 &&
    peerings.some((p) => p.sides.find((s) => s.cluster === name)?.routes.some((r) => r.dst.includes(":")));
  if (v6Peers) underlayIp.push(`addr replace ${routerV6}/64 dev ${NODE_SWITCH} nodad`);
  const nodes: NamespacePlan[] = cluster.nodes.map((node) => {
    const ns = netnsNames.node(lab, name, node.name);
    const uplink = nodeUplinkName(name, node.name);
    links.push(
      `link add ${uplink} mtu ${mtu} netns ${underlay} type veth peer name eth0 mtu ${mtu} netns ${ns}`,
    );
    underlayIp.push(
      `link set ${uplink} master ${NODE_SWITCH} up`,
      `neigh replace ${node.address} lladdr ${mac.node(node.name)} dev ${NODE_SWITCH} nud permanent`,
      ...(v6
        ? [
            `neigh replace ${ipv6NextHopFor(node.address)} lladdr ${mac.node(node.name)} dev ${NODE_SWITCH} nud permanent`,
          ]
        : []),
    );
    const nodeFabric = fabric.nodes.find((n) => n.node === node.name);
    const commands = nodeFabric ? fabricCommands(nodeFabric) : { ip: [], bridge: [] };
    return {
      name: ns,
      role: "node",
      cluster: name,
      object: node.name,
      sysctls: forwardingSysctls(v6),
      ip: [
        "link set lo up",
        `link set eth0 address ${mac.node(node.name)}`,
        `addr replace ${node.address}/${nodePrefix} dev eth0`,
        "link set eth0 up",
        `neigh replace ${router.nodeNetworkAddress} lladdr ${mac.routerNodeSide} dev eth0 nud permanent`,
        ...cluster.nodes
          .filter((peer) => peer !== node)
          .map(
            (peer) => `neigh replace ${peer.address} lladdr ${mac.node(peer.name)} dev eth0 nud permanent`,
          ),
        `route replace default via ${router.nodeNetworkAddress} dev eth0`,
        // IPv6 pod blocks are routed via the peers' link-local twins of their IPv4 addresses.
        ...(v6
          ? [
              `addr replace ${ipv6NextHopFor(node.address)}/64 dev eth0 nodad`,
              ...cluster.nodes
                .filter((peer) => peer !== node)
                .map(
                  (peer) =>
                    `neigh replace ${ipv6NextHopFor(peer.address)} lladdr ${mac.node(peer.name)} dev eth0 nud permanent`,
                ),
            ]
          : []),
        ...(v6Peers
          ? [
              `neigh replace ${routerV6} lladdr ${mac.routerNodeSide} dev eth0 nud permanent`,
              `route replace ::/0 via ${routerV6} dev eth0`,
            ]
          : []),
        ...commands.ip,
      ],
      bridge: commands.bridge,
      nft: cluster.fabric.masquerade ? masqueradeRuleset(cluster, nonMasquerade) : undefined,
    };
  });

  const externals: NamespacePlan[] = cluster.externalHosts.map((host) => {
    const ns = netnsNames.external(lab, name, host.name);
    const uplink = externalUplinkName(name, host.name);
    links.push(
      `link add ${uplink} mtu ${mtu} netns ${underlay} type veth peer name eth0 mtu ${mtu} netns ${ns}`,
    );
    underlayIp.push(
      `link set ${uplink} master ${EXTERNAL_SWITCH} up`,
      `neigh replace ${host.address} lladdr ${mac.external(host.name)} dev ${EXTERNAL_SWITCH} nud permanent`,
    );
    // A fixed address outside the external network: a host route on the router, and on the host a /32
    // (or /128) with the router reached on the link.
    const elsewhere = outside(cluster.ranges.externalCIDR, host.address);
    if (elsewhere) {
      routerDsts.push(hostRoute(host.address));
      underlayIp.push(
        `route replace ${hostRoute(host.address)} dev ${EXTERNAL_SWITCH} proto ${ROUTER_ROUTE_PROTO}`,
      );
    }
    const hostAddress = elsewhere ? hostRoute(host.address) : `${host.address}/${extPrefix}`;
    return {
      name: ns,
      role: "external",
      cluster: name,
      object: host.name,
      sysctls: { ...PROBE_SYSCTLS },
      ip: [
        "link set lo up",
        `link set eth0 address ${mac.external(host.name)}`,
        `addr replace ${hostAddress} dev eth0`,
        "link set eth0 up",
        `neigh replace ${router.externalNetworkAddress} lladdr ${mac.routerExternalSide} dev eth0 nud permanent`,
        ...(elsewhere ? [`route replace ${hostRoute(router.externalNetworkAddress)} dev eth0`] : []),
        `route replace default via ${router.externalNetworkAddress} dev eth0`,
      ],
      bridge: [],
    };
  });

  underlayIp.push(...fabric.routerRoutes.map(routeLine), ...serviceRouteLines(serviceRoutes, NODE_SWITCH));
  const peered = peeringLines(lab, cluster, peerings, mtuOf);
  links.push(...peered.links);
  underlayIp.push(...peered.ip);
  const underlayPlan: NamespacePlan = {
    name: underlay,
    role: "underlay",
    cluster: name,
    sysctls: forwardingSysctls(v6),
    ip: underlayIp,
    bridge: [],
    router: {
      peeringLinks: peered.names,
      routeDsts: [...routerDsts, ...peered.dsts].map(canonicalCidr),
    },
  };
  return { lab, cluster: name, namespaces: [underlayPlan, ...nodes, ...externals], links };
}

/** The CNI network configuration list of one node: podnet + podnet-ipam on the node's pod blocks. */
export function nodeConfList(
  cluster: ClusterPlan,
  nodeName: string,
  ipamDataDir: string,
): Record<string, unknown> {
  const node = cluster.nodes.find((n) => n.name === nodeName);
  if (!node) throw new Error(`no node ${nodeName} in cluster ${cluster.name}`);
  return {
    cniVersion: "1.1.0",
    cniVersions: ["1.0.0", "1.1.0"],
    name: "podnet",
    plugins: [
      {
        type: "podnet",
        bridge: POD_BRIDGE,
        mtu: cluster.fabric.podMTU,
        isGateway: true,
        isDefaultGateway: true,
        hairpinMode: true,
        // The lab masquerades per node (masqueradeRuleset), not per attachment.
        ipMasq: false,
        capabilities: { ips: true },
        ipam: {
          type: "podnet-ipam",
          ranges: node.podCIDRs.map((subnet, i) => [{ subnet, gateway: node.gateways[i] }]),
          dataDir: ipamDataDir,
        },
      },
    ],
  };
}
