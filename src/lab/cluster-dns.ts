/**
 * The cluster DNS of a lab, as a cluster has it: a DNS pod (`kube-system/cluster-dns`, labelled
 * `k8s-app: kube-dns`) behind the `kube-system/kube-dns` Service, whose ClusterIP the address plan reserves
 * (the 10th address of the service range), and every pod's resolv.conf pointing there with the Kubernetes
 * search path. The lab adds the two objects to each cluster's manifests (unless the user declares
 * kube-dns), so they are planned, attached by CNI and proxied like any other; the workloads agent runs
 * podnet's DNS server (src/dns) inside the DNS pod's network namespace, answering from the lab's state.
 * Pure helpers here; the agent and converge do the I/O.
 */
import type { Cluster, DnsForwardZone } from "../api/types.js";
import { peeringReachability } from "../plan/peering.js";
import type { AddressPlan, ClusterPlan } from "../plan/types.js";
import { labDir } from "./names.js";
import { CLUSTER_ANNOTATION, type StoredObject } from "./store.js";

export const DNS_NAMESPACE = "kube-system";
export const DNS_POD = "cluster-dns";
export const DNS_SERVICE = "kube-dns";
export const DNS_PORT = 53;
/** DNS over TLS (RFC 7858). */
export const DNS_TLS_PORT = 853;
/**
 * The NodePort Service the lab adds to a cluster another cluster forwards to (`cluster: X`): the way in
 * when X's pod IPs are not reachable from the forwarding cluster (overlay, or not advertised).
 */
export const DNS_PEERING_SERVICE = "kube-dns-peering";

/** Is this the lab's DNS pod (whose port 53 the DNS server holds, not a responder)? */
export function isClusterDnsPod(p: { namespace: string; name: string }): boolean {
  return p.namespace === DNS_NAMESPACE && p.name === DNS_POD;
}

interface ObjectView {
  kind?: string;
  metadata?: { name?: string; namespace?: string; annotations?: Record<string, string> };
  spec?: { dns?: { tls?: unknown; forward?: { cluster?: unknown }[] } };
}

/** Raw `spec.dns` facts of the Clusters (before validation: the loader reports bad values). */
function rawDnsFacts(views: readonly ObjectView[]): { servesTls: Set<string>; forwardedTo: Set<string> } {
  const servesTls = new Set<string>();
  const forwardedTo = new Set<string>();
  for (const v of views) {
    if (v.kind !== "Cluster") continue;
    const dns = v.spec?.dns;
    if (dns?.tls && typeof dns.tls === "object") servesTls.add(v.metadata?.name ?? "");
    for (const f of Array.isArray(dns?.forward) ? dns.forward : [])
      if (typeof f?.cluster === "string") forwardedTo.add(f.cluster);
  }
  return { servesTls, forwardedTo };
}

/**
 * The manifests the lab adds: per cluster a DNS pod and the kube-dns Service, unless the cluster already
 * declares kube-system/kube-dns (then the user runs their own). With several clusters each pair carries
 * the cluster annotation. A cluster that serves DNS over TLS (spec.dns.tls) gets port 853 on its DNS pod;
 * a cluster another one forwards to (spec.dns.forward[].cluster) gets the NodePort Service
 * kube-system/kube-dns-peering (53/TCP, and 853/TCP with TLS).
 */
export function clusterDnsObjects(objects: readonly StoredObject[]): Record<string, unknown>[] {
  const views = objects.map((o) => o.value as ObjectView);
  const clusters = views.filter((v) => v.kind === "Cluster").map((v) => v.metadata?.name ?? "");
  const targets: (string | undefined)[] = clusters.length > 1 ? clusters : [undefined];
  const facts = rawDnsFacts(views);
  const out: Record<string, unknown>[] = [];
  for (const cluster of targets) {
    const tls = facts.servesTls.has(cluster ?? clusters[0] ?? "");
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
                ...(tls ? [{ name: "dns-tls", containerPort: DNS_TLS_PORT, protocol: "TCP" }] : []),
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
            ...(tls ? [{ name: "dns-tls", port: DNS_TLS_PORT, protocol: "TCP", targetPort: "dns-tls" }] : []),
          ],
        },
      },
    );
    if (cluster !== undefined && facts.forwardedTo.has(cluster)) {
      // TCP only: the planner gives UDP and TCP NodePorts of one port number separately, and a forwarder
      // falls back from UDP to TCP on the same address; over TCP every answer fits (force_tcp).
      out.push({
        apiVersion: "v1",
        kind: "Service",
        metadata: metadata(DNS_PEERING_SERVICE),
        spec: {
          type: "NodePort",
          selector: { "k8s-app": "kube-dns" },
          ports: [
            { name: "dns-tcp", port: DNS_PORT, protocol: "TCP", targetPort: "dns-tcp" },
            ...(tls ? [{ name: "dns-tls", port: DNS_TLS_PORT, protocol: "TCP", targetPort: "dns-tls" }] : []),
          ],
        },
      });
    }
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
 * The lab's DNS PKI (DNS over TLS between its clusters): a lab CA and, per cluster DNS that serves or
 * forwards over TLS, one certificate for the name `dns.CLUSTER.LAB` usable as server and as client
 * (mutual TLS) certificate. Files in the lab's directory, so `lab down` removes them; dns-certs.ts writes
 * them.
 */
export function labDnsPki(lab: string) {
  const dir = `${labDir(lab)}/pki`;
  return {
    dir,
    ca: `${dir}/ca.pem`,
    caKey: `${dir}/ca-key.pem`,
    /** The name cluster `cluster`'s DNS certificate is issued for (and verified by). */
    serverName: (cluster: string) => `dns.${cluster}.${lab}`,
    cert: (cluster: string) => `${dir}/dns.${cluster}.${lab}.pem`,
    key: (cluster: string) => `${dir}/dns.${cluster}.${lab}-key.pem`,
  };
}

/** Clusters whose DNS needs a certificate: those serving DoT and those forwarding over TLS to a cluster. */
export function clustersNeedingDnsCertificates(clusters: readonly Cluster[]): string[] {
  return clusters
    .filter((c) => c.dns.tls !== undefined || c.dns.forward.some((f) => f.tls !== undefined))
    .map((c) => c.meta.name);
}

/** What the lab knows beyond one cluster, to resolve `forward: {cluster: X}` entries. */
export interface LabDnsContext {
  lab: string;
  /** The lab's address plan: every cluster's addresses and the peerings between them. */
  plan: AddressPlan;
}

/** The upstreams (as the server's configuration writes them) of a forward entry to another cluster. */
export interface ClusterUpstreams {
  /** `IP:PORT` or `tls://IP:PORT`. */
  servers: string[];
  /** How: the DNS pod's IP (pods addressable) or every node with the peering NodePort. */
  via: "pod" | "nodePort";
  /** Over the NodePort path: TCP only (see clusterDnsObjects). */
  forceTcp: boolean;
}

/**
 * Where `from`'s DNS sends a zone forwarded to cluster `entry.cluster`: the target's DNS pod when `from`'s
 * pods reach its pod IPs (routed, advertised, peered: src/plan/peering.ts says), else each of its nodes on
 * the kube-dns-peering NodePort (an overlay cluster too). A string says why neither is possible.
 */
export function clusterUpstreams(
  from: string,
  entry: DnsForwardZone,
  context: LabDnsContext,
): ClusterUpstreams | string {
  const target = context.plan.clusters.find((c) => c.name === entry.cluster);
  if (!target) return `cluster ${entry.cluster} is not planned`;
  const tls = entry.tls !== undefined;
  const scheme = tls ? "tls://" : "";
  const reach = peeringReachability(context.plan, from, target.name);
  if (reach.podsAddressable) {
    const pod = target.pods.find((p) => isClusterDnsPod(p));
    if (!pod?.ips.length) return `cluster ${target.name} has no DNS pod (it declares its own kube-dns)`;
    const port = tls ? DNS_TLS_PORT : DNS_PORT;
    return { servers: pod.ips.map((ip) => `${scheme}${hostPort(ip, port)}`), via: "pod", forceTcp: false };
  }
  if (!reach.nodesReachable) return `cluster ${target.name} is not reachable from ${from}: ${reach.reason}`;
  const service = target.services.find(
    (s) => s.namespace === DNS_NAMESPACE && s.name === DNS_PEERING_SERVICE,
  );
  const nodePort = service?.ports.find((p) => p.name === (tls ? "dns-tls" : "dns-tcp"))?.nodePort;
  if (nodePort === undefined || !target.nodes.length)
    return `cluster ${target.name} has no ${DNS_NAMESPACE}/${DNS_PEERING_SERVICE} NodePort${tls ? " for 853" : ""}`;
  return {
    servers: target.nodes.map((n) => `${scheme}${hostPort(n.address, nodePort)}`),
    via: "nodePort",
    forceTcp: !tls,
  };
}

/** `ip`, `ip:port`, `[v6]:port` or a bare IPv6 address, with `port` added when none is written. */
function withDefaultPort(server: string, port: number): string {
  if (server.startsWith("[")) return server;
  const colons = (server.match(/:/g) ?? []).length;
  return colons === 1 ? server : hostPort(server, port);
}

function hostPort(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/**
 * The DNS server's configuration for a cluster (the Corefile a kubeadm cluster's CoreDNS has, from the
 * Cluster's spec.dns): the cluster zone and its reverse zones, each forwarded zone, the default upstream;
 * with spec.dns.tls the same again on 853 over TLS. A zone forwarded to another cluster of the lab goes
 * to the addresses `clusterUpstreams` picks (several: failover in order); over TLS the upstream is
 * verified by its name `dns.X.LAB` against the lab CA (or `tls.ca`), presenting this cluster's own
 * certificate (for the remote's mutual TLS). An entry that cannot be resolved yet (the target not
 * planned) is left out; `problems` says which.
 * No cache: answers follow the lab's state at once (CoreDNS's `cache 30` would hold them up to 5 s).
 */
export function clusterDnsConfig(
  cluster: Cluster,
  podIps: readonly string[],
  context?: LabDnsContext,
  problems: string[] = [],
): string {
  const name = cluster.meta.name;
  const pki = context ? labDnsPki(context.lab) : undefined;
  const forwards: string[] = [];
  for (const f of cluster.dns.forward) {
    let servers = f.servers;
    let forceTcp = false;
    if (f.cluster !== undefined) {
      const upstreams = context ? clusterUpstreams(name, f, context) : "no lab to resolve it in";
      if (typeof upstreams === "string") {
        problems.push(`zone ${f.zone} is not forwarded to cluster ${f.cluster}: ${upstreams}`);
        continue;
      }
      servers = upstreams.servers;
      forceTcp = upstreams.forceTcp;
    } else if (f.tls) {
      servers = servers.map((s) => `tls://${withDefaultPort(s, DNS_TLS_PORT)}`);
    }
    const options: string[] = [];
    if (servers.length > 1) options.push("policy sequential", "failover SERVFAIL REFUSED");
    if (forceTcp) options.push("force_tcp");
    if (f.tls) {
      const ca = f.tls.ca ?? pki?.ca;
      const serverName = f.tls.serverName ?? (f.cluster && pki ? pki.serverName(f.cluster) : undefined);
      if (!ca || !serverName) {
        problems.push(`zone ${f.zone}: no CA or server name to verify the upstream with; not forwarded`);
        continue;
      }
      options.push(pki ? `tls ${pki.cert(name)} ${pki.key(name)} ${ca}` : `tls ${ca}`);
      options.push(`tls_servername ${serverName}`);
    }
    const head = `    forward ${f.zone} ${servers.join(" ")}`;
    forwards.push(
      options.length ? `${head} {\n${options.map((o) => `        ${o}`).join("\n")}\n    }` : head,
    );
  }
  const body = [
    `    kubernetes ${cluster.clusterDomain} in-addr.arpa ip6.arpa {`,
    `        pods ${cluster.dns.podRecords}`,
    `        ttl ${cluster.dns.ttl}`,
    "        fallthrough in-addr.arpa ip6.arpa",
    "    }",
    ...forwards,
    ...(cluster.dns.upstream.length ? [`    forward . ${cluster.dns.upstream.join(" ")}`] : []),
  ];
  const lines = [
    `.:${DNS_PORT} {`,
    // The pod's own addresses: the kube-dns Service sends its traffic there.
    `    bind ${podIps.join(" ")}`,
    ...body,
    "}",
  ];
  if (cluster.dns.tls && pki) {
    const clientAuth =
      cluster.dns.tls.clientAuth === "require" ? " {\n        client_auth require_and_verify\n    }" : "";
    lines.push(
      `tls://.:${DNS_TLS_PORT} {`,
      `    bind ${podIps.join(" ")}`,
      `    tls ${pki.cert(name)} ${pki.key(name)} ${pki.ca}${clientAuth}`,
      ...body,
      "}",
    );
  }
  lines.push("");
  return lines.join("\n");
}
