/** NetworkPolicy (networking.k8s.io/v1): pod selector, policy types, ingress and egress rules. */

import { containsCidr, formatCidr } from "../ipam/cidr.js";
import type { Field, ObjCtx } from "./context.js";
import type { ReadMeta } from "./meta.js";
import { namespacedMeta } from "./meta.js";
import { checkPortName, readProtocol } from "./pod.js";
import { readSelector } from "./selector.js";
import { readCidr } from "./service.js";
import type {
  IpBlock,
  NetworkPolicy,
  NetworkPolicyPeer,
  NetworkPolicyPort,
  NetworkPolicyRule,
} from "./types.js";
import { portNumber } from "./validate.js";

const POLICY_TYPES = ["Ingress", "Egress"] as const;

function readPeer(pf: Field): NetworkPolicyPeer | undefined {
  const pm = pf.map();
  if (!pm.set) {
    if (!pm.broken)
      pf.error("Required value: must specify a peer", "give podSelector, namespaceSelector or ipBlock");
    return undefined;
  }
  const peer: NetworkPolicyPeer = {};
  const psF = pm.get("podSelector");
  const nsF = pm.get("namespaceSelector");
  const ibF = pm.get("ipBlock").map();
  if (psF.set) peer.podSelector = readSelector(psF);
  if (nsF.set) peer.namespaceSelector = readSelector(nsF);
  if (ibF.set) {
    const cidrF = ibF.get("cidr");
    const cidr = readCidr(cidrF);
    if (!cidrF.set) cidrF.required();
    const block: IpBlock = { cidr: cidr ? formatCidr(cidr) : "", except: [] };
    for (const ef of ibF.get("except").list()) {
      const ex = readCidr(ef);
      if (!ex) continue;
      if (cidr && !(containsCidr(cidr, ex) && ex.prefix > cidr.prefix)) {
        ef.error(
          `invalid value ${JSON.stringify(formatCidr(ex))}: must be a strict subset of \`cidr\` (${formatCidr(cidr)})`,
        );
      } else block.except.push(formatCidr(ex));
    }
    if (cidr) peer.ipBlock = block;
    if (psF.set || nsF.set) {
      ibF.error(
        "Forbidden: may not specify both ipBlock and another peer",
        "split it into two peers: one with ipBlock, one with the selectors",
      );
    }
  }
  if (!psF.set && !nsF.set && !ibF.set && !ibF.broken) {
    pf.error(
      "Required value: must specify a peer",
      "give podSelector, namespaceSelector or ipBlock (an empty `from`/`to` list allows all peers)",
    );
    return undefined;
  }
  return peer;
}

function readPolicyPort(pf: Field): NetworkPolicyPort | undefined {
  const pm = pf.map();
  if (!pm.set) return undefined;
  const out: NetworkPolicyPort = { protocol: readProtocol(pm.get("protocol")) };
  const portF = pm.get("port");
  const port = portF.intOrStr();
  if (typeof port === "number") {
    const err = portNumber(port);
    if (err) portF.error(`invalid port ${port}: ${err}`);
    else out.port = port;
  } else if (typeof port === "string" && port !== "") {
    if (/^\d+$/.test(port)) {
      portF.error(
        `invalid value ${JSON.stringify(port)}: a named port must contain at least one letter (a-z)`,
        `write the number without quotes: ${port}`,
      );
    } else if (checkPortName(portF, port)) out.port = port;
  }
  const epF = pm.get("endPort");
  const endPort = epF.int();
  if (endPort !== undefined) {
    if (!portF.set) {
      epF.error(
        "Required value: may not be specified when `port` is not specified",
        "add port, the start of the range",
      );
    } else if (typeof port === "string") {
      epF.error(
        "Forbidden: may not be specified when `port` is non-numeric",
        "use a numeric port with endPort",
      );
    } else if (typeof port === "number") {
      const err = portNumber(endPort);
      if (err) epF.error(`invalid endPort ${endPort}: ${err}`);
      else if (endPort < port)
        epF.error(`invalid value ${endPort}: must be greater than or equal to \`port\` (${port})`);
      else out.endPort = endPort;
    }
  }
  return out;
}

function readRules(f: Field, peersKey: "from" | "to"): NetworkPolicyRule[] {
  const rules: NetworkPolicyRule[] = [];
  for (const rf of f.list()) {
    const rm = rf.map();
    const rule: NetworkPolicyRule = { peers: [], ports: [] };
    for (const pf of rm.get(peersKey).list()) {
      const peer = readPeer(pf);
      if (peer) rule.peers.push(peer);
    }
    for (const pf of rm.get("ports").list()) {
      const port = readPolicyPort(pf);
      if (port) rule.ports.push(port);
    }
    rules.push(rule);
  }
  return rules;
}

export function readNetworkPolicy(o: ObjCtx, meta: ReadMeta): NetworkPolicy {
  const spec = o.root.get("spec").map();
  const psF = spec.get("podSelector");
  if (!psF.set) {
    psF.required("Required value", "use `podSelector: {}` to select every pod in the namespace");
  }
  const podSelector = readSelector(psF);
  const ingressF = spec.get("ingress");
  const egressF = spec.get("egress");
  const ingress = readRules(ingressF, "from");
  const egress = readRules(egressF, "to");
  const ptF = spec.get("policyTypes");
  let policyTypes: ("Ingress" | "Egress")[];
  if (ptF.set) {
    policyTypes = [];
    const items = ptF.list();
    for (const f of items) {
      const t = f.oneOf(POLICY_TYPES);
      if (t === undefined) continue;
      if (policyTypes.includes(t)) f.error(`Duplicate value: ${JSON.stringify(t)}`);
      else policyTypes.push(t);
    }
    if (items.length > 2) ptF.error(`must have at most 2 items, found ${items.length}`);
    if (Array.isArray(ptF.v) && items.length === 0) {
      policyTypes = egress.length > 0 ? ["Ingress", "Egress"] : ["Ingress"];
    }
  } else {
    policyTypes = egress.length > 0 ? ["Ingress", "Egress"] : ["Ingress"];
  }
  if (ptF.set && Array.isArray(ptF.v)) {
    if (egress.length > 0 && !policyTypes.includes("Egress") && policyTypes.length > 0) {
      egressF.warning(
        "egress rules are ignored: policyTypes does not include Egress",
        'add "Egress" to policyTypes',
      );
    }
    if (ingress.length > 0 && !policyTypes.includes("Ingress") && policyTypes.length > 0) {
      ingressF.warning(
        "ingress rules are ignored: policyTypes does not include Ingress",
        'add "Ingress" to policyTypes',
      );
    }
  }
  return {
    kind: "NetworkPolicy",
    meta: namespacedMeta(meta, o.location),
    podSelector,
    policyTypes,
    ingress,
    egress,
  };
}
