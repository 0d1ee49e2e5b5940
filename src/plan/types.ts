/**
 * The address plan: which address every router, node, pod, service and external host gets, in
 * every cluster. Plain data (strings and numbers only): printed by `podnet plan`, diffed between
 * runs, fed back as `previous` so that re-planning moves nothing that was already placed.
 */
import type { Diagnostic } from "../api/diagnostics.js";
import type { FabricMode, Protocol, ServiceType } from "../api/types.js";

export interface ClusterRanges {
  nodeCIDR: string;
  podCIDRs: string[];
  serviceCIDRs: string[];
  externalCIDR: string;
  loadBalancerCIDRs: string[];
}

export interface FabricPlan {
  mode: FabricMode;
  /** MTU of the underlay (node eth0). */
  underlayMTU: number;
  /** MTU of pod interfaces: the underlay MTU, minus 50 bytes of VXLAN headers in vxlan mode. */
  podMTU: number;
  vni?: number;
  port?: number;
  advertiseToRouter: boolean;
  masquerade: boolean;
  /** Whether hosts outside the cluster (behind the router) can reach pod IPs without NAT. */
  podsAddressableFromOutside: boolean;
}

export interface RouterPlan {
  /** The router's address on the node network (the nodes' default gateway). */
  nodeNetworkAddress: string;
  /** The router's address on the external network (the external hosts' default gateway). */
  externalNetworkAddress: string;
}

export interface NodePlan {
  name: string;
  /** Underlay address on eth0. */
  address: string;
  /** One pod block per IP family. */
  podCIDRs: string[];
  /** The bridge (cbr0) address in each block: the pods' default gateway. */
  gateways: string[];
  /** Number of pods placed on the node (hostNetwork pods included). */
  podCount: number;
}

export interface PodPlan {
  namespace: string;
  name: string;
  node: string;
  /** One per IP family; for hostNetwork pods, the node's address. */
  ips: string[];
  hostNetwork: boolean;
  /** Why the pod is on this node: `manifest` (spec.nodeName), `previous` (kept from the previous plan), `scheduled`. */
  placedBy: "manifest" | "previous" | "scheduled";
}

export interface ServicePortPlan {
  name?: string;
  protocol: Protocol;
  port: number;
  targetPort: number | string;
  nodePort?: number;
}

export interface ServicePlan {
  namespace: string;
  name: string;
  type: ServiceType;
  /** Empty for headless and ExternalName services. */
  clusterIPs: string[];
  headless: boolean;
  ports: ServicePortPlan[];
  loadBalancerIPs: string[];
  externalIPs: string[];
  externalName?: string;
}

export interface ExternalHostPlan {
  name: string;
  address: string;
}

export interface ClusterPlan {
  name: string;
  domain: string;
  ranges: ClusterRanges;
  fabric: FabricPlan;
  router: RouterPlan;
  /** ClusterIP of kube-system/kube-dns. */
  dnsServiceIP: string;
  nodes: NodePlan[];
  pods: PodPlan[];
  services: ServicePlan[];
  externalHosts: ExternalHostPlan[];
}

/** A route a router holds over a peering: to a range the peer's router routes itself. */
export interface PeeringRoute {
  dst: string;
  /** The peer router's transit address. */
  via: string;
  /** What the range is, e.g. `node CIDR of c2`. */
  what: string;
}

/** One end of a peering: a cluster's router. */
export interface PeeringSidePlan {
  cluster: string;
  /** The router's address on the transit network. */
  address: string;
  /** Routes this router holds via the peer's transit address. */
  routes: PeeringRoute[];
  /** The peer's pod CIDRs this cluster's nodes do not masquerade to (ip-masq-agent's nonMasqueradeCIDRs):
   * both clusters' pod ranges are routed, so the peer sees (and answers) the client pod's own IP. */
  nonMasqueradeCIDRs: string[];
}

export interface PeeringPlan {
  name: string;
  clusters: [string, string];
  /** The point-to-point network between the two routers. */
  transitCIDR: string;
  /** Where the transit network came from: the manifest, the previous plan, or the default pool. */
  transitFrom: "manifest" | "previous" | "allocated";
  /** In the order of `clusters`. */
  sides: [PeeringSidePlan, PeeringSidePlan];
}

export interface AddressPlan {
  clusters: ClusterPlan[];
  /** ClusterPeerings: the links between clusters' routers (absent in plans made before peerings existed). */
  peerings: PeeringPlan[];
  /** Everything the checks found: errors make the plan unusable, warnings and info do not. */
  diagnostics: Diagnostic[];
}
