/**
 * Checks of forwarded DNS zones that need every cluster (src/api reads one Cluster at a time):
 * - `forward: {cluster: X}` names a declared Cluster; over TLS, X serves DNS over TLS (spec.dns.tls);
 * - the zone is inside X's cluster domain (X's DNS answers only its own zones);
 * - shadowing (warning): a zone inside the forwarding cluster's own domain that covers a namespace existing
 *   there (`NS.svc.DOMAIN`, or `svc.DOMAIN` / `DOMAIN` for all of them) hides that namespace's Services
 *   from the cluster's own pods: their names are answered by the other side.
 */
import type { Diagnostic } from "../api/diagnostics.js";
import type { Cluster, DesiredState, DnsForwardZone } from "../api/types.js";

function inZone(name: string, zone: string): boolean {
  return name === zone || name.endsWith(`.${zone}`);
}

/** The namespaces of `cluster` whose Service names `zone` covers (empty: none). */
export function shadowedNamespaces(zone: string, cluster: Cluster, state: DesiredState): string[] {
  const domain = cluster.clusterDomain;
  if (!inZone(zone, domain)) return [];
  const local = new Set<string>();
  for (const ns of state.namespaces) if (ns.meta.cluster === cluster.meta.name) local.add(ns.meta.name);
  for (const list of [state.pods, state.services, state.endpointSlices, state.networkPolicies])
    for (const o of list) if (o.meta.cluster === cluster.meta.name) local.add(o.meta.namespace);
  const svcZone = `svc.${domain}`;
  // The whole domain or every Service name: all namespaces.
  if (zone === domain || zone === svcZone) return [...local].sort();
  if (!zone.endsWith(`.${svcZone}`)) return [];
  const labels = zone.slice(0, -svcZone.length - 1).split(".");
  const ns = labels[labels.length - 1] as string;
  return local.has(ns) ? [ns] : [];
}

function describeTarget(f: DnsForwardZone): string {
  return f.cluster !== undefined ? `cluster ${f.cluster}` : `the servers ${f.servers.join(", ")}`;
}

export function checkDnsForwards(state: DesiredState): Diagnostic[] {
  const out: Diagnostic[] = [];
  const names = state.clusters.map((c) => c.meta.name);
  for (const cluster of state.clusters) {
    const name = cluster.meta.name;
    cluster.dns.forward.forEach((f, i) => {
      const at = {
        object: `Cluster ${name}`,
        ...(f.source ? { source: f.source } : cluster.meta.source ? { source: cluster.meta.source } : {}),
      };
      if (f.cluster !== undefined) {
        const target = state.clusters.find((c) => c.meta.name === f.cluster);
        if (!target) {
          out.push({
            severity: "error",
            code: "dns-forward-cluster",
            ...at,
            path: `spec.dns.forward[${i}].cluster`,
            message: `unknown cluster ${JSON.stringify(f.cluster)}: declared clusters: ${names.join(", ")}`,
            hint: `name one of: ${names.filter((n) => n !== name).join(", ") || "(declare another Cluster)"}`,
          });
          return;
        }
        if (f.tls && !target.dns.tls) {
          out.push({
            severity: "error",
            code: "dns-forward-tls",
            ...at,
            path: `spec.dns.forward[${i}].tls`,
            message: `cluster ${f.cluster}'s DNS does not serve DNS over TLS: the forward over TLS would fail`,
            hint: `add spec.dns.tls: {} to Cluster ${f.cluster} (clientAuth: require for mutual TLS), or remove tls here`,
          });
        }
        if (!inZone(f.zone, target.clusterDomain)) {
          out.push({
            severity: "warning",
            code: "dns-forward-domain",
            ...at,
            path: `spec.dns.forward[${i}].zone`,
            message: `zone ${f.zone} is outside cluster ${f.cluster}'s domain ${target.clusterDomain}: its DNS answers only its own zones`,
            hint: `forward a zone inside ${target.clusterDomain}, e.g. NAMESPACE.svc.${target.clusterDomain}`,
          });
        }
      }
      const shadowed = shadowedNamespaces(f.zone, cluster, state);
      if (shadowed.length) {
        const what =
          shadowed.length === 1
            ? `namespace ${shadowed[0]} of cluster ${name}: its Services' names`
            : `namespaces ${shadowed.join(", ")} of cluster ${name}: their Services' names`;
        out.push({
          severity: "warning",
          code: "dns-forward-shadows",
          ...at,
          path: `spec.dns.forward[${i}].zone`,
          message: `forwarded zone ${f.zone} shadows ${what} will resolve in ${describeTarget(f)}, not here`,
          hint:
            shadowed.length === 1
              ? `give the remote namespace a name cluster ${name} does not use and forward that zone, or move cluster ${name}'s objects out of namespace ${shadowed[0]}`
              : "forward one namespace's zone (NAMESPACE.svc.DOMAIN) that no local namespace uses",
        });
      }
    });
  }
  return out;
}
