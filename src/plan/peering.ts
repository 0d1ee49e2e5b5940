/**
 * Peerings between clusters: the transit network of each ClusterPeering, the routes each router gets
 * over it, and what one cluster can reach of another (`peeringReachability`). Pure: plain data in and
 * out, shared by `podnet plan`, the lab's topology and the probe's explanations, so all three agree.
 *
 * Each router routes over the peering what the peer's router routes itself: the peer's node network,
 * external network (and external hosts' fixed addresses outside it) and load-balancer pools; and the
 * peer's pod ranges only when the peer advertises them (routed with advertiseToRouter). A vxlan
 * cluster's pod IPs exist only between its own nodes, so nothing outside it can address them.
 */
import type { Diagnostic } from "../api/diagnostics.js";
import type { ClusterPeering, DesiredState } from "../api/types.js";
import {
  blockCount,
  type Cidr,
  cidrsOverlap,
  containsIp,
  formatCidr,
  formatIp,
  nthAddress,
  nthBlock,
  parseCidr,
  tryParseCidr,
  tryParseIp,
} from "../ipam/cidr.js";
import { collectRanges } from "./checks.js";
import type { AddressPlan, ClusterPlan, PeeringPlan, PeeringRoute, PeeringSidePlan } from "./types.js";

/** Where transit networks come from when a peering names none: TEST-NET-1 (RFC 5737), like the
 * defaults of the external network (TEST-NET-3) and load-balancer pool (TEST-NET-2). */
export const DEFAULT_TRANSIT_POOL = "192.0.2.0/24";
export const DEFAULT_TRANSIT_PREFIX = 30;

type Report = (d: Diagnostic) => void;

/** The two router addresses of a transit network: .1 and .2, or both addresses of a /31. */
export function transitAddresses(cidr: Cidr): [string, string] {
  const first = cidr.prefix === 31 ? 0 : 1;
  return [formatIp(nthAddress(cidr, first)), formatIp(nthAddress(cidr, first + 1))];
}

const isV6 = (cidr: string) => cidr.includes(":");

/** What `peer`'s router routes itself, as routes for the other router via `via`. */
function routesTo(peer: ClusterPlan, via: string, withV6: boolean): PeeringRoute[] {
  const { ranges } = peer;
  const routes: PeeringRoute[] = [{ dst: ranges.nodeCIDR, via, what: `node CIDR of ${peer.name}` }];
  if (peer.fabric.podsAddressableFromOutside)
    for (const c of ranges.podCIDRs) routes.push({ dst: c, via, what: `pod CIDR of ${peer.name}` });
  routes.push({ dst: ranges.externalCIDR, via, what: `external CIDR of ${peer.name}` });
  const external = tryParseCidr(ranges.externalCIDR);
  for (const host of peer.externalHosts) {
    const ip = tryParseIp(host.address);
    if (!ip || (external && external.family === ip.family && containsIp(external, ip))) continue;
    routes.push({
      dst: `${host.address}/${ip.family === 4 ? 32 : 128}`,
      via,
      what: `external host ${host.name} of ${peer.name}`,
    });
  }
  for (const c of ranges.loadBalancerCIDRs)
    routes.push({ dst: c, via, what: `load-balancer CIDR of ${peer.name}` });
  // A router without IPv6 pods does not forward IPv6 (the lab sets forwarding per family in use).
  return routes.filter((r) => withV6 || !isV6(r.dst));
}

function hasV6(cluster: ClusterPlan): boolean {
  return cluster.ranges.podCIDRs.some(isV6);
}

function side(self: ClusterPlan, peer: ClusterPlan, address: string, peerAddress: string): PeeringSidePlan {
  const bothRouted = self.fabric.podsAddressableFromOutside && peer.fabric.podsAddressableFromOutside;
  return {
    cluster: self.name,
    address,
    routes: routesTo(peer, peerAddress, hasV6(self)),
    nonMasqueradeCIDRs: bothRouted ? peer.ranges.podCIDRs.filter((c) => !isV6(c) || hasV6(self)) : [],
  };
}

/**
 * The peerings of `state`, with transit networks: from the manifest, else the previous plan's (when
 * still free), else the lowest free /30 of DEFAULT_TRANSIT_POOL that overlaps no declared range.
 */
export function planPeerings(
  state: DesiredState,
  clusters: readonly ClusterPlan[],
  previous: AddressPlan | undefined,
  report: Report,
): PeeringPlan[] {
  const peerings = state.peerings ?? [];
  if (peerings.length === 0) return [];
  // Everything declared is taken: cluster ranges, fixed addresses, explicit transit networks.
  const taken: Cidr[] = collectRanges(state).map((r) => r.cidr);
  const chosen = new Map<ClusterPeering, { cidr: Cidr; from: PeeringPlan["transitFrom"] }>();
  for (const p of peerings) {
    const cidr = p.transitCIDR ? tryParseCidr(p.transitCIDR) : undefined;
    if (cidr) chosen.set(p, { cidr, from: "manifest" });
  }
  const free = (cidr: Cidr) => !taken.some((t) => cidrsOverlap(t, cidr));
  const before = new Map((previous?.peerings ?? []).map((p) => [p.name, p]));
  for (const p of peerings) {
    if (chosen.has(p)) continue;
    const old = before.get(p.meta.name);
    const cidr = old ? tryParseCidr(old.transitCIDR) : undefined;
    if (cidr && free(cidr)) {
      chosen.set(p, { cidr, from: "previous" });
      taken.push(cidr);
    }
  }
  const pool = parseCidr(DEFAULT_TRANSIT_POOL);
  const blocks = Number(blockCount(pool, DEFAULT_TRANSIT_PREFIX));
  let cursor = 0;
  for (const p of peerings) {
    if (chosen.has(p)) continue;
    while (cursor < blocks && !free(nthBlock(pool, DEFAULT_TRANSIT_PREFIX, cursor))) cursor++;
    if (cursor >= blocks) {
      report({
        severity: "error",
        code: "exhausted-transit",
        object: `ClusterPeering ${p.meta.name}`,
        path: "spec.transitCIDR",
        source: p.meta.source,
        message: `no free /${DEFAULT_TRANSIT_PREFIX} left in the default transit pool ${DEFAULT_TRANSIT_POOL}`,
        hint: "set spec.transitCIDR to a free /30 outside every cluster range",
      });
      continue;
    }
    const cidr = nthBlock(pool, DEFAULT_TRANSIT_PREFIX, cursor);
    taken.push(cidr);
    chosen.set(p, { cidr, from: "allocated" });
  }
  const planned: PeeringPlan[] = [];
  for (const p of peerings) {
    const transit = chosen.get(p);
    const a = clusters.find((c) => c.name === p.clusters[0]);
    const b = clusters.find((c) => c.name === p.clusters[1]);
    if (!transit || !a || !b) continue;
    const [addressA, addressB] = transitAddresses(transit.cidr);
    planned.push({
      name: p.meta.name,
      clusters: [a.name, b.name],
      transitCIDR: formatCidr(transit.cidr),
      transitFrom: transit.from,
      sides: [side(a, b, addressA, addressB), side(b, a, addressB, addressA)],
    });
  }
  return planned;
}

/** What cluster `from` can reach of cluster `to`, and why: what `podnet plan` prints and probes explain. */
export interface PeerReachability {
  from: string;
  to: string;
  /** A ClusterPeering connects the two routers. */
  peered: boolean;
  /** `to`'s node addresses (and so its NodePorts) answer `from`'s pods, nodes and external hosts. */
  nodesReachable: boolean;
  /** `from`'s pods can connect to `to`'s pod IPs directly (e.g. a DNS pod's IP). */
  podsAddressable: boolean;
  /** The responder in `to` sees the client pod's own IP (no masquerade on the way). */
  clientIpKept: boolean;
  /** One sentence: yes/no and why, with the way around when there is one. */
  reason: string;
}

/** The peering that connects clusters `a` and `b`, in either order. */
export function peeringBetween(plan: AddressPlan, a: string, b: string): PeeringPlan | undefined {
  return (plan.peerings ?? []).find(
    (p) => (p.clusters[0] === a && p.clusters[1] === b) || (p.clusters[0] === b && p.clusters[1] === a),
  );
}

export function peeringReachability(plan: AddressPlan, from: string, to: string): PeerReachability {
  const src = plan.clusters.find((c) => c.name === from);
  const dst = plan.clusters.find((c) => c.name === to);
  const base = { from, to };
  if (!src || !dst)
    return {
      ...base,
      peered: false,
      nodesReachable: false,
      podsAddressable: false,
      clientIpKept: false,
      reason: `no: the plan has no cluster ${!src ? from : to}`,
    };
  if (from === to)
    return {
      ...base,
      peered: true,
      nodesReachable: true,
      podsAddressable: true,
      clientIpKept: true,
      reason: "yes: the same cluster (a flat pod network, no NAT)",
    };
  const peering = peeringBetween(plan, from, to);
  const dstPods = dst.ranges.podCIDRs.join(", ");
  const srcPods = src.ranges.podCIDRs.join(", ");
  if (!peering)
    return {
      ...base,
      peered: false,
      nodesReachable: false,
      podsAddressable: false,
      clientIpKept: false,
      reason: `no: clusters ${from} and ${to} are not peered, so ${from}'s router has no route to any range of ${to}; declare a ClusterPeering with clusters: [${from}, ${to}]`,
    };
  const srcRouted = src.fabric.podsAddressableFromOutside;
  const dstRouted = dst.fabric.podsAddressableFromOutside;
  // Replies to a pod of `from` come back to its own IP (routed) or to its node's (masqueraded).
  const repliesReturn = srcRouted || src.fabric.masquerade;
  const noWayBack = `${from}'s pod range ${srcPods} is not advertised to its router and fabric.masquerade is off, so replies from ${to} have no way back to ${from}'s pods`;
  if (!dstRouted) {
    const why =
      dst.fabric.mode === "vxlan"
        ? `cluster ${to} uses the vxlan fabric: its pod IPs (${dstPods}) exist only inside ${to} (encapsulated between its nodes), so no router holds a route to them`
        : `cluster ${to} does not advertise its pod range ${dstPods} to its router (routed without fabric.advertiseToRouter), so the peering carries no route to it`;
    return {
      ...base,
      peered: true,
      nodesReachable: repliesReturn,
      podsAddressable: false,
      clientIpKept: false,
      reason: `no: ${why}; reach its pods through a Service with a load-balancer IP (${dst.ranges.loadBalancerCIDRs.join(", ") || "no pool"}) or a NodePort on its nodes (${dst.ranges.nodeCIDR})`,
    };
  }
  if (!repliesReturn)
    return {
      ...base,
      peered: true,
      nodesReachable: false,
      podsAddressable: false,
      clientIpKept: false,
      reason: `no: ${noWayBack}; set fabric.advertiseToRouter: true on ${from} (routed), or fabric.masquerade: true`,
    };
  if (!srcRouted)
    return {
      ...base,
      peered: true,
      nodesReachable: true,
      podsAddressable: true,
      clientIpKept: false,
      reason: `yes, masqueraded: ${to} advertises ${dstPods} and peering ${peering.name} carries it, but ${from}'s pod range ${srcPods} is not routed outside ${from}, so its nodes masquerade pods to the node address (the responder sees the node, not the pod)`,
    };
  return {
    ...base,
    peered: true,
    nodesReachable: true,
    podsAddressable: true,
    clientIpKept: true,
    reason: `yes, without NAT: both pod ranges are advertised to their routers (${from}: ${srcPods}; ${to}: ${dstPods}) and peering ${peering.name} carries them, so the responder sees the client pod's own IP`,
  };
}

/** Which cluster range an address falls in, e.g. `{cluster: "c2", what: "pod", cidr: "10.2.0.0/16"}`. */
export interface AddressOwner {
  cluster: string;
  what: "pod" | "service" | "node" | "external" | "load-balancer";
  cidr: string;
}

export function ownerOfAddress(plan: AddressPlan, address: string): AddressOwner | undefined {
  const ip = tryParseIp(address);
  if (!ip) return undefined;
  for (const c of plan.clusters) {
    const r = c.ranges;
    const candidates: [AddressOwner["what"], string[]][] = [
      ["pod", r.podCIDRs],
      ["service", r.serviceCIDRs],
      ["node", [r.nodeCIDR]],
      ["external", [r.externalCIDR]],
      ["load-balancer", r.loadBalancerCIDRs],
    ];
    for (const [what, cidrs] of candidates)
      for (const text of cidrs) {
        const cidr = tryParseCidr(text);
        if (cidr && cidr.family === ip.family && containsIp(cidr, ip))
          return { cluster: c.name, what, cidr: text };
      }
    if (c.externalHosts.some((h) => h.address === address))
      return { cluster: c.name, what: "external", cidr: address };
  }
  return undefined;
}
