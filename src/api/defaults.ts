/**
 * Documented defaults: what podnet assumes when manifests say nothing. Kept in one place so the
 * README, the loader and the planners agree.
 */
import type { Cluster } from "./types.js";

export const DEFAULT_CLUSTER_NAME = "default";
export const DEFAULT_NAMESPACE = "default";
export const CLUSTER_ANNOTATION = "podnet.dev/cluster";
export const READY_ANNOTATION = "podnet.dev/ready";

export const CLUSTER_DEFAULTS: Omit<Cluster, "kind" | "meta" | "implicit"> = {
  nodeCIDR: "172.18.0.0/16",
  podCIDRs: ["10.244.0.0/16"],
  serviceCIDRs: ["10.96.0.0/12"],
  externalCIDR: "203.0.113.0/24",
  loadBalancerCIDRs: ["198.51.100.0/24"],
  nodeCIDRMaskSize: { ipv4: 24, ipv6: 64 },
  clusterDomain: "cluster.local",
  nodeCount: 2,
  fabric: { mode: "routed", vni: 1, port: 4789, mtu: 1500, advertiseToRouter: false, masquerade: true },
  dns: { ttl: 5, podRecords: "insecure", forward: [], upstream: [] },
};

/**
 * IPv6 ranges used when a Cluster gives only IPv6 pod (or service) CIDRs and leaves the other range
 * unset, so that both ranges have the same families (kind's defaults).
 */
export const IPV6_DEFAULTS = { podCIDR: "fd00:10:244::/56", serviceCIDR: "fd00:10:96::/112" } as const;

/** The kube-dns Service's ClusterIP is this address of the first service CIDR (10.96.0.10). */
export const DNS_SERVICE_ADDRESS_INDEX = 10;
/** VXLAN adds 50 bytes (outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8). */
export const VXLAN_OVERHEAD = 50;
export const NODE_PORT_RANGE = { min: 30000, max: 32767 } as const;
export const SESSION_AFFINITY_DEFAULT_TIMEOUT = 10800;

/** Namespaces every cluster has even when no manifest declares them. */
export const BUILTIN_NAMESPACES = ["default", "kube-system"] as const;
