/**
 * Naming things in a lab from the command line, kubectl-style: `POD` (in -n NAMESPACE, default
 * "default"), `NAMESPACE/POD`, `node/NAME`, `external/NAME` (or `ext/NAME`), an IP address, or a
 * Service name (`svc`, `svc.ns`, `svc.ns.svc.<domain>`) which stands for its ClusterIP. Pure: reads
 * the store's state only.
 */
import { isIP } from "node:net";
import type { ClusterPlan } from "../plan/types.js";
import { netnsNames, netnsPath } from "./names.js";
import type { LabState } from "./store.js";

export interface Endpoint {
  /** How to show it: `shop/web-0`, `node/node-1`, `external/internet`, `10.0.0.1`. */
  label: string;
  kind: "pod" | "node" | "external" | "ip" | "service";
  cluster?: string;
  /** Its network namespace (path), when it is one of the lab's. */
  netns?: string;
  /** Its addresses (first = the one probes use). */
  ips: string[];
}

export class TargetError extends Error {}

function clusterOf(state: LabState, cluster?: string): ClusterPlan[] {
  const all = state.plan?.clusters ?? [];
  return cluster ? all.filter((c) => c.name === cluster) : all;
}

export function resolveEndpoint(
  state: LabState,
  lab: string,
  text: string,
  namespace = "default",
  options: { allowIp?: boolean; cluster?: string } = {},
): Endpoint {
  const clusters = clusterOf(state, options.cluster);
  const slash = text.indexOf("/");
  const head = slash > 0 ? text.slice(0, slash) : "";
  const rest = slash > 0 ? text.slice(slash + 1) : text;
  if (head === "node" || head === "nodes") {
    for (const c of clusters) {
      const n = c.nodes.find((x) => x.name === rest);
      if (n)
        return {
          label: `node/${n.name}`,
          kind: "node",
          cluster: c.name,
          netns: netnsPath(netnsNames.node(lab, c.name, n.name)),
          ips: [n.address],
        };
    }
    throw new TargetError(
      `no node "${rest}" in lab ${lab}; nodes: ${clusters.flatMap((c) => c.nodes.map((n) => n.name)).join(", ")}`,
    );
  }
  if (head === "external" || head === "ext") {
    for (const c of clusters) {
      const h = c.externalHosts.find((x) => x.name === rest);
      if (h)
        return {
          label: `external/${h.name}`,
          kind: "external",
          cluster: c.name,
          netns: netnsPath(netnsNames.external(lab, c.name, h.name)),
          ips: [h.address],
        };
    }
    throw new TargetError(
      `no external host "${rest}" in lab ${lab}; external hosts: ${clusters.flatMap((c) => c.externalHosts.map((h) => h.name)).join(", ") || "none"}`,
    );
  }
  if (options.allowIp !== false && isIP(text)) return { label: text, kind: "ip", ips: [text] };
  const ns = head || namespace;
  const pod = state.pods.find(
    (p) => p.namespace === ns && p.name === rest && (!options.cluster || p.cluster === options.cluster),
  );
  if (pod)
    return {
      label: `${pod.namespace}/${pod.name}`,
      kind: "pod",
      cluster: pod.cluster,
      netns: pod.netns,
      ips: pod.ips,
    };
  // A Service name: svc, svc.ns, svc.ns.svc[.domain]
  const parts = text.split(".");
  const svcName = parts[0] ?? "";
  const svcNs = parts[1] ?? namespace;
  for (const c of clusters) {
    const s = c.services.find((x) => x.name === svcName && x.namespace === svcNs);
    if (s?.clusterIPs.length)
      return {
        label: `service/${s.namespace}/${s.name}`,
        kind: "service",
        cluster: c.name,
        ips: s.clusterIPs,
      };
  }
  const inNs = state.pods
    .filter((p) => p.namespace === ns)
    .map((p) => p.name)
    .sort();
  throw new TargetError(
    `"${text}" is not a pod in namespace ${ns}${options.allowIp === false ? "" : ", an IP address"}, node/NAME, external/NAME or a service of lab ${lab}` +
      (inNs.length
        ? `; pods in ${ns}: ${inNs.slice(0, 10).join(", ")}${inNs.length > 10 ? ", …" : ""}`
        : `; there are no pods in namespace ${ns} (use -n)`),
  );
}
