/**
 * Random sequences of changes to a small cluster's Services, as ProxyPlanner input (seeded: a failure can
 * be replayed). A Service's input objects are kept while it is unchanged, as the node agent's derivation
 * would, so that the planner's incremental path is what gets exercised. For planner.test.ts and
 * test/proxy-incremental.test.ts.
 */
import type { Service } from "../api/types.js";
import type { ServicePlan } from "../plan/types.js";
import type { HostPortMapping, ProxyEndpoint, ServiceEndpoints } from "./endpoints.js";
import type { ProxyInput } from "./plan.js";
import { syntheticServiceObject } from "./synthetic.js";

/** mulberry32: a small seeded generator, so that a failure can be replayed. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface PortModel {
  name: string;
  protocol: "TCP" | "UDP";
  port: number;
  targetPort: number;
  nodePort?: number;
}

interface EndpointModel {
  pod: number;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  targetPort: number;
}

export interface ServiceModel {
  name: string;
  id: number;
  type: "ClusterIP" | "NodePort" | "LoadBalancer";
  headless: boolean;
  dual: boolean;
  ports: PortModel[];
  lb: string[];
  ext: string[];
  etpLocal: boolean;
  itpLocal: boolean;
  affinity?: number;
  ranges: string[];
  endpoints: EndpointModel[];
}

/** Pods 0-5 on node-1 (this node), 6-11 on node-2; even ones dual-stack. */
const podIp = (pod: number) => `10.244.${pod < 6 ? 0 : 1}.${(pod % 6) + 2}`;
const podIp6 = (pod: number) => `fd00:244::${pod + 2}`;
const podNode = (pod: number) => (pod < 6 ? "node-1" : "node-2");

export class World {
  services: ServiceModel[] = [];
  hostPorts: HostPortMapping[] = [];
  private nextId = 1;
  /** The objects built for a Service, kept while it is unchanged (as the agent's derivation would). */
  private built = new Map<ServiceModel, { plan: ServicePlan; svc: Service; eps: ServiceEndpoints }>();
  constructor(readonly rnd: () => number) {}

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.rnd() * items.length)] as T;
  }
  chance(p: number): boolean {
    return this.rnd() < p;
  }

  newService(): ServiceModel {
    const id = this.nextId++;
    const s: ServiceModel = {
      name: `svc-${id}`,
      id,
      type: "ClusterIP",
      headless: false,
      dual: this.chance(0.2),
      ports: [{ name: "p0", protocol: "TCP", port: 80, targetPort: 8080 }],
      lb: [],
      ext: [],
      etpLocal: false,
      itpLocal: false,
      ranges: [],
      endpoints: [],
    };
    const n = Math.floor(this.rnd() * 4);
    for (let i = 0; i < n; i++) this.addEndpoint(s);
    return s;
  }

  addEndpoint(s: ServiceModel): void {
    const free = Array.from({ length: 12 }, (_, i) => i).filter((p) => !s.endpoints.some((e) => e.pod === p));
    if (free.length === 0) return;
    s.endpoints.push({
      pod: this.pick(free),
      ready: this.chance(0.85),
      serving: true,
      terminating: this.chance(0.1),
      targetPort: this.pick([8080, 8081]),
    });
  }

  /** One random change; returns what it was (for the failure message). */
  mutate(): string {
    const s = this.services.length > 0 ? this.pick(this.services) : undefined;
    const r = this.rnd();
    if (!s || r < 0.12) {
      this.services.splice(Math.floor(this.rnd() * (this.services.length + 1)), 0, this.newService());
      return "add service";
    }
    this.built.delete(s);
    const freeNodePort = () => 30000 + Math.floor(this.rnd() * 8);
    if (r < 0.2) {
      this.services.splice(this.services.indexOf(s), 1);
      return `remove ${s.name}`;
    }
    if (r < 0.32) {
      this.addEndpoint(s);
      return `endpoint + ${s.name}`;
    }
    if (r < 0.42) {
      s.endpoints.splice(Math.floor(this.rnd() * s.endpoints.length), 1);
      return `endpoint - ${s.name}`;
    }
    if (r < 0.48) {
      const e = s.endpoints[0];
      if (e) e.ready = !e.ready;
      return `endpoint readiness ${s.name}`;
    }
    if (r < 0.53) {
      const p = this.pick(s.ports);
      p.port = this.pick([80, 81, 443, 53]);
      return `port ${s.name}`;
    }
    if (r < 0.57) {
      const p = this.pick(s.ports);
      p.protocol = p.protocol === "TCP" ? "UDP" : "TCP";
      return `protocol ${s.name}`;
    }
    if (r < 0.61) {
      if (s.ports.length > 1) s.ports.pop();
      else s.ports.push({ name: "p1", protocol: "UDP", port: 53, targetPort: 5353 });
      return `ports ${s.name}`;
    }
    if (r < 0.66) {
      s.affinity = s.affinity === undefined ? this.pick([60, 10800]) : this.chance(0.5) ? undefined : 30;
      return `affinity ${s.name}`;
    }
    if (r < 0.7) {
      s.etpLocal = !s.etpLocal;
      return `externalTrafficPolicy ${s.name}`;
    }
    if (r < 0.74) {
      s.itpLocal = !s.itpLocal;
      return `internalTrafficPolicy ${s.name}`;
    }
    if (r < 0.8) {
      s.type = this.pick(["ClusterIP", "NodePort", "LoadBalancer"] as const);
      for (const p of s.ports) {
        if (s.type === "ClusterIP") delete p.nodePort;
        else p.nodePort = freeNodePort(); // rarely another Service's: a conflict
      }
      s.lb = s.type === "LoadBalancer" ? [`198.51.100.${s.id % 250}`] : [];
      return `type ${s.name}`;
    }
    if (r < 0.83) {
      s.ext = s.ext.length > 0 ? [] : [`203.0.113.${1 + Math.floor(this.rnd() * 3)}`];
      return `externalIPs ${s.name}`;
    }
    if (r < 0.86) {
      s.ranges = s.ranges.length > 0 ? [] : ["192.0.2.0/24", "2001:db8::/64"];
      return `sourceRanges ${s.name}`;
    }
    if (r < 0.89) {
      s.dual = !s.dual;
      return `dual-stack ${s.name}`;
    }
    if (r < 0.91) {
      s.headless = !s.headless;
      return `headless ${s.name}`;
    }
    if (r < 0.94) {
      const i = this.services.indexOf(s);
      const j = Math.floor(this.rnd() * this.services.length);
      [this.services[i], this.services[j]] = [this.services[j] as ServiceModel, s];
      return "order";
    }
    if (this.hostPorts.length > 0 && this.chance(0.5)) {
      this.hostPorts = this.hostPorts.slice(1);
      return "hostPort -";
    }
    const pod = Math.floor(this.rnd() * 6);
    this.hostPorts = [
      ...this.hostPorts,
      {
        node: "node-1",
        pod: `t/pod-${pod}`,
        protocol: this.pick(["TCP", "UDP"] as const),
        hostPort: 9000 + Math.floor(this.rnd() * 3),
        podIp: podIp(pod),
        family: 4,
        containerPort: 8080,
      },
    ];
    return "hostPort +";
  }

  private objectsOf(s: ServiceModel): { plan: ServicePlan; svc: Service; eps: ServiceEndpoints } {
    let b = this.built.get(s);
    if (b) return b;
    const ports = s.ports.map((p) => ({ ...p }));
    const plan: ServicePlan = {
      namespace: "t",
      name: s.name,
      type: s.type,
      clusterIPs: s.headless ? [] : [`10.96.0.${s.id}`, ...(s.dual ? [`fd00:96::${s.id}`] : [])],
      headless: s.headless,
      ports,
      loadBalancerIPs: [...s.lb],
      externalIPs: [...s.ext],
    };
    const svc: Service = {
      ...syntheticServiceObject(s.name, "t"),
      type: s.type,
      externalTrafficPolicy: s.etpLocal ? "Local" : "Cluster",
      internalTrafficPolicy: s.itpLocal ? "Local" : "Cluster",
      sessionAffinity: s.affinity === undefined ? "None" : "ClientIP",
      ...(s.affinity !== undefined ? { sessionAffinityTimeoutSeconds: s.affinity } : {}),
      loadBalancerSourceRanges: [...s.ranges],
    };
    const endpoints: ProxyEndpoint[] = [];
    for (const e of s.endpoints) {
      const portsOf: Record<string, number> = {};
      for (const p of s.ports) portsOf[p.name] = p.name === "p0" ? e.targetPort : p.targetPort;
      const common = { node: podNode(e.pod), pod: `t/pod-${e.pod}`, ports: portsOf };
      const conditions = { ready: e.ready, serving: e.serving, terminating: e.terminating };
      endpoints.push({ ip: podIp(e.pod), family: 4, ...common, ...conditions });
      if (s.dual && e.pod % 2 === 0)
        endpoints.push({ ip: podIp6(e.pod), family: 6, ...common, ...conditions });
    }
    b = { plan, svc, eps: { namespace: "t", name: s.name, source: "selector", endpoints } };
    this.built.set(s, b);
    return b;
  }

  input(): ProxyInput {
    const all = this.services.map((s) => this.objectsOf(s));
    return {
      services: all.map((b) => b.plan),
      serviceObjects: all.map((b) => b.svc),
      endpoints: all.map((b) => b.eps),
      node: { name: "node-1", addresses: ["172.18.0.2", "fc00::2"] },
      podCIDRs: ["10.244.0.0/16", "fd00:244::/64"],
      serviceCIDRs: ["10.96.0.0/16", "fd00:96::/112"],
      hostPorts: this.hostPorts,
    };
  }
}
