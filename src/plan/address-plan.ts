/**
 * planAddresses: desired state in, address plan out. Pure: no I/O, same input -> same plan.
 *
 * Order of precedence for every address: what the manifest fixes (spec.clusterIP, spec.nodeName,
 * Node spec.podCIDR, ExternalHost spec.address, ...), then what the previous plan gave the same
 * object (so re-planning after an edit moves nothing), then the lowest free address.
 */

import { DNS_SERVICE_ADDRESS_INDEX, NODE_PORT_RANGE, VXLAN_OVERHEAD } from "../api/defaults.js";
import type { Diagnostic } from "../api/diagnostics.js";
import type { Cluster, DesiredState, Node, Pod, Service } from "../api/types.js";
import { objectRef } from "../api/types.js";
import { AddressAllocator, BlockAllocator } from "../ipam/allocator.js";
import {
  type Cidr,
  containsIp,
  type Family,
  familyName,
  formatCidr,
  formatIp,
  type IpAddress,
  nthAddress,
  parseCidr,
  tryParseCidr,
  tryParseIp,
} from "../ipam/cidr.js";
import { checkRanges } from "./checks.js";
import { checkDnsForwards } from "./dns-checks.js";
import { planPeerings } from "./peering.js";
import type {
  AddressPlan,
  ClusterPlan,
  ExternalHostPlan,
  NodePlan,
  PodPlan,
  ServicePlan,
  ServicePortPlan,
} from "./types.js";

export interface PlanOptions {
  /** A plan made earlier from (nearly) the same manifests: its addresses are kept where still valid. */
  previous?: AddressPlan;
}

/** Offsets inside each node's pod block: 0 is the network, 1 the bridge (gateway). */
const GATEWAY_OFFSET = 1;
/** Offsets inside the node network and the external network: 1 is the router. */
const ROUTER_OFFSET = 1;
/** Offset 1 of the service range is the `kubernetes` API Service, as in Kubernetes. */
const API_SERVICE_OFFSET = 1;

export function planAddresses(state: DesiredState, options: PlanOptions = {}): AddressPlan {
  const diagnostics: Diagnostic[] = [];
  diagnostics.push(...checkRanges(state));
  diagnostics.push(...checkDnsForwards(state));
  const clusters = state.clusters.map((cluster) => {
    const previous = options.previous?.clusters.find((c) => c.name === cluster.meta.name);
    return planCluster(cluster, state, previous, diagnostics);
  });
  const peerings = planPeerings(state, clusters, options.previous, (d) => diagnostics.push(d));
  return { clusters, peerings, diagnostics };
}

function inCluster<T extends { meta: { cluster: string } }>(items: T[], cluster: string): T[] {
  return items.filter((item) => item.meta.cluster === cluster);
}

function planCluster(
  cluster: Cluster,
  state: DesiredState,
  previous: ClusterPlan | undefined,
  diagnostics: Diagnostic[],
): ClusterPlan {
  const name = cluster.meta.name;
  const report = (d: Omit<Diagnostic, "severity"> & { severity?: Diagnostic["severity"] }) =>
    diagnostics.push({ severity: "error", ...d });

  const nodeCidr = parseCidr(cluster.nodeCIDR);
  const externalCidr = parseCidr(cluster.externalCIDR);
  const podCidrs = cluster.podCIDRs.map((c) => parseCidr(c));
  const serviceCidrs = cluster.serviceCIDRs.map((c) => parseCidr(c));
  const lbCidrs = cluster.loadBalancerCIDRs.map((c) => parseCidr(c));

  const router = {
    nodeNetworkAddress: formatIp(nthAddress(nodeCidr, ROUTER_OFFSET)),
    externalNetworkAddress: formatIp(nthAddress(externalCidr, ROUTER_OFFSET)),
  };

  const nodes = planNodes(cluster, inCluster(state.nodes, name), nodeCidr, podCidrs, previous, report);
  const pods = planPods(cluster, inCluster(state.pods, name), nodes, previous, report);
  const { services, dnsServiceIP } = planServices(
    cluster,
    inCluster(state.services, name),
    serviceCidrs,
    lbCidrs,
    previous,
    report,
  );
  const externalHosts = planExternalHosts(cluster, state, externalCidr, previous, report);

  const { fabric } = cluster;
  const podMTU = fabric.mode === "vxlan" ? fabric.mtu - VXLAN_OVERHEAD : fabric.mtu;
  return {
    name,
    domain: cluster.clusterDomain,
    ranges: {
      nodeCIDR: formatCidr(nodeCidr),
      podCIDRs: podCidrs.map(formatCidr),
      serviceCIDRs: serviceCidrs.map(formatCidr),
      externalCIDR: formatCidr(externalCidr),
      loadBalancerCIDRs: lbCidrs.map(formatCidr),
    },
    fabric: {
      mode: fabric.mode,
      underlayMTU: fabric.mtu,
      podMTU,
      ...(fabric.mode === "vxlan" ? { vni: fabric.vni, port: fabric.port } : {}),
      advertiseToRouter: fabric.mode === "routed" && fabric.advertiseToRouter,
      masquerade: fabric.masquerade,
      podsAddressableFromOutside: fabric.mode === "routed" && fabric.advertiseToRouter,
    },
    router,
    dnsServiceIP,
    nodes,
    pods,
    services,
    externalHosts,
  };
}

type Report = (d: Omit<Diagnostic, "severity"> & { severity?: Diagnostic["severity"] }) => void;

function maskSizeFor(cluster: Cluster, family: Family): number {
  return family === 4 ? cluster.nodeCIDRMaskSize.ipv4 : cluster.nodeCIDRMaskSize.ipv6;
}

function planNodes(
  cluster: Cluster,
  nodes: Node[],
  nodeCidr: Cidr,
  podCidrs: Cidr[],
  previous: ClusterPlan | undefined,
  report: Report,
): NodePlan[] {
  const addresses = new AddressAllocator(nodeCidr, { reserved: [ROUTER_OFFSET] });
  const blocks = podCidrs.map((cidr) => new BlockAllocator(cidr, maskSizeFor(cluster, cidr.family)));
  const previousByName = new Map(previous?.nodes.map((n) => [n.name, n]));
  const address = new Map<string, IpAddress>();
  const nodeBlocks = new Map<string, (Cidr | undefined)[]>();

  // Pass 1: what manifests fix. Pass 2: what the previous plan gave. Pass 3: the rest, lowest first.
  for (const node of nodes) {
    const ref = objectRef("Node", node.meta);
    if (node.address) {
      const ip = tryParseIp(node.address);
      const why = ip ? addresses.claim(ip) : "it is not an IP address";
      if (ip && !why) address.set(node.meta.name, ip);
      else
        report({
          code: "node-address",
          object: ref,
          path: "status.addresses",
          source: node.meta.source,
          message: `InternalIP ${node.address} cannot be used: ${why}`,
          hint: `use a free address inside the node CIDR ${formatCidr(nodeCidr)} (not ${formatIp(nthAddress(nodeCidr, ROUTER_OFFSET))}, the router), or remove it to have one allocated`,
        });
    }
    const fixed: (Cidr | undefined)[] = blocks.map(() => undefined);
    for (const text of node.podCIDRs) {
      const block = tryParseCidr(text);
      const index = block ? podCidrs.findIndex((c) => c.family === block.family) : -1;
      const allocator = blocks[index];
      const why = !block
        ? "it is not a CIDR"
        : !allocator
          ? `the cluster has no ${familyName(block.family)} pod CIDR`
          : allocator.claim(block);
      if (block && allocator && !why) fixed[index] = block;
      else
        report({
          code: "node-pod-cidr",
          object: ref,
          path: "spec.podCIDRs",
          source: node.meta.source,
          message: `pod CIDR ${text} cannot be used: ${why}`,
          hint: `use a free /${block ? maskSizeFor(cluster, block.family) : 24} inside ${cluster.podCIDRs.join(" or ")}, or remove spec.podCIDR(s) to have one allocated`,
        });
    }
    nodeBlocks.set(node.meta.name, fixed);
  }
  for (const node of nodes) {
    const before = previousByName.get(node.meta.name);
    if (!before) continue;
    if (!address.has(node.meta.name)) {
      const ip = tryParseIp(before.address);
      if (ip && !addresses.claim(ip)) address.set(node.meta.name, ip);
    }
    const fixed = nodeBlocks.get(node.meta.name) ?? [];
    for (const text of before.podCIDRs) {
      const block = tryParseCidr(text);
      if (!block) continue;
      const index = podCidrs.findIndex((c) => c.family === block.family);
      if (index >= 0 && !fixed[index] && !blocks[index]?.claim(block)) fixed[index] = block;
    }
  }
  let missingAddresses = 0;
  const missingBlocks = podCidrs.map(() => 0);
  const planned = nodes.map((node): NodePlan => {
    let ip = address.get(node.meta.name);
    if (!ip) {
      ip = addresses.allocate();
      if (!ip) missingAddresses++;
    }
    const fixed = nodeBlocks.get(node.meta.name) ?? [];
    const podBlocks = blocks.map((allocator, i) => {
      const block = fixed[i] ?? allocator.allocate();
      if (!block) missingBlocks[i] = (missingBlocks[i] ?? 0) + 1;
      return block;
    });
    const present = podBlocks.filter((b): b is Cidr => b !== undefined);
    return {
      name: node.meta.name,
      address: ip ? formatIp(ip) : "",
      podCIDRs: present.map(formatCidr),
      gateways: present.map((b) => formatIp(nthAddress(b, GATEWAY_OFFSET))),
      podCount: 0,
    };
  });
  const where = `cluster ${cluster.meta.name}`;
  if (missingAddresses > 0) {
    report({
      code: "exhausted-node-addresses",
      object: `Cluster ${cluster.meta.name}`,
      path: "spec.nodeCIDR",
      source: cluster.meta.source,
      message: `${nodes.length} nodes need ${nodes.length} addresses but node CIDR ${formatCidr(nodeCidr)} holds ${addresses.capacity()} (the router takes one); ${missingAddresses} nodes have no address`,
      hint: "use a larger spec.nodeCIDR",
    });
  }
  missingBlocks.forEach((missing, i) => {
    const cidr = podCidrs[i];
    const allocator = blocks[i];
    if (!missing || !cidr || !allocator) return;
    const mask = maskSizeFor(cluster, cidr.family);
    report({
      code: "exhausted-pod-blocks",
      object: `Cluster ${cluster.meta.name}`,
      path: "spec.podCIDRs",
      source: cluster.meta.source,
      message: `${where}: ${nodes.length} nodes need ${nodes.length} /${mask} blocks but pod CIDR ${formatCidr(cidr)} holds ${allocator.capacity()}; ${missing} nodes have no ${familyName(cidr.family)} block`,
      hint: `use a pod CIDR of /${Math.max(0, mask - Math.ceil(Math.log2(nodes.length)))} or shorter, or a longer spec.nodeCIDRMaskSize`,
    });
  });
  return planned;
}

/** Min-heap of node indices by pod count (ties: node order), for balanced, deterministic placement. */
class LeastLoaded {
  private heap: number[] = [];
  constructor(private readonly counts: number[]) {
    for (let i = 0; i < counts.length; i++) this.push(i);
  }
  private less(a: number, b: number): boolean {
    const ca = this.counts[a] ?? 0;
    const cb = this.counts[b] ?? 0;
    return ca < cb || (ca === cb && a < b);
  }
  private push(i: number): void {
    const h = this.heap;
    h.push(i);
    let k = h.length - 1;
    while (k > 0) {
      const parent = (k - 1) >> 1;
      if (!this.less(h[k] as number, h[parent] as number)) break;
      [h[k], h[parent]] = [h[parent] as number, h[k] as number];
      k = parent;
    }
  }
  /** Takes the least-loaded node, counts one more pod on it, and puts it back. */
  take(): number {
    const h = this.heap;
    const top = h[0] as number;
    this.counts[top] = (this.counts[top] ?? 0) + 1;
    // Sift the root down: its count grew.
    let k = 0;
    for (;;) {
      const l = 2 * k + 1;
      const r = l + 1;
      let m = k;
      if (l < h.length && this.less(h[l] as number, h[m] as number)) m = l;
      if (r < h.length && this.less(h[r] as number, h[m] as number)) m = r;
      if (m === k) break;
      [h[k], h[m]] = [h[m] as number, h[k] as number];
      k = m;
    }
    return top;
  }
}

function planPods(
  cluster: Cluster,
  pods: Pod[],
  nodes: NodePlan[],
  previous: ClusterPlan | undefined,
  report: Report,
): PodPlan[] {
  if (nodes.length === 0) {
    if (pods.length > 0)
      report({
        code: "no-nodes",
        object: `Cluster ${cluster.meta.name}`,
        source: cluster.meta.source,
        message: `${pods.length} pods but no nodes to place them on`,
        hint: "declare Node objects or set spec.nodes on the Cluster",
      });
    return [];
  }
  const nodeIndex = new Map(nodes.map((n, i) => [n.name, i]));
  const key = (ns: string, name: string) => `${ns}/${name}`;
  const previousPods = new Map(previous?.pods.map((p) => [key(p.namespace, p.name), p]));

  // Placement: manifest first, then previous, then least-loaded in manifest order.
  const counts = nodes.map(() => 0);
  const placement: { node: number; by: PodPlan["placedBy"] }[] = new Array(pods.length);
  const unplaced: number[] = [];
  pods.forEach((pod, i) => {
    const fixed = pod.nodeName !== undefined ? nodeIndex.get(pod.nodeName) : undefined;
    const before =
      previousPods.size > 0 ? previousPods.get(key(pod.meta.namespace, pod.meta.name)) : undefined;
    const kept = before ? nodeIndex.get(before.node) : undefined;
    if (fixed !== undefined) placement[i] = { node: fixed, by: "manifest" };
    else if (kept !== undefined) placement[i] = { node: kept, by: "previous" };
    else {
      unplaced.push(i);
      return;
    }
    counts[placement[i].node] = (counts[placement[i].node] ?? 0) + 1;
  });
  const scheduler = new LeastLoaded(counts);
  for (const i of unplaced) placement[i] = { node: scheduler.take(), by: "scheduled" };

  // Addresses: one allocator per node and family; the gateway is reserved.
  const allocators = nodes.map((n) =>
    n.podCIDRs.map((text) => new AddressAllocator(parseCidr(text), { reserved: [GATEWAY_OFFSET] })),
  );
  const ips: (IpAddress | undefined)[][] = pods.map(() => []);
  pods.forEach((pod, i) => {
    if (previousPods.size === 0) return;
    const before = previousPods.get(key(pod.meta.namespace, pod.meta.name));
    const place = placement[i];
    if (!before || pod.hostNetwork || !place || nodes[place.node]?.name !== before.node) return;
    for (const text of before.ips) {
      const ip = tryParseIp(text);
      const family = allocators[place.node]?.findIndex((a) => ip && a.cidr.family === ip.family) ?? -1;
      const allocator = allocators[place.node]?.[family];
      if (ip && allocator && !allocator.claim(ip)) (ips[i] as (IpAddress | undefined)[])[family] = ip;
    }
  });
  const shortBy = new Map<number, number>();
  const planned = pods.map((pod, i): PodPlan => {
    const place = placement[i] as { node: number; by: PodPlan["placedBy"] };
    const node = nodes[place.node] as NodePlan;
    node.podCount++;
    if (pod.hostNetwork) {
      return {
        namespace: pod.meta.namespace,
        name: pod.meta.name,
        node: node.name,
        ips: node.address ? [node.address] : [],
        hostNetwork: true,
        placedBy: place.by,
      };
    }
    const mine = ips[i] as (IpAddress | undefined)[];
    const podIps = (allocators[place.node] ?? []).map((allocator, family) => {
      const ip = mine[family] ?? allocator.allocate();
      if (!ip) shortBy.set(place.node, (shortBy.get(place.node) ?? 0) + 1);
      return ip;
    });
    return {
      namespace: pod.meta.namespace,
      name: pod.meta.name,
      node: node.name,
      ips: podIps.filter((ip): ip is IpAddress => ip !== undefined).map(formatIp),
      hostNetwork: false,
      placedBy: place.by,
    };
  });
  for (const [index, missing] of shortBy) {
    const node = nodes[index] as NodePlan;
    const capacity = (allocators[index] ?? []).map((a) => a.capacity());
    report({
      code: "exhausted-pod-addresses",
      object: `Node ${node.name}`,
      message: `cluster ${cluster.meta.name}: node ${node.name} has ${node.podCount} pods but its block ${node.podCIDRs.join(", ")} holds ${capacity.join(", ")} (network, gateway${capacity.length && node.podCIDRs[0]?.includes(".") ? " and broadcast" : ""} reserved); ${missing} pods have no address`,
      hint: "use a shorter spec.nodeCIDRMaskSize (a larger block per node), more nodes, or fewer pods",
    });
  }
  return planned;
}

function planServices(
  cluster: Cluster,
  services: Service[],
  serviceCidrs: Cidr[],
  lbCidrs: Cidr[],
  previous: ClusterPlan | undefined,
  report: Report,
): { services: ServicePlan[]; dnsServiceIP: string } {
  const first = serviceCidrs[0] as Cidr;
  const dnsIp = cluster.dns.serviceIP
    ? (tryParseIp(cluster.dns.serviceIP) ?? nthAddress(first, DNS_SERVICE_ADDRESS_INDEX))
    : nthAddress(first, DNS_SERVICE_ADDRESS_INDEX);
  const clusterIps = serviceCidrs.map(
    (cidr) => new AddressAllocator(cidr, { reserved: [API_SERVICE_OFFSET] }),
  );
  const dnsWhy = clusterIps[0]?.claim(dnsIp);
  if (dnsWhy)
    report({
      code: "dns-service-ip",
      object: `Cluster ${cluster.meta.name}`,
      path: "spec.dns.serviceIP",
      source: cluster.meta.source,
      message: `DNS service IP ${formatIp(dnsIp)} cannot be used: ${dnsWhy}`,
      hint: `use an address inside ${formatCidr(first)}`,
    });
  const lbPool = lbCidrs.map((cidr) => new AddressAllocator(cidr));
  const nodePorts = new PortAllocator(NODE_PORT_RANGE.min, NODE_PORT_RANGE.max);
  const previousServices = new Map(previous?.services.map((s) => [`${s.namespace}/${s.name}`, s]));

  const planned: ServicePlan[] = services.map((svc) => ({
    namespace: svc.meta.namespace,
    name: svc.meta.name,
    type: svc.type,
    clusterIPs: [],
    headless: svc.clusterIP === "None",
    ports: svc.ports.map((p): ServicePortPlan => ({ ...p })),
    loadBalancerIPs: [],
    externalIPs: [...svc.externalIPs],
    ...(svc.externalName ? { externalName: svc.externalName } : {}),
  }));
  const wantsClusterIp = (svc: Service) => svc.type !== "ExternalName" && svc.clusterIP !== "None";
  const families = (svc: Service): Family[] => {
    const available = serviceCidrs.map((c) => c.family);
    if (svc.ipFamilyPolicy !== "SingleStack") return available;
    const asked = svc.ipFamilies[0];
    const family: Family = asked === "IPv6" ? 6 : asked === "IPv4" ? 4 : (available[0] ?? 4);
    return [family];
  };

  // Pass 1: explicit addresses and ports from the manifests.
  services.forEach((svc, i) => {
    const plan = planned[i] as ServicePlan;
    const ref = objectRef("Service", svc.meta);
    const source = svc.meta.source;
    if (svc.ipFamilyPolicy === "RequireDualStack" && serviceCidrs.length < 2)
      report({
        code: "dual-stack",
        object: ref,
        path: "spec.ipFamilyPolicy",
        source,
        message: `RequireDualStack but cluster ${cluster.meta.name} has only ${familyName(first.family)} service CIDRs`,
        hint: "add a service CIDR of the other family to the Cluster, or use PreferDualStack",
      });
    for (const family of families(svc)) {
      if (!serviceCidrs.some((c) => c.family === family))
        report({
          code: "ip-family",
          object: ref,
          path: "spec.ipFamilies",
          source,
          message: `asks for ${familyName(family)} but cluster ${cluster.meta.name} has no ${familyName(family)} service CIDR`,
          hint: "remove spec.ipFamilies or add a service CIDR of that family to the Cluster",
        });
    }
    const explicit = svc.clusterIPs.length > 0 ? svc.clusterIPs : svc.clusterIP ? [svc.clusterIP] : [];
    if (wantsClusterIp(svc)) {
      for (const text of explicit) {
        const ip = tryParseIp(text);
        const index = ip ? serviceCidrs.findIndex((c) => c.family === ip.family) : -1;
        const allocator = clusterIps[index];
        let why: string | undefined;
        if (!ip) why = "it is not an IP address";
        else if (!allocator) why = `the cluster has no ${familyName(ip.family)} service CIDR`;
        else if (index === 0 && ip.value === dnsIp.value && !isDnsService(svc))
          why = "it is the cluster DNS address (kube-system/kube-dns)";
        else if (!(isDnsService(svc) && ip.value === dnsIp.value)) why = allocator.claim(ip);
        if (ip && !why) plan.clusterIPs.push(formatIp(ip));
        else
          report({
            code: "cluster-ip",
            object: ref,
            path: "spec.clusterIP",
            source,
            message: `clusterIP ${text} cannot be used: ${why}`,
            hint: `use a free address inside ${cluster.serviceCIDRs.join(" or ")}, or remove spec.clusterIP to have one allocated`,
          });
      }
    }
    svc.ports.forEach((port, p) => {
      if (port.nodePort === undefined) return;
      // One Service may give one nodePort to ports of different protocols (validation refuses the same
      // protocol twice): the number is claimed once.
      if (svc.ports.slice(0, p).some((q) => q.nodePort === port.nodePort)) return;
      const why = nodePorts.claim(port.nodePort);
      if (why)
        report({
          code: "node-port",
          object: ref,
          path: `spec.ports[${p}].nodePort`,
          source,
          message: `nodePort ${port.nodePort} cannot be used: ${why}`,
          hint: `choose another port in ${NODE_PORT_RANGE.min}-${NODE_PORT_RANGE.max}, or remove nodePort to have one allocated`,
        });
    });
    for (const text of [svc.loadBalancerIP, ...svc.loadBalancerIngress].filter(Boolean) as string[]) {
      const ip = tryParseIp(text);
      if (!ip || plan.loadBalancerIPs.includes(text)) continue;
      for (const pool of lbPool) if (pool.cidr.family === ip.family) pool.claim(ip);
      if (svc.type === "LoadBalancer") plan.loadBalancerIPs.push(formatIp(ip));
    }
  });

  // Pass 2: what the previous plan gave. Pass 3: allocate the rest.
  services.forEach((svc, i) => {
    const plan = planned[i] as ServicePlan;
    const before = previousServices.get(`${plan.namespace}/${plan.name}`);
    if (!before) return;
    if (wantsClusterIp(svc) && plan.clusterIPs.length === 0) {
      for (const text of before.clusterIPs) {
        const ip = tryParseIp(text);
        const allocator = clusterIps.find((a) => ip && a.cidr.family === ip.family);
        if (ip && allocator && families(svc).includes(ip.family) && !allocator.claim(ip))
          plan.clusterIPs.push(text);
      }
    }
    plan.ports.forEach((port) => {
      const old = before.ports.find((p) => p.port === port.port && p.protocol === port.protocol);
      if (port.nodePort === undefined && old?.nodePort !== undefined && needsNodePort(svc)) {
        if (!nodePorts.claim(old.nodePort)) port.nodePort = old.nodePort;
      }
    });
    if (svc.type === "LoadBalancer" && plan.loadBalancerIPs.length === 0) {
      for (const text of before.loadBalancerIPs) {
        const ip = tryParseIp(text);
        const pool = lbPool.find((a) => ip && a.cidr.family === ip.family);
        if (ip && pool && !pool.claim(ip)) plan.loadBalancerIPs.push(text);
      }
    }
  });
  let exhausted = 0;
  let portsExhausted = 0;
  let lbPending = 0;
  services.forEach((svc, i) => {
    const plan = planned[i] as ServicePlan;
    // A service whose explicit clusterIP was refused keeps none: the error above says why.
    const explicit = svc.clusterIPs.length > 0 || svc.clusterIP !== undefined;
    if (wantsClusterIp(svc) && plan.clusterIPs.length === 0 && !explicit) {
      for (const family of families(svc)) {
        // kube-dns without an address gets the reserved DNS address (kubeadm writes it into its manifest).
        const reserved = isDnsService(svc) && family === dnsIp.family && !dnsWhy;
        const ip = reserved ? dnsIp : clusterIps.find((a) => a.cidr.family === family)?.allocate();
        if (ip) plan.clusterIPs.push(formatIp(ip));
        else if (serviceCidrs.some((c) => c.family === family)) exhausted++;
      }
    }
    if (needsNodePort(svc)) {
      for (const port of plan.ports) {
        if (port.nodePort !== undefined) continue;
        // As the API server allocates: ports with the same number (53/UDP and 53/TCP) share one nodePort.
        const sibling = plan.ports.find(
          (q) => q !== port && q.port === port.port && q.nodePort !== undefined,
        );
        if (sibling) {
          port.nodePort = sibling.nodePort;
          continue;
        }
        const allocated = nodePorts.allocate();
        if (allocated === undefined) portsExhausted++;
        else port.nodePort = allocated;
      }
    }
    if (svc.type === "LoadBalancer" && plan.loadBalancerIPs.length === 0) {
      const ip = lbPool[0]?.allocate();
      if (ip) plan.loadBalancerIPs.push(formatIp(ip));
      else lbPending++;
    }
  });
  if (exhausted > 0)
    report({
      code: "exhausted-cluster-ips",
      object: `Cluster ${cluster.meta.name}`,
      path: "spec.serviceCIDRs",
      source: cluster.meta.source,
      message: `${services.filter(wantsClusterIp).length} services need ClusterIPs but service CIDR ${cluster.serviceCIDRs.join(", ")} holds ${clusterIps.map((a) => a.capacity()).join(", ")}; ${exhausted} have none`,
      hint: "use a larger spec.serviceCIDRs range",
    });
  if (portsExhausted > 0)
    report({
      code: "exhausted-node-ports",
      object: `Cluster ${cluster.meta.name}`,
      message: `${portsExhausted} service ports get no nodePort: the range ${NODE_PORT_RANGE.min}-${NODE_PORT_RANGE.max} is full`,
      hint: "use fewer NodePort/LoadBalancer services or ports",
    });
  if (lbPending > 0)
    report({
      severity: "warning",
      code: "load-balancer-pending",
      object: `Cluster ${cluster.meta.name}`,
      path: "spec.loadBalancerCIDRs",
      source: cluster.meta.source,
      message: `${lbPending} LoadBalancer services get no address (pending): ${lbCidrs.length ? `the pool ${cluster.loadBalancerCIDRs.join(", ")} is full` : "the cluster has no load-balancer pool"}`,
      hint: "add or enlarge spec.loadBalancerCIDRs, or set spec.loadBalancerIP",
    });
  return { services: planned, dnsServiceIP: formatIp(dnsIp) };
}

function isDnsService(svc: Service): boolean {
  return svc.meta.namespace === "kube-system" && svc.meta.name === "kube-dns";
}

function needsNodePort(svc: Service): boolean {
  return svc.type === "NodePort" || svc.type === "LoadBalancer";
}

/** Hands out ports of an inclusive range, lowest first. */
class PortAllocator {
  private used = new Set<number>();
  private cursor: number;
  constructor(
    private readonly min: number,
    private readonly max: number,
  ) {
    this.cursor = min;
  }
  claim(port: number): string | undefined {
    if (port < this.min || port > this.max) return `it is outside ${this.min}-${this.max}`;
    if (this.used.has(port)) return "another service already uses it";
    this.used.add(port);
    return undefined;
  }
  allocate(): number | undefined {
    while (this.cursor <= this.max && this.used.has(this.cursor)) this.cursor++;
    if (this.cursor > this.max) return undefined;
    this.used.add(this.cursor);
    return this.cursor;
  }
}

function planExternalHosts(
  cluster: Cluster,
  state: DesiredState,
  externalCidr: Cidr,
  previous: ClusterPlan | undefined,
  report: Report,
): ExternalHostPlan[] {
  const hosts = inCluster(state.externalHosts, cluster.meta.name);
  const allocator = new AddressAllocator(externalCidr, { reserved: [ROUTER_OFFSET] });
  const address = new Map<string, string>();
  const previousHosts = new Map(previous?.externalHosts.map((h) => [h.name, h.address]));
  for (const host of hosts) {
    if (!host.address) continue;
    const ip = tryParseIp(host.address);
    // Addresses outside the external network are allowed (the router gets a host route for them);
    // the range checks say when such an address aliases a cluster range.
    const why = !ip
      ? "it is not an IP address"
      : allocator.cidr.family === ip.family && containsIp(allocator.cidr, ip)
        ? allocator.claim(ip)
        : undefined;
    if (ip && !why) address.set(host.meta.name, formatIp(ip));
    else
      report({
        code: "external-address",
        object: objectRef("ExternalHost", host.meta),
        path: "spec.address",
        source: host.meta.source,
        message: `address ${host.address} cannot be used: ${why}`,
        hint: `use a free address in ${formatCidr(externalCidr)}, or remove spec.address to have one allocated`,
      });
  }
  for (const host of hosts) {
    const before = previousHosts.get(host.meta.name);
    const ip = before ? tryParseIp(before) : undefined;
    if (
      !address.has(host.meta.name) &&
      !host.address &&
      ip &&
      containsIp(allocator.cidr, ip) &&
      !allocator.claim(ip)
    )
      address.set(host.meta.name, before as string);
  }
  let missing = 0;
  const planned = hosts.map((host) => {
    let text = address.get(host.meta.name);
    if (!text && !host.address) {
      const ip = allocator.allocate();
      if (ip) text = formatIp(ip);
      else missing++;
    }
    return { name: host.meta.name, address: text ?? "" };
  });
  if (missing > 0)
    report({
      code: "exhausted-external-addresses",
      object: `Cluster ${cluster.meta.name}`,
      path: "spec.externalCIDR",
      source: cluster.meta.source,
      message: `${hosts.length} external hosts but external CIDR ${formatCidr(externalCidr)} holds ${allocator.capacity()}; ${missing} have no address`,
      hint: "use a larger spec.externalCIDR",
    });
  return planned;
}
