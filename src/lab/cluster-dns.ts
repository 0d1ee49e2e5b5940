/**
 * The cluster DNS of a lab, as a cluster has it: a DNS pod (`kube-system/cluster-dns`, labelled
 * `k8s-app: kube-dns`) behind the `kube-system/kube-dns` Service, whose ClusterIP the address plan reserves
 * (the 10th address of the service range), and every pod's resolv.conf pointing there with the Kubernetes
 * search path. The lab adds the two objects to each cluster's manifests (unless the user declares
 * kube-dns), so they are planned, attached by CNI and proxied like any other; the workloads agent runs
 * podnet's DNS server (src/dns) inside the DNS pod's network namespace, answering from the lab's state.
 * Pure helpers here; the agent and converge do the I/O.
 */
import type { Cluster } from "../api/types.js";
import type { ClusterPlan } from "../plan/types.js";
import { CLUSTER_ANNOTATION, type StoredObject } from "./store.js";

export const DNS_NAMESPACE = "kube-system";
export const DNS_POD = "cluster-dns";
export const DNS_SERVICE = "kube-dns";
export const DNS_PORT = 53;

/** Is this the lab's DNS pod (whose port 53 the DNS server holds, not a responder)? */
export function isClusterDnsPod(p: { namespace: string; name: string }): boolean {
  return p.namespace === DNS_NAMESPACE && p.name === DNS_POD;
}

interface ObjectView {
  kind?: string;
  metadata?: { name?: string; namespace?: string; annotations?: Record<string, string> };
}

/**
 * The manifests the lab adds: per cluster a DNS pod and the kube-dns Service, unless the cluster already
 * declares kube-system/kube-dns (then the user runs their own). With several clusters each pair carries
 * the cluster annotation.
 */
export function clusterDnsObjects(objects: readonly StoredObject[]): Record<string, unknown>[] {
  const views = objects.map((o) => o.value as ObjectView);
  const clusters = views.filter((v) => v.kind === "Cluster").map((v) => v.metadata?.name ?? "");
  const targets: (string | undefined)[] = clusters.length > 1 ? clusters : [undefined];
  const out: Record<string, unknown>[] = [];
  for (const cluster of targets) {
    const declared = views.some(
      (v) =>
        v.kind === "Service" &&
        v.metadata?.namespace === DNS_NAMESPACE &&
        v.metadata?.name === DNS_SERVICE &&
        (cluster === undefined || v.metadata?.annotations?.[CLUSTER_ANNOTATION] === cluster),
    );
    if (declared) continue;
    const metadata = (name: string, extra: Record<string, unknown> = {}) => ({
      name,
      namespace: DNS_NAMESPACE,
      ...extra,
      annotations: {
        "podnet.dev/system": "cluster-dns",
        ...(cluster ? { [CLUSTER_ANNOTATION]: cluster } : {}),
      },
    });
    out.push(
      {
        apiVersion: "v1",
        kind: "Pod",
        metadata: metadata(DNS_POD, { labels: { "k8s-app": "kube-dns" } }),
        spec: {
          containers: [
            {
              name: "dns",
              image: "podnet-dns",
              ports: [
                { name: "dns", containerPort: DNS_PORT, protocol: "UDP" },
                { name: "dns-tcp", containerPort: DNS_PORT, protocol: "TCP" },
              ],
            },
          ],
        },
      },
      {
        apiVersion: "v1",
        kind: "Service",
        metadata: metadata(DNS_SERVICE, { labels: { "k8s-app": "kube-dns" } }),
        spec: {
          selector: { "k8s-app": "kube-dns" },
          ports: [
            { name: "dns", port: DNS_PORT, protocol: "UDP", targetPort: "dns" },
            { name: "dns-tcp", port: DNS_PORT, protocol: "TCP", targetPort: "dns-tcp" },
          ],
        },
      },
    );
  }
  return out;
}

/** A pod's /etc/resolv.conf (the kubelet's ClusterFirst): the cluster DNS, the search path, ndots:5. */
export function podResolvConf(namespace: string, plan: ClusterPlan): string {
  const d = plan.domain;
  return [
    `search ${namespace}.svc.${d} svc.${d} ${d}`,
    `nameserver ${plan.dnsServiceIP}`,
    "options ndots:5",
    "",
  ].join("\n");
}

/**
 * The DNS server's configuration for a cluster (the Corefile a kubeadm cluster's CoreDNS has, from the
 * Cluster's spec.dns): the cluster zone and its reverse zones, each forwarded zone, the default upstream.
 * No cache: answers follow the lab's state at once (CoreDNS's `cache 30` would hold them up to 5 s).
 */
export function clusterDnsConfig(cluster: Cluster, podIps: readonly string[]): string {
  const lines = [
    `.:${DNS_PORT} {`,
    // The pod's own addresses: the kube-dns Service sends its traffic there.
    `    bind ${podIps.join(" ")}`,
    `    kubernetes ${cluster.clusterDomain} in-addr.arpa ip6.arpa {`,
    `        pods ${cluster.dns.podRecords}`,
    `        ttl ${cluster.dns.ttl}`,
    "        fallthrough in-addr.arpa ip6.arpa",
    "    }",
    ...cluster.dns.forward.map((f) => `    forward ${f.zone} ${f.servers.join(" ")}`),
    ...(cluster.dns.upstream.length ? [`    forward . ${cluster.dns.upstream.join(" ")}`] : []),
    "}",
    "",
  ];
  return lines.join("\n");
}
