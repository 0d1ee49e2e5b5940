/**
 * The two-cluster tour (`podnet lab tour examples/two-clusters.yaml`): clusters peered router to router,
 * DNS forwarded from one to the other, and a client reaching each member of a remote StatefulSet by the
 * name the remote DNS gives it. Built twice: as written (routed: the remote pod IPs are addressable, no
 * NAT), then with the remote cluster on the vxlan fabric (DNS still answers, the pod IPs are not
 * reachable, and the plan and the probe say why). Every claim it prints is a probe, a dig or a kernel
 * listing made just before.
 */
import { formatDiagnostic, loadManifestSources } from "../api/index.js";
import type { Cluster, DesiredState, DnsForwardZone } from "../api/types.js";
import { planAddresses } from "../plan/index.js";
import { ownerOfAddress, peeringReachability } from "../plan/peering.js";
import type { AddressPlan, ClusterPlan, ServicePlan } from "../plan/types.js";
import { isClusterDnsPod } from "./cluster-dns.js";
import { netnsNames } from "./names.js";
import { explainBlocked } from "./probe.js";
import { type AppliedPod, readLabState } from "./store.js";
import { inNs, TourNarrator, type TourOptions, type TourResult, withFabric } from "./tour-kit.js";

/** What the tour shows: who forwards which namespace to whom, and the headless Service found there. */
interface TourCast {
  client: Cluster;
  forward: DnsForwardZone;
  remote: string;
  namespace: string;
  service: ServicePlan;
}

/** Does the manifest set hold what this tour needs: several clusters and a zone forwarded to one of them? */
export function isClustersTour(state: DesiredState): boolean {
  return state.clusters.length > 1 && state.clusters.some((c) => c.dns.forward.some((f) => f.cluster));
}

function castOf(state: DesiredState, plan: AddressPlan): TourCast {
  for (const client of state.clusters)
    for (const forward of client.dns.forward) {
      const remote = forward.cluster;
      const remotePlan = plan.clusters.find((c) => c.name === remote);
      if (!remote || !remotePlan) continue;
      // remote.svc.cluster.local forwards the namespace `remote` of the remote cluster.
      const suffix = `.svc.${remotePlan.domain}`;
      const namespace = forward.zone.endsWith(suffix) ? forward.zone.slice(0, -suffix.length) : "";
      const service = remotePlan.services.find(
        (s) => s.namespace === namespace && s.headless && s.ports.some((p) => p.name),
      );
      if (service) return { client, forward, remote, namespace, service };
    }
  throw new Error(
    "the tour needs a Cluster whose spec.dns.forward names another cluster (cluster: NAME) for a zone NS.svc.DOMAIN, and a headless Service with a named port in namespace NS of that cluster (see examples/two-clusters.yaml)",
  );
}

export async function runClustersTour(options: TourOptions): Promise<TourResult> {
  const { lab } = options;
  const n = new TourNarrator(options.write);
  const loaded = loadManifestSources(options.sources);
  const errors = loaded.diagnostics.filter((d) => d.severity === "error");
  if (errors.length) throw new Error(errors.map((d) => formatDiagnostic(d)).join("\n"));
  const cast = castOf(loaded.state, planAddresses(loaded.state));
  n.say(
    `podnet two-cluster tour: the clusters of ${options.sources.map((s) => s.file).join(", ")} in one lab ("${lab}"), ` +
      `peered router to router; ${cast.client.meta.name}'s DNS forwards ${cast.forward.zone} to ${cast.remote}'s DNS${cast.forward.tls ? " over TLS" : ""}. ` +
      `Built twice: as written, then with ${cast.remote} on the vxlan fabric.`,
  );
  const variants = [
    { title: "as written", sources: options.sources },
    {
      title: `${cast.remote} on the vxlan fabric`,
      sources: withFabric(options.sources, { mode: "vxlan" }, cast.remote),
    },
  ];
  for (const variant of variants) {
    const state = loadManifestSources(variant.sources).state;
    const plan = planAddresses(state);
    const reach = peeringReachability(plan, cast.client.meta.name, cast.remote);
    showPlan(n, variant.title, plan, cast);
    n.step(`Bring up both clusters (podnet lab up), ${variant.title}`);
    await n.withLab(lab, variant.sources, async () => {
      const lab_ = readLabState(lab);
      const livePlan = lab_?.plan;
      if (!lab_ || !livePlan) throw new Error("the lab has no plan");
      showRoutes(n, lab, livePlan, cast, reach.podsAddressable);
      await showRemoteMembers(n, lab_.pods, livePlan, cast, reach);
    });
  }
  return n.summary();
}

function showPlan(n: TourNarrator, title: string, plan: AddressPlan, cast: TourCast): void {
  n.step(`The address plan (podnet plan), ${title}`);
  for (const c of plan.clusters)
    n.say(
      `   cluster ${c.name}: nodes ${c.ranges.nodeCIDR}, pods ${c.ranges.podCIDRs.join(", ")}, services ${c.ranges.serviceCIDRs.join(", ")}; fabric ${c.fabric.mode}${c.fabric.podsAddressableFromOutside ? " (pod blocks advertised to the router)" : ""}`,
    );
  for (const p of plan.peerings ?? [])
    n.say(`   peering ${p.name}: ${p.clusters.join(" ↔ ")} over ${p.transitCIDR}`);
  const errors = plan.diagnostics.filter((d) => d.severity === "error");
  n.expect(
    "no overlapping ranges, no service range aliasing anything addressable",
    errors.length === 0,
    errors.map((d) => d.message).join("; ") || `${plan.clusters.length} clusters checked`,
  );
  for (const d of plan.diagnostics.filter((x) => x.severity === "warning")) n.say(`   warning: ${d.message}`);
  const reach = peeringReachability(plan, cast.client.meta.name, cast.remote);
  n.say(`   ${cast.client.meta.name} → pod IPs of ${cast.remote}: ${reach.reason}`);
}

function showRoutes(
  n: TourNarrator,
  lab: string,
  plan: AddressPlan,
  cast: TourCast,
  podsAddressable: boolean,
): void {
  const client = plan.clusters.find((c) => c.name === cast.client.meta.name) as ClusterPlan;
  const remote = plan.clusters.find((c) => c.name === cast.remote) as ClusterPlan;
  n.step(`The routes of ${client.name}'s router towards ${remote.name}`);
  const router = netnsNames.underlay(lab, client.name);
  const listing = inNs(router, "ip", ["route", "show"]).out.split("\n");
  const towards = (cidr: string) => listing.find((l) => l.startsWith(`${cidr} `));
  for (const cidr of [remote.ranges.nodeCIDR, ...remote.ranges.podCIDRs]) {
    const line = towards(cidr);
    n.say(`   ${line ?? `${cidr}: no route`}`);
  }
  const podRoute = towards(remote.ranges.podCIDRs[0] as string);
  n.expect(
    podsAddressable
      ? `${client.name}'s router routes ${remote.name}'s pod range over the peering`
      : `${client.name}'s router has no route to ${remote.name}'s pod range (not advertised)`,
    podsAddressable ? podRoute !== undefined : podRoute === undefined,
    podRoute ?? "none",
  );
}

async function showRemoteMembers(
  n: TourNarrator,
  pods: readonly AppliedPod[],
  plan: AddressPlan,
  cast: TourCast,
  reach: ReturnType<typeof peeringReachability>,
): Promise<void> {
  const client = pods.find(
    (p) =>
      p.cluster === cast.client.meta.name && !p.hostNetwork && p.ports.length === 0 && !isClusterDnsPod(p),
  );
  if (!client) throw new Error(`cluster ${cast.client.meta.name} has no client pod (a pod serving no port)`);
  const clientNs = client.netns.slice("/run/netns/".length);
  const remote = plan.clusters.find((c) => c.name === cast.remote) as ClusterPlan;
  const port = cast.service.ports.find((p) => p.name) as NonNullable<ServicePlan["ports"][number]>;
  const srvName = `_${port.name}._${port.protocol.toLowerCase()}.${cast.service.name}.${cast.namespace}.svc.${remote.domain}`;
  n.step(
    `SRV lookup from ${client.namespace}/${client.name} in ${client.cluster}: ${cast.forward.zone} is forwarded to ${cast.remote}'s DNS${cast.forward.tls ? " over TLS (port 853)" : ""}`,
  );
  const srv = inNs(clientNs, "dig", ["+short", "+time=2", "+tries=2", "SRV", srvName]);
  // "0 33 5432 db-0.db.remote.svc.cluster.local." per member.
  const targets = srv.out
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length === 4)
    .map((f) => ({ port: Number(f[2]), name: (f[3] as string).replace(/\.$/, "") }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const members = pods.filter((p) => p.cluster === cast.remote && p.namespace === cast.namespace);
  n.expect(
    `dig SRV ${srvName} names every member`,
    srv.ok && targets.length > 0 && targets.length >= members.filter((p) => p.ports.length > 0).length,
    targets.map((t) => `${t.name}:${t.port}`).join(", ") || srv.out || "no answer",
  );
  n.step(
    `Each member by its name: the A record comes from ${cast.remote}'s DNS; then a connection to it ${reach.podsAddressable ? "(routed: directly, no NAT)" : "(not addressable from here)"}`,
  );
  for (const t of targets) {
    const a = inNs(clientNs, "dig", ["+short", "+time=2", "+tries=2", t.name]);
    const ip = a.out.split("\n")[0]?.trim() ?? "";
    const member = members.find((p) => p.ips.includes(ip));
    n.expect(
      `${t.name} resolves to a pod IP of ${cast.remote}`,
      a.ok && member !== undefined,
      member ? `${ip} (${member.namespace}/${member.name} on ${member.node})` : a.out || "no answer",
    );
    if (!member) continue;
    const want = reach.podsAddressable ? "connected" : "blocked";
    const r = await n.probeShow(
      `${client.name} → ${t.name} ${want}`,
      clientNs,
      `${client.namespace}/${client.name}`,
      ip,
      t.port,
      want,
    );
    if (reach.podsAddressable)
      n.expect(
        `${member.name} saw the client pod's own IP`,
        (r.answer ?? "").includes(` ${client.ips[0]}:`),
        `client ${client.ips[0]}`,
      );
    else {
      // What `podnet lab probe` prints under a blocked probe, from the same function.
      const why = explainBlocked(
        plan,
        {
          label: `${client.namespace}/${client.name}`,
          kind: "pod",
          cluster: client.cluster,
          ips: client.ips,
        },
        ip,
      );
      n.expect("the probe explains it from the plan", why !== undefined, `why: ${why ?? "(no explanation)"}`);
    }
  }
  showForwardConnections(n, pods, plan, cast, targets.length + 1);
}

/** The forwarding DNS server's open connections to the remote cluster: TLS (853, or a NodePort) is reused. */
function showForwardConnections(
  n: TourNarrator,
  pods: readonly AppliedPod[],
  plan: AddressPlan,
  cast: TourCast,
  lookups: number,
): void {
  const dns = pods.find((p) => p.cluster === cast.client.meta.name && isClusterDnsPod(p));
  if (!dns || !cast.forward.tls) return;
  const ss = inNs(dns.netns.slice("/run/netns/".length), "ss", ["-tnH", "state", "established"]);
  // "0 0 10.244.0.3:41234 10.245.1.3:853": local then peer address.
  const peers = ss.out
    .split("\n")
    .map((l) => l.trim().split(/\s+/).pop() ?? "")
    .filter((peer) => ownerOfAddress(plan, peer.replace(/:\d+$/, ""))?.cluster === cast.remote);
  n.expect(
    `after ${lookups} lookups, ${cast.client.meta.name}'s DNS pod holds ${peers.length} TLS connection${peers.length === 1 ? "" : "s"} to ${cast.remote}'s DNS (kept open and reused)`,
    ss.ok && peers.length > 0,
    peers
      .map((p) => {
        const owner = ownerOfAddress(plan, p.replace(/:\d+$/, ""));
        return `${p} (${owner?.what === "pod" ? `the DNS pod of ${cast.remote}` : `a node of ${cast.remote}: the DNS's NodePort`})`;
      })
      .join(", ") ||
      ss.out ||
      "none",
  );
}
