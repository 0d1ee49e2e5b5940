/**
 * The desired state: what manifests say after loading, validation, defaulting and expansion
 * (Deployments and StatefulSets become Pods). Every planner reads this and nothing else.
 * Plain data: printable, diffable, serialisable as JSON.
 */
import type { SourceLocation } from "./diagnostics.js";

export type Protocol = "TCP" | "UDP" | "SCTP";
export type IpFamily = "IPv4" | "IPv6";

export interface Meta {
  name: string;
  /** Namespaced kinds only; defaulted to `default`. */
  namespace?: string;
  /** The cluster the object belongs to (from the `podnet.dev/cluster` annotation or the only cluster). */
  cluster: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Where the object was declared (for Pods expanded from a workload: the workload). */
  source?: SourceLocation;
}

export interface LabelSelectorRequirement {
  key: string;
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  values: string[];
}

/** metav1.LabelSelector. An empty selector (no labels, no expressions) selects everything. */
export interface LabelSelector {
  matchLabels: Record<string, string>;
  matchExpressions: LabelSelectorRequirement[];
}

// ---------------------------------------------------------------------------------------------
// podnet.dev/v1alpha1 kinds

export type FabricMode = "routed" | "vxlan";

export interface FabricSpec {
  mode: FabricMode;
  /** VXLAN network identifier (vxlan mode). Default 1. */
  vni: number;
  /** VXLAN UDP port (vxlan mode). Default 4789 (IANA). */
  port: number;
  /** Underlay MTU; pod MTU is this in routed mode and this - 50 in vxlan mode. Default 1500. */
  mtu: number;
  /** Routed mode: the upstream router also holds routes to every node's pod block. Default false. */
  advertiseToRouter: boolean;
  /** Masquerade pod egress to destinations outside the cluster's ranges to the node address. Default true. */
  masquerade: boolean;
}

export type PodRecordsMode = "disabled" | "insecure" | "verified";

export interface DnsForwardTls {
  /**
   * Name the upstream's certificate must carry. Default for `cluster: X` in a lab: `dns.X.<lab>` (the
   * name the lab CA issues X's DNS certificate for); required with `servers`.
   */
  serverName?: string;
  /** CA bundle (PEM file) to verify the upstream with, instead of the lab CA. */
  ca?: string;
}

export interface DnsForwardZone {
  /** Zone to forward, e.g. `remote.svc.cluster.local`. */
  zone: string;
  /** Upstream servers, `ip` or `ip:port` (empty when `cluster` is given). */
  servers: string[];
  /** Another Cluster of the same manifests: forward to its cluster DNS (the lab picks the address). */
  cluster?: string;
  /** DNS over TLS (port 853) to the upstream, verifying its certificate by server name. */
  tls?: DnsForwardTls;
  /** Where the entry is declared (spec.dns.forward[i]); not enumerable (kept out of JSON and comparisons). */
  readonly source?: SourceLocation;
}

/** The cluster DNS also serves DNS over TLS on port 853, with a certificate from the lab CA. */
export interface DnsTlsSpec {
  /** `require`: clients must present a certificate the lab CA issued (CoreDNS's require_and_verify). */
  clientAuth: "none" | "require";
}

export interface DnsSpec {
  /** ClusterIP of the kube-dns Service. Default: the 10th address of the first service CIDR. */
  serviceIP?: string;
  /** TTL of cluster records in seconds. Default 5. */
  ttl: number;
  /** Pod A records `a-b-c-d.ns.pod.<domain>`. Default `insecure` (as kubeadm's CoreDNS). */
  podRecords: PodRecordsMode;
  forward: DnsForwardZone[];
  /** Upstream for names outside the cluster domain (`ip` or `ip:port`); none by default. */
  upstream: string[];
  /** Serve DNS over TLS on 853 too (absent: plain DNS only). */
  tls?: DnsTlsSpec;
}

export interface Cluster {
  kind: "Cluster";
  meta: Meta;
  /** Underlay network joining the nodes and the router. */
  nodeCIDR: string;
  /** One per IP family, IPv4 first when both. */
  podCIDRs: string[];
  serviceCIDRs: string[];
  /** Network behind the router where ExternalHosts live. */
  externalCIDR: string;
  /** Pool for LoadBalancer Services without an explicit address; may be empty. */
  loadBalancerCIDRs: string[];
  /** Size of each node's pod block, per family. Defaults: 24 (IPv4), 64 (IPv6). */
  nodeCIDRMaskSize: { ipv4: number; ipv6: number };
  clusterDomain: string;
  fabric: FabricSpec;
  dns: DnsSpec;
  /** spec.nodes: how many nodes (`node-1`, `node-2`, ...) to make when no Node object is declared. Default 2. */
  nodeCount: number;
  /** True when the cluster was not declared and podnet made the default one. */
  implicit: boolean;
}

export interface ExternalHostPort {
  port: number;
  protocol: Protocol;
}

export interface ExternalHost {
  kind: "ExternalHost";
  meta: Meta;
  /**
   * Fixed address: any IP (outside the externalCIDR the router gets a host route to it); allocated
   * from the cluster's externalCIDR when absent.
   */
  address?: string;
  /** Ports the host serves with the built-in responder. */
  ports: ExternalHostPort[];
}

/**
 * The link between two clusters' routers (a VPN or peering connection): each router routes the peer's
 * node, external and load-balancer ranges over it, and the peer's pod ranges when the peer advertises
 * them (routed with advertiseToRouter). Cluster-scoped and in no cluster, like Cluster itself.
 */
export interface ClusterPeering {
  kind: "ClusterPeering";
  meta: Meta;
  /** Exactly two distinct declared clusters; the first gets the first transit address. */
  clusters: [string, string];
  /** The point-to-point network between the two routers (IPv4); allocated when absent. */
  transitCIDR?: string;
}

// ---------------------------------------------------------------------------------------------
// Kubernetes kinds (the fields podnet uses)

export interface Namespace {
  kind: "Namespace";
  meta: Meta;
  /** True when no manifest declared it (e.g. `default`, or a namespace only referenced by objects). */
  implicit: boolean;
}

export interface Node {
  kind: "Node";
  meta: Meta;
  /** spec.podCIDRs (or spec.podCIDR) when the manifest fixes the node's blocks. */
  podCIDRs: string[];
  /** status.addresses[type=InternalIP] when the manifest fixes the node's underlay address. */
  address?: string;
  /** True when no manifest declared nodes and podnet made the default ones. */
  implicit: boolean;
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol: Protocol;
  hostPort?: number;
}

export interface Container {
  name: string;
  ports: ContainerPort[];
}

export interface OwnerRef {
  kind: "Deployment" | "StatefulSet";
  name: string;
}

export interface Pod {
  kind: "Pod";
  meta: Meta & { namespace: string };
  /** Fixed by the manifest, or empty until the planner places the pod. */
  nodeName?: string;
  hostname?: string;
  subdomain?: string;
  hostNetwork: boolean;
  containers: Container[];
  /** Readiness as the lab should report it (annotation `podnet.dev/ready: "false"` makes a pod unready). */
  ready: boolean;
  owner?: OwnerRef;
}

export type ServiceType = "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName";

export interface ServicePort {
  name?: string;
  protocol: Protocol;
  port: number;
  /** Number or the name of a container port. Defaults to `port`. */
  targetPort: number | string;
  nodePort?: number;
}

export interface Service {
  kind: "Service";
  meta: Meta & { namespace: string };
  type: ServiceType;
  /** Absent: to be allocated. `None`: headless. */
  clusterIP?: string;
  /** spec.clusterIPs when given (dual-stack); the first equals clusterIP. */
  clusterIPs: string[];
  ipFamilies: IpFamily[];
  ipFamilyPolicy: "SingleStack" | "PreferDualStack" | "RequireDualStack";
  /** Absent: the Service has no selector and its endpoints come from EndpointSlice objects. */
  selector?: Record<string, string>;
  ports: ServicePort[];
  sessionAffinity: "None" | "ClientIP";
  /** sessionAffinityConfig.clientIP.timeoutSeconds; default 10800 when affinity is ClientIP. */
  sessionAffinityTimeoutSeconds?: number;
  externalTrafficPolicy?: "Cluster" | "Local";
  internalTrafficPolicy: "Cluster" | "Local";
  loadBalancerIP?: string;
  /** status.loadBalancer.ingress[].ip */
  loadBalancerIngress: string[];
  loadBalancerSourceRanges: string[];
  externalIPs: string[];
  externalName?: string;
  publishNotReadyAddresses: boolean;
}

export interface EndpointConditions {
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

export interface Endpoint {
  addresses: string[];
  conditions: EndpointConditions;
  hostname?: string;
  nodeName?: string;
  targetRef?: { kind: string; name: string; namespace?: string };
}

export interface EndpointPort {
  name?: string;
  port: number;
  protocol: Protocol;
}

export interface EndpointSlice {
  kind: "EndpointSlice";
  meta: Meta & { namespace: string };
  addressType: IpFamily | "FQDN";
  /** From the `kubernetes.io/service-name` label. */
  serviceName?: string;
  endpoints: Endpoint[];
  ports: EndpointPort[];
}

export interface IpBlock {
  cidr: string;
  except: string[];
}

export interface NetworkPolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: IpBlock;
}

export interface NetworkPolicyPort {
  protocol: Protocol;
  /** Absent: all ports of the protocol. */
  port?: number | string;
  endPort?: number;
}

export interface NetworkPolicyRule {
  /** `from` for ingress, `to` for egress. Empty: all peers. */
  peers: NetworkPolicyPeer[];
  /** Empty: all ports. */
  ports: NetworkPolicyPort[];
}

export interface NetworkPolicy {
  kind: "NetworkPolicy";
  meta: Meta & { namespace: string };
  podSelector: LabelSelector;
  policyTypes: ("Ingress" | "Egress")[];
  ingress: NetworkPolicyRule[];
  egress: NetworkPolicyRule[];
}

/**
 * Everything the manifests declare, defaulted and expanded, for every cluster in them. Read-only:
 * pods expanded from one workload share (frozen) `containers`, `annotations`, `owner` and, for
 * Deployments, `labels` objects.
 */
export interface DesiredState {
  clusters: Cluster[];
  namespaces: Namespace[];
  nodes: Node[];
  pods: Pod[];
  services: Service[];
  endpointSlices: EndpointSlice[];
  networkPolicies: NetworkPolicy[];
  externalHosts: ExternalHost[];
  /** ClusterPeering objects (in no cluster: `meta.cluster` is empty). */
  peerings: ClusterPeering[];
}

export type AnyObject =
  | Cluster
  | ClusterPeering
  | ExternalHost
  | Namespace
  | Node
  | Pod
  | Service
  | EndpointSlice
  | NetworkPolicy;

/** `Kind namespace/name` or `Kind name`: how diagnostics and the CLI refer to an object. */
export function objectRef(kind: string, meta: { name: string; namespace?: string }): string {
  return meta.namespace ? `${kind} ${meta.namespace}/${meta.name}` : `${kind} ${meta.name}`;
}
