/** Human-readable rendering of an address plan (what `podnet plan` prints by default). */
import { formatTable } from "../cli/table.js";
import { peeringReachability } from "./peering.js";
import type { AddressPlan, ClusterPlan, PeeringPlan, ServicePlan } from "./types.js";

/** kubectl's PORT(S) column: `80/TCP`, `80:30080/TCP`. */
export function formatServicePorts(svc: ServicePlan): string {
  if (svc.ports.length === 0) return "<none>";
  return svc.ports
    .map((p) => `${p.port}${p.nodePort !== undefined ? `:${p.nodePort}` : ""}/${p.protocol}`)
    .join(",");
}

function formatCluster(cluster: ClusterPlan, namespace?: string): string {
  const { ranges, fabric } = cluster;
  const fabricText =
    fabric.mode === "vxlan"
      ? `vxlan (VNI ${fabric.vni}, UDP ${fabric.port}; pod MTU ${fabric.podMTU} = ${fabric.underlayMTU} - 50 bytes of encapsulation)`
      : `routed (host-gw; pod MTU ${fabric.podMTU})`;
  const outside = fabric.podsAddressableFromOutside
    ? "external hosts reach pod IPs directly (routes advertised to the router)"
    : "pod IPs are not reachable from outside the cluster; egress is masqueraded to the node";
  const lines = [
    `CLUSTER ${cluster.name}`,
    `  domain:          ${cluster.domain}`,
    `  fabric:          ${fabricText}`,
    `                   ${outside}`,
    `  node network:    ${ranges.nodeCIDR} (router ${cluster.router.nodeNetworkAddress})`,
    `  pod network:     ${ranges.podCIDRs.join(", ")}`,
    `  service network: ${ranges.serviceCIDRs.join(", ")} (DNS ${cluster.dnsServiceIP})`,
    `  external:        ${ranges.externalCIDR} (router ${cluster.router.externalNetworkAddress})`,
    `  load balancers:  ${ranges.loadBalancerCIDRs.join(", ") || "<none>"}`,
    "",
    formatTable(
      ["NODE", "ADDRESS", "POD CIDR", "GATEWAY", "PODS"],
      cluster.nodes.map((n) => [n.name, n.address, n.podCIDRs.join(","), n.gateways.join(","), n.podCount]),
    ),
  ];
  const pods = cluster.pods.filter((p) => !namespace || p.namespace === namespace);
  if (pods.length > 0) {
    lines.push(
      "",
      formatTable(
        ["NAMESPACE", "POD", "NODE", "IP"],
        pods.map((p) => [
          p.namespace,
          p.name,
          p.node,
          `${p.ips.join(",")}${p.hostNetwork ? " (host network)" : ""}`,
        ]),
      ),
    );
  }
  const services = cluster.services.filter((s) => !namespace || s.namespace === namespace);
  if (services.length > 0) {
    lines.push(
      "",
      formatTable(
        ["NAMESPACE", "SERVICE", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"],
        services.map((s) => [
          s.namespace,
          s.name,
          s.type,
          s.headless ? "None" : s.clusterIPs.join(",") || "<none>",
          [...s.loadBalancerIPs, ...s.externalIPs, ...(s.externalName ? [s.externalName] : [])].join(",") ||
            (s.type === "LoadBalancer" ? "<pending>" : "<none>"),
          formatServicePorts(s),
        ]),
      ),
    );
  }
  if (cluster.externalHosts.length > 0) {
    lines.push(
      "",
      formatTable(
        ["EXTERNAL HOST", "ADDRESS"],
        cluster.externalHosts.map((h) => [h.name, h.address]),
      ),
    );
  }
  return lines.join("\n");
}

function formatPeering(p: PeeringPlan): string {
  const [a, b] = p.sides;
  const lines = [
    `PEERING ${p.name}: ${a.cluster} (${a.address}) <-> ${b.cluster} (${b.address}) over ${p.transitCIDR}${p.transitFrom === "allocated" ? " (allocated)" : ""}`,
  ];
  for (const s of p.sides) {
    lines.push(`  router of ${s.cluster} routes over it:`);
    for (const r of s.routes) lines.push(`    ${r.dst.padEnd(18)} via ${r.via}  (${r.what})`);
    if (s.nonMasqueradeCIDRs.length)
      lines.push(`    nodes of ${s.cluster} do not masquerade pods to ${s.nonMasqueradeCIDRs.join(", ")}`);
  }
  return lines.join("\n");
}

/** Every ordered pair of clusters: can the first reach the second's nodes and pod IPs, and why. */
function formatReachability(plan: AddressPlan): string {
  const rows: string[] = ["REACHABILITY BETWEEN CLUSTERS (from -> to)"];
  for (const from of plan.clusters)
    for (const to of plan.clusters) {
      if (from === to) continue;
      const r = peeringReachability(plan, from.name, to.name);
      const pods = r.podsAddressable ? (r.clientIpKept ? "yes" : "yes (masqueraded)") : "no";
      rows.push(
        `  ${from.name} -> ${to.name}: nodes ${r.nodesReachable ? "yes" : "no"}, pod IPs ${pods}`,
        `    why: ${r.reason}`,
      );
    }
  return rows.join("\n");
}

export function formatPlan(plan: AddressPlan, options: { namespace?: string } = {}): string {
  const parts = plan.clusters.map((c) => formatCluster(c, options.namespace));
  parts.push(...(plan.peerings ?? []).map(formatPeering));
  if (plan.clusters.length > 1) parts.push(formatReachability(plan));
  return parts.join("\n\n");
}
