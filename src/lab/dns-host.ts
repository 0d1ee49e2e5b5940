/**
 * The cluster DNS servers of a lab, run by the workloads agent: one podnet DNS server per cluster inside
 * its DNS pod's network namespace (cluster-dns.ts), answering from the lab's state. Each sync swaps in a
 * zone built from the current state (records follow changes at once; the server has no cache for them),
 * and restarts a server only when its configuration changed (forwarded zones, upstreams, addresses).
 */
import type { DesiredState } from "../api/types.js";
import { buildClusterZone, type ClusterZone, clusterZoneInput } from "../dns/records/index.js";
import { parseDnsConfig } from "../dns/server/config.js";
import { type DnsServerHandle, startDnsServer } from "../dns/server/server.js";
import type { LookupResult, ZoneAnswerer } from "../dns/types.js";
import { clusterDnsConfig, isClusterDnsPod, type LabDnsContext } from "./cluster-dns.js";
import type { LabState } from "./store.js";

/** The answerer the server holds: the zone behind it is replaced on every sync. */
class SwappableZone implements ZoneAnswerer {
  constructor(public zone: ClusterZone) {}
  get zones(): readonly string[] {
    return this.zone.zones;
  }
  lookup(qname: string, qtype: string): LookupResult | undefined {
    return this.zone.lookup(qname, qtype);
  }
}

interface RunningDns {
  netns: string;
  config: string;
  zone: SwappableZone;
  handle: DnsServerHandle;
}

export class ClusterDnsHost {
  private readonly running = new Map<string, RunningDns>();

  constructor(private readonly log: (line: string) => void) {}

  /** Starts, updates or stops each cluster's DNS server to match `state` (desired: attached pods only). */
  async sync(state: LabState, desired: DesiredState): Promise<void> {
    const wanted = new Set<string>();
    const context: LabDnsContext | undefined = state.plan ? { lab: state.lab, plan: state.plan } : undefined;
    for (const plan of state.plan?.clusters ?? []) {
      const pod = state.pods.find((p) => p.cluster === plan.name && isClusterDnsPod(p));
      const cluster = desired.clusters.find((c) => c.meta.name === plan.name);
      if (!pod || !cluster) continue;
      wanted.add(plan.name);
      const zone = buildClusterZone(clusterZoneInput(desired, plan));
      const problems: string[] = [];
      const config = clusterDnsConfig(cluster, pod.ips, context, problems);
      const current = this.running.get(plan.name);
      if (current && current.config === config && current.netns === pod.netns) {
        current.zone.zone = zone;
        continue;
      }
      for (const p of problems) this.log(`cluster DNS of ${plan.name}: ${p}`);
      if (current) await this.stop(plan.name);
      const parsed = parseDnsConfig(config, `<cluster ${plan.name} DNS configuration>`);
      if (parsed.diagnostics.length) {
        this.log(`cluster DNS of ${plan.name}: ${parsed.diagnostics.map((d) => d.message).join("; ")}`);
        continue;
      }
      const swappable = new SwappableZone(zone);
      try {
        const handle = await startDnsServer(parsed.config, {
          clusterZone: () => swappable,
          netns: pod.netns,
          log: (m) => this.log(`cluster DNS of ${plan.name}: ${m}`),
        });
        this.running.set(plan.name, { netns: pod.netns, config, zone: swappable, handle });
      } catch (e) {
        this.log(`cluster DNS of ${plan.name}: could not start: ${(e as Error).message}`);
      }
    }
    for (const name of this.running.keys()) if (!wanted.has(name)) await this.stop(name);
  }

  /** Clusters whose DNS server runs. */
  clusters(): string[] {
    return [...this.running.keys()];
  }

  async stop(cluster: string): Promise<void> {
    const r = this.running.get(cluster);
    this.running.delete(cluster);
    await r?.handle.close();
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.running.keys()].map((c) => this.stop(c)));
  }
}
