/**
 * A synthetic cluster for NetworkPolicy at scale (the benchmark) and for randomised cross-checks (unit
 * tests): N pods over namespaces and nodes with a few label values, named ports that resolve differently
 * on some pods, and P policies mixing pod, namespace and ipBlock peers, numeric and named ports, ingress
 * and egress. Deterministic for a given size.
 */
import type { LabelSelector, NetworkPolicy, NetworkPolicyRule } from "../api/types.js";
import type { PolicyPod, PolicyWorld } from "./model.js";

export interface SyntheticSize {
  pods: number;
  nodes: number;
  namespaces: number;
  policies: number;
}

const sel = (matchLabels: Record<string, string> = {}): LabelSelector => ({
  matchLabels,
  matchExpressions: [],
});

/** A /22 per node from 10.64.0.0 (1,022 pods a node). */
function podIp(node: number, slot: number): string {
  const v = (10 << 24) + (64 << 16) + node * 1024 + slot + 2;
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

export function syntheticWorld(size: SyntheticSize): PolicyWorld {
  const pods: PolicyPod[] = [];
  const perNode = new Array<number>(size.nodes).fill(0);
  for (let i = 0; i < size.pods; i++) {
    const node = i % size.nodes;
    const slot = perNode[node] as number;
    perNode[node] = slot + 1;
    const ns = `ns-${i % size.namespaces}`;
    // Some pods serve "http" on 8080 instead of 80: named ports resolve per pod.
    const http = i % 4 === 0 ? 8080 : 80;
    pods.push({
      key: `${ns}/p-${i}`,
      namespace: ns,
      name: `p-${i}`,
      node: `node-${node}`,
      // Every namespace has every app, each app a few pods; tiers cut across apps.
      labels: {
        app: `app-${Math.floor(i / size.namespaces) % 20}`,
        tier: ["web", "db", "cache"][Math.floor(i / size.namespaces / 20) % 3] as string,
      },
      ips: [podIp(node, slot)],
      hostNetwork: false,
      ports: [
        { name: "http", port: http, protocol: "TCP" },
        { name: "metrics", port: 81, protocol: "TCP" },
        { name: "dns", port: 53, protocol: "UDP" },
      ],
    });
  }
  const namespaceLabels = new Map<string, Record<string, string>>();
  for (let n = 0; n < size.namespaces; n++)
    namespaceLabels.set(`ns-${n}`, { "kubernetes.io/metadata.name": `ns-${n}`, team: `t${n % 5}` });
  const policies: NetworkPolicy[] = [];
  for (let j = 0; j < size.policies; j++) {
    const namespace = `ns-${j % size.namespaces}`;
    const ingress: NetworkPolicyRule[] = [
      {
        peers: [
          { podSelector: sel({ app: `app-${(j + 1) % 20}` }) },
          { namespaceSelector: sel({ team: `t${j % 5}` }), podSelector: sel({ tier: "web" }) },
        ],
        ports: j % 2 === 0 ? [{ protocol: "TCP", port: 80 }] : [{ protocol: "TCP", port: "http" }],
      },
    ];
    if (j % 10 === 3)
      ingress.push({
        peers: [{ ipBlock: { cidr: "10.64.0.0/16", except: [`10.64.${j % 50}.0/24`] } }],
        ports: [{ protocol: "TCP", port: 8000, endPort: 8100 }],
      });
    const egress: NetworkPolicyRule[] = [];
    if (j % 3 === 0) {
      egress.push({ peers: [{ namespaceSelector: sel() }], ports: [{ protocol: "UDP", port: 53 }] });
      egress.push({
        peers: [{ podSelector: sel({ tier: "db" }) }],
        ports: [{ protocol: "TCP", port: "http" }],
      });
    }
    policies.push({
      kind: "NetworkPolicy",
      meta: { name: `pol-${j}`, namespace, cluster: "bench", labels: {}, annotations: {} },
      podSelector: j % 50 === 0 ? sel() : sel({ app: `app-${j % 20}` }),
      policyTypes: egress.length ? ["Ingress", "Egress"] : ["Ingress"],
      ingress,
      egress,
    });
  }
  const nodeAddresses = new Map<string, string[]>();
  for (let n = 0; n < size.nodes; n++) nodeAddresses.set(`node-${n}`, [`172.16.${n >> 8}.${(n & 255) + 1}`]);
  return { cluster: "bench", pods, namespaceLabels, policies, nodeAddresses };
}

/** The same world with one pod's labels replaced (a label change). */
export function withPodLabels(
  world: PolicyWorld,
  podKey: string,
  labels: Record<string, string>,
): PolicyWorld {
  return { ...world, pods: world.pods.map((p) => (p.key === podKey ? { ...p, labels } : p)) };
}
