/**
 * What a lab calls the things it makes. Every namespace of lab L starts with `pn.L.`, so `down` (and a
 * re-adopting `up`) finds all of them by prefix; its files live under /run/podnet/labs/L (tmpfs, like
 * /run/netns: both are gone after a reboot, together). Interface names are at most 15 bytes, so the
 * underlay ends of node and external-host links are hashed.
 */
import { hashedName } from "../linux/names.js";

export const DEFAULT_LAB = "podnet";
export const LABS_DIR = "/run/podnet/labs";

const LAB_NAME = /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/;

/** Why `name` cannot name a lab, or undefined. */
export function labNameProblem(name: string): string | undefined {
  if (LAB_NAME.test(name)) return undefined;
  return `lab name "${name}" is not valid: use 1-32 lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. --name lab-2)`;
}

export function labPrefix(lab: string): string {
  return `pn.${lab}.`;
}

export function labDir(lab: string): string {
  return `${LABS_DIR}/${lab}`;
}

export const netnsNames = {
  underlay: (lab: string, cluster: string) => `pn.${lab}.${cluster}.underlay`,
  node: (lab: string, cluster: string, node: string) => `pn.${lab}.${cluster}.node.${node}`,
  external: (lab: string, cluster: string, host: string) => `pn.${lab}.${cluster}.ext.${host}`,
  pod: (lab: string, cluster: string, namespace: string, pod: string) =>
    `pn.${lab}.${cluster}.pod.${namespace}.${pod}`,
};

export function netnsPath(name: string): string {
  return `/run/netns/${name}`;
}

/** The CNI container ID of a pod (CNI: letters, digits, `_.-`). */
export function podContainerId(cluster: string, namespace: string, pod: string): string {
  return `${cluster}.${namespace}.${pod}`;
}

/** The underlay (switch) end of a node's eth0. */
export function nodeUplinkName(cluster: string, node: string): string {
  return hashedName("n-", [cluster, node]);
}

/** The router end of an external host's eth0. */
export function externalUplinkName(cluster: string, host: string): string {
  return hashedName("x-", [cluster, host]);
}

/** Names of peering links start with this (`down`/converge find stale ones by it). */
export const PEERING_LINK_PREFIX = "p-";

/**
 * The end of a peering's veth in `cluster`'s router. The transit network is part of the name: a changed
 * peering is a new link, and the old one goes with its addresses and routes.
 */
export function peeringLinkName(
  peering: { name: string; clusters: readonly string[]; transitCIDR: string },
  cluster: string,
): string {
  return hashedName(PEERING_LINK_PREFIX, [peering.name, ...peering.clusters, peering.transitCIDR, cluster]);
}

/** Bridges inside the underlay namespace: the nodes' switch and the router's external side. */
export const NODE_SWITCH = "sw0";
export const EXTERNAL_SWITCH = "ext0";
/** The bridge the CNI plugin makes in each node. */
export const POD_BRIDGE = "cbr0";
/** The nftables table a node's masquerade lives in. */
export const MASQ_TABLE = "podnet-masq";
