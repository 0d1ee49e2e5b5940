/**
 * podnet.dev/v1alpha1 ClusterPeering: the link between two clusters' routers.
 *
 *   kind: ClusterPeering
 *   metadata: {name: c1-c2}
 *   spec:
 *     clusters: [c1, c2]          # exactly two declared Clusters, distinct
 *     transitCIDR: 192.0.2.0/30   # optional: the point-to-point network between the two routers
 *
 * The reader checks the object alone; `checkPeerings` checks it against the declared clusters and the
 * other peerings (the loader calls it). Overlaps of the transit network with cluster ranges are range
 * checks (src/plan/checks.ts), where every other overlap is found.
 */
import type { Field, ObjCtx } from "./context.js";
import type { ReadMeta } from "./meta.js";
import { clusterScopedMeta } from "./meta.js";
import { pathOf } from "./path.js";
import { readCidr } from "./service.js";
import type { ClusterPeering } from "./types.js";

const SPEC_FIELDS = ["clusters", "transitCIDR"];
/** The longest transit prefix: a /31 holds the two router addresses (RFC 3021). */
export const MAX_TRANSIT_PREFIX = 31;

export function readClusterPeering(o: ObjCtx, meta: ReadMeta): ClusterPeering {
  const specF = o.root.get("spec");
  const spec = specF.map();
  if (!specF.set) specF.required("Required value: spec.clusters names the two clusters to connect");
  spec.only(SPEC_FIELDS);
  const names = readClusterNames(spec.get("clusters"));
  const peering: ClusterPeering = {
    kind: "ClusterPeering",
    meta: clusterScopedMeta(meta, o.location),
    clusters: [names[0] ?? "", names[1] ?? ""],
  };
  const transitF = spec.get("transitCIDR");
  const transit = readCidr(transitF);
  if (transit && transit.family !== 4)
    transitF.error(
      `invalid value ${JSON.stringify(transitF.v)}: the transit network must be IPv4 (IPv6 routes over it use link-local next hops)`,
      "use an IPv4 CIDR such as 192.0.2.0/30, or remove transitCIDR to have one allocated",
    );
  else if (transit && transit.prefix > MAX_TRANSIT_PREFIX)
    transitF.error(
      `invalid value ${JSON.stringify(transitF.v)}: a /${transit.prefix} holds fewer than the two router addresses`,
      "use a /30 (or a /31)",
    );
  else if (transit) peering.transitCIDR = transitF.v as string;
  return peering;
}

function readClusterNames(f: Field): string[] {
  if (!f.set) {
    f.required("Required value: the two clusters to connect", "write clusters: [c1, c2]");
    return [];
  }
  const items = f.list();
  if (!Array.isArray(f.v)) return [];
  const names = items.map((item) => item.str() ?? "");
  if (names.length !== 2)
    f.error(
      `invalid value: a peering connects exactly two clusters, found ${names.length}`,
      names.length > 2
        ? "declare one ClusterPeering per pair of clusters"
        : "name two clusters: clusters: [c1, c2]",
    );
  else if (names[0] !== "" && names[0] === names[1])
    items[1]?.error(
      `Duplicate value: ${JSON.stringify(names[1])}: a cluster cannot peer with itself`,
      "name two different clusters",
    );
  return names.length === 2 ? names : [];
}

export interface PeeringEntry {
  o: ObjCtx;
  peering: ClusterPeering;
}

/**
 * Cross-object checks: both clusters are declared, and each pair of clusters has at most one peering.
 * Returns the peerings that pass (the others are reported on `o`, with the field's line).
 */
export function checkPeerings(
  entries: readonly PeeringEntry[],
  clusters: readonly string[],
): ClusterPeering[] {
  const kept: ClusterPeering[] = [];
  const byPair = new Map<string, PeeringEntry>();
  const byName = new Map<string, PeeringEntry>();
  for (const e of entries) {
    const { peering, o } = e;
    const [a, b] = peering.clusters;
    if (a === "" || b === "" || a === b) continue; // the reader reported it
    const sameName = byName.get(peering.meta.name);
    if (sameName) {
      o.error(
        pathOf("metadata", "name"),
        `duplicate ClusterPeering ${peering.meta.name}: first declared at ${at(sameName)}`,
        "rename or remove one of them",
      );
      continue;
    }
    byName.set(peering.meta.name, e);
    let known = true;
    peering.clusters.forEach((name, i) => {
      if (clusters.includes(name)) return;
      known = false;
      o.error(
        pathOf("spec", "clusters", i),
        `unknown cluster ${JSON.stringify(name)}: declared clusters: ${clusters.join(", ")}`,
        `name one of: ${clusters.join(", ")} (or declare a Cluster named ${name})`,
      );
    });
    if (!known) continue;
    const pair = [a, b].sort().join("\u0000");
    const first = byPair.get(pair);
    if (first) {
      o.error(
        pathOf("spec", "clusters"),
        `clusters ${a} and ${b} are already peered by ClusterPeering ${first.peering.meta.name} (${at(first)})`,
        "keep one peering per pair of clusters: remove this one or merge the two",
      );
      continue;
    }
    byPair.set(pair, e);
    kept.push(peering);
  }
  return kept;
}

function at(e: PeeringEntry): string {
  const loc = e.peering.meta.source ?? e.o.location;
  return `${loc.file}:${loc.line}`;
}
