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
import { deterministicMac } from "../linux/names.js";
import type { ClusterPlan } from "../plan/types.js";
import {
  EXTERNAL_SWITCH,
  externalUplinkName,
  MASQ_TABLE,
  NODE_SWITCH,
  netnsNames,
  nodeUplinkName,
  POD_BRIDGE,
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

/** Masquerade of pod egress to anything outside the cluster's own ranges, to the node's address. */
export function masqueradeRuleset(cluster: ClusterPlan): string {
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
    const inside = [...pods, ...ranges.serviceCIDRs.filter(isFamily), ranges.nodeCIDR].filter(isFamily);
    const ip = family === 4 ? "ip" : "ip6";
    lines.push(
      `    ${ip} saddr { ${pods.join(", ")} } ${ip} daddr != { ${inside.join(", ")} } oifname "eth0" masquerade`,
    );
  }
  lines.push("  }", "}");
  return `${lines.join("\n")}\n`;
}

export function planTopology(
  lab: string,
  cluster: ClusterPlan,
  serviceRoutes: readonly ServiceRoute[] = [],
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
        ...commands.ip,
      ],
      bridge: commands.bridge,
      nft: cluster.fabric.masquerade ? masqueradeRuleset(cluster) : undefined,
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
    return {
      name: ns,
      role: "external",
      cluster: name,
      object: host.name,
      sysctls: { ...PROBE_SYSCTLS },
      ip: [
        "link set lo up",
        `link set eth0 address ${mac.external(host.name)}`,
        `addr replace ${host.address}/${extPrefix} dev eth0`,
        "link set eth0 up",
        `neigh replace ${router.externalNetworkAddress} lladdr ${mac.routerExternalSide} dev eth0 nud permanent`,
        `route replace default via ${router.externalNetworkAddress} dev eth0`,
      ],
      bridge: [],
    };
  });

  underlayIp.push(...fabric.routerRoutes.map(routeLine), ...serviceRouteLines(serviceRoutes, NODE_SWITCH));
  const underlayPlan: NamespacePlan = {
    name: underlay,
    role: "underlay",
    cluster: name,
    sysctls: forwardingSysctls(v6),
    ip: underlayIp,
    bridge: [],
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
