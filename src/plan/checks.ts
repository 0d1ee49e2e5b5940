/**
 * Address-range checks from the networking rules: every addressable range is unique, within a
 * cluster and across the clusters of one file, and no service range aliases anything addressable
 * (replies to an aliased address are captured by the service proxy: a routing black hole).
 */
import type { Diagnostic, SourceLocation } from "../api/diagnostics.js";
import type { DesiredState } from "../api/types.js";
import { type Cidr, cidrsOverlap, formatCidr, tryParseCidr, tryParseIp } from "../ipam/cidr.js";

/** One addressable thing: a range a cluster owns or an address something outside the ranges uses. */
export interface AddressedRange {
  cluster: string;
  /** Human name: `pod CIDR`, `service CIDR`, `external host client`, ... */
  what: string;
  cidr: Cidr;
  isServiceRange: boolean;
  /** Addresses of a host (not whole ranges) are reported as addresses, not CIDRs. */
  isAddress: boolean;
  object: string;
  path: string;
  source?: SourceLocation;
}

/** Every range and fixed address the desired state declares, cluster by cluster. */
export function collectRanges(state: DesiredState): AddressedRange[] {
  const ranges: AddressedRange[] = [];
  for (const cluster of state.clusters) {
    const name = cluster.meta.name;
    const base = { cluster: name, object: `Cluster ${name}`, source: cluster.meta.source, isAddress: false };
    const add = (what: string, text: string, path: string, isServiceRange = false) => {
      const cidr = tryParseCidr(text);
      if (cidr) ranges.push({ ...base, what, cidr, path, isServiceRange });
    };
    add("node CIDR", cluster.nodeCIDR, "spec.nodeCIDR");
    for (const [i, c] of cluster.podCIDRs.entries()) add("pod CIDR", c, `spec.podCIDRs[${i}]`);
    for (const [i, c] of cluster.serviceCIDRs.entries())
      add("service CIDR", c, `spec.serviceCIDRs[${i}]`, true);
    add("external CIDR", cluster.externalCIDR, "spec.externalCIDR");
    for (const [i, c] of cluster.loadBalancerCIDRs.entries())
      add("load-balancer CIDR", c, `spec.loadBalancerCIDRs[${i}]`);
  }
  // External hosts with a fixed address outside their cluster's external network are addressable
  // entities of their own (the router gets a host route to them).
  for (const host of state.externalHosts) {
    const ip = host.address ? tryParseIp(host.address) : undefined;
    if (!ip) continue;
    const cidr: Cidr = { family: ip.family, network: ip.value, prefix: ip.family === 4 ? 32 : 128 };
    const own = state.clusters.find((c) => c.meta.name === host.meta.cluster);
    const ownNet = own ? tryParseCidr(own.externalCIDR) : undefined;
    if (ownNet && cidrsOverlap(ownNet, cidr)) continue;
    ranges.push({
      cluster: host.meta.cluster,
      what: `external host ${host.meta.name}'s address`,
      cidr,
      isServiceRange: false,
      isAddress: true,
      object: `ExternalHost ${host.meta.name}`,
      path: "spec.address",
      source: host.meta.source,
    });
  }
  // A peering's transit network joins two routers: it must be unique like any other range.
  for (const peering of state.peerings ?? []) {
    const cidr = peering.transitCIDR ? tryParseCidr(peering.transitCIDR) : undefined;
    if (!cidr) continue;
    ranges.push({
      cluster: "",
      what: `transit CIDR of peering ${peering.meta.name}`,
      cidr,
      isServiceRange: false,
      isAddress: false,
      object: `ClusterPeering ${peering.meta.name}`,
      path: "spec.transitCIDR",
      source: peering.meta.source,
    });
  }
  return ranges;
}

function describe(r: AddressedRange): string {
  const text = r.isAddress ? formatCidr(r.cidr).replace(/\/(32|128)$/, "") : formatCidr(r.cidr);
  return r.cluster ? `${r.what} ${text} (cluster ${r.cluster})` : `${r.what} ${text}`;
}

/** Pairwise overlap checks over every declared range. Ranges are few (a handful per cluster). */
export function checkRanges(state: DesiredState): Diagnostic[] {
  const ranges = collectRanges(state);
  const diagnostics: Diagnostic[] = [];
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      const a = ranges[i] as AddressedRange;
      const b = ranges[j] as AddressedRange;
      if (!cidrsOverlap(a.cidr, b.cidr)) continue;
      // Report on the later declaration, pointing back at the earlier one.
      const service =
        a.isServiceRange && !b.isServiceRange ? a : !a.isServiceRange && b.isServiceRange ? b : undefined;
      if (service) {
        const other = service === a ? b : a;
        const target = other.isAddress ? "that address" : "addresses in that range";
        diagnostics.push({
          severity: "error",
          code: "service-range-alias",
          object: other.object,
          path: other.path,
          source: other.source,
          message:
            `${describe(service)} aliases ${describe(other)}: the service proxy of cluster ${service.cluster} ` +
            `captures every packet to ${formatCidr(service.cidr)}, so replies from its pods to ${target} would be ` +
            "captured by the service range and never arrive (a routing black hole)",
          hint: `move one of them: a service range must not contain anything addressable (${service.object} ${service.path}, ${other.object} ${other.path})`,
        });
        continue;
      }
      const later = b;
      const sameCluster = a.cluster === b.cluster;
      diagnostics.push({
        severity: "error",
        code: "range-overlap",
        object: later.object,
        path: later.path,
        source: later.source,
        message:
          `${describe(b)} overlaps ${describe(a)}: ` +
          (a.cluster === "" || b.cluster === ""
            ? "a peering's transit network must overlap no other range, or the routers would send its addresses two ways"
            : sameCluster
              ? "an address in both would be ambiguous inside the cluster"
              : "clusters that are connected need unique ranges, or addresses on one side shadow the other"),
        hint: `give each range its own addresses (${a.object} ${a.path}, ${b.object} ${b.path})`,
      });
    }
  }
  return diagnostics;
}
