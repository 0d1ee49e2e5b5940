/**
 * The quick-start tour (`npm run demo`, `podnet lab tour`): builds the quick-start cluster twice, routed
 * then VXLAN, and shows with real packets what the Kubernetes network model promises and what each
 * fabric changes. Every claim it prints is a probe or a kernel listing made just before.
 */
import { isClusterDnsPod } from "./cluster-dns.js";
import type { labUp } from "./lab.js";
import { netnsNames } from "./names.js";
import { probe } from "./probe.js";
import { type AppliedPod, readLabState } from "./store.js";
import { inNs, TourNarrator, type TourOptions, type TourResult, withFabric } from "./tour-kit.js";

export type { TourOptions } from "./tour-kit.js";

export async function runTour(options: TourOptions): Promise<TourResult> {
  const { lab } = options;
  const n = new TourNarrator(options.write);
  const say = (text: string) => n.say(text);
  const step = (title: string) => n.step(title);
  const expect = (what: string, ok: boolean, detail: string) => n.expect(what, ok, detail);
  const probeShow = n.probeShow.bind(n);

  say(
    `podnet quick-start tour: the cluster of ${options.sources.map((s) => s.file).join(", ")}, built twice on this machine ` +
      `(lab "${lab}": namespaces for the router, nodes, pods and an external host; real packets), once per fabric.`,
  );
  for (const mode of ["routed", "vxlan"] as const) {
    const sources =
      mode === "routed"
        ? withFabric(options.sources, { mode: "routed", advertiseToRouter: true })
        : withFabric(options.sources, { mode: "vxlan" });
    step(`Bring up the quick-start cluster with the ${mode} fabric (podnet lab up)`);
    await n.withLab(lab, sources, (up) => tourOneFabric(mode, up));
  }
  return n.summary();

  async function tourOneFabric(
    mode: "routed" | "vxlan",
    up: Awaited<ReturnType<typeof labUp>>,
  ): Promise<void> {
    const state = readLabState(lab);
    const cluster = state?.plan?.clusters[0];
    if (!state || !cluster) throw new Error("the lab has no cluster");
    const pods = up.state.pods.filter((p) => !p.hostNetwork);
    for (const n of cluster.nodes)
      say(`   node ${n.name}: eth0 ${n.address}, pod block ${n.podCIDRs.join(", ")}`);
    for (const p of pods)
      say(
        `   pod ${p.namespace}/${p.name} on ${p.node}: ${p.ips.join(", ")}${p.ports.length ? `, serving ${p.ports.map((x) => `${x.port}/${x.protocol}`).join(",")}` : ""}`,
      );

    // The client (a pod serving nothing, as shop/client) reaches a serving pod on its own node and one on
    // another node: the paths the tour shows, and the ones the quick-start's NetworkPolicy admits.
    const client = pods.find((p) => p.ports.length === 0) ?? (pods[0] as AppliedPod);
    // The DNS pod serves DNS, not the built-in responder that reports the client address: never a target here.
    const serving = pods.filter((p) => p.ports.length > 0 && p !== client && !isClusterDnsPod(p));
    const sameNode = serving.find((p) => p.node === client.node);
    const otherNode = serving.find((p) => p.node !== client.node);
    const portOf = (p: AppliedPod) => p.ports[0]?.port ?? 8080;
    const nsOf = (p: AppliedPod) => p.netns.slice("/run/netns/".length);

    if (mode === "routed" && sameNode) {
      step("Pods on one node: veth pairs on the node's bridge cbr0, no routing, no NAT");
      await probeShow(
        "same-node pod to pod",
        nsOf(client),
        `${client.namespace}/${client.name}`,
        sameNode.ips[0] as string,
        portOf(sameNode),
        "connected",
      );
    }
    if (otherNode) {
      step(`Pods across nodes (${mode})`);
      const nodeNs = netnsNames.node(lab, cluster.name, client.node);
      const block = cluster.nodes.find((n) => n.name === otherNode.node)?.podCIDRs[0] ?? "";
      const routes = inNs(nodeNs, "ip", ["route", "show", block]).out;
      say(`   ${client.node}'s route to ${otherNode.node}'s pod block: ${routes || "(none)"}`);
      if (mode === "vxlan") {
        const dev = inNs(nodeNs, "ip", ["-d", "link", "show", "vxlan0"]).out;
        const vni = / id (\d+)/.exec(dev)?.[1];
        const dstport = /dstport (\d+)/.exec(dev)?.[1];
        const mtu = / mtu (\d+)/.exec(dev)?.[1];
        say(
          `   vxlan0: VNI ${vni}, UDP port ${dstport}, MTU ${mtu} = underlay ${cluster.fabric.underlayMTU} - 50 bytes of outer Ethernet/IP/UDP/VXLAN headers`,
        );
      }
      const r = await probeShow(
        "cross-node pod to pod, no NAT",
        nsOf(client),
        `${client.namespace}/${client.name}`,
        otherNode.ips[0] as string,
        portOf(otherNode),
        "connected",
      );
      expect(
        "the server saw the client pod's own IP",
        (r.answer ?? "").includes(` ${client.ips[0]}:`),
        `client ${client.ips[0]}`,
      );
      const mtu = cluster.fabric.podMTU;
      const big = mtu - 28;
      // One ICMP echo of `size` bytes of payload with Don't Fragment: passes only if it fits the path MTU.
      // Towards the client: a pod no NetworkPolicy isolates answers ICMP (the web pods admit only TCP).
      const pingDf = (size: number) =>
        inNs(nsOf(otherNode), "ping", [
          "-c",
          "1",
          "-W",
          "1",
          "-M",
          "do",
          "-s",
          String(size),
          client.ips[0] as string,
        ]);
      const pass = pingDf(big);
      const fail = pingDf(big + 1);
      expect(`pod MTU ${mtu}: ${big} bytes of ICMP payload with DF pass`, pass.ok, "");
      expect(
        `${big + 1} bytes with DF do not`,
        !fail.ok,
        /message too long|mtu/i.exec(fail.out)?.[0] ?? "dropped",
      );
    }
    const svc = cluster.services.find(
      (x) => x.clusterIPs.length > 0 && x.ports.length > 0 && x.name !== "kubernetes",
    );
    if (svc) {
      const vip = svc.clusterIPs[0] as string;
      const svcPort = svc.ports[0]?.port ?? 80;
      step(
        `Service ${svc.namespace}/${svc.name}: ClusterIP ${vip}:${svcPort}, load-balanced by each node's nftables rules`,
      );
      const seen = new Map<string, number>();
      let connected = 0;
      for (let i = 0; i < 20; i++) {
        const r = await probe({
          fromNetns: client.netns,
          host: vip,
          port: svcPort,
          protocol: "TCP",
          timeoutMs: 2000,
        });
        if (r.outcome !== "connected") continue;
        connected++;
        const who = (r.answer ?? "").split(" ")[0] ?? "";
        seen.set(who, (seen.get(who) ?? 0) + 1);
      }
      expect(
        `20 connections from ${client.namespace}/${client.name} to the ClusterIP`,
        connected === 20 && seen.size >= 2,
        `${connected} connected, answered by ${[...seen].map(([k, n]) => `${k} ×${n}`).join(", ")}`,
      );
      step(
        `Cluster DNS: the DNS pod behind kube-system/kube-dns (${cluster.dnsServiceIP}); the client's resolv.conf searches ${client.namespace}.svc.${cluster.domain}`,
      );
      // dig inside the pod: `ip netns exec` mounts the pod's resolv.conf over /etc/resolv.conf.
      const short = inNs(nsOf(client), "dig", ["+short", "+search", "+time=2", svc.name]);
      expect(
        `dig +search ${svc.name} from ${client.namespace}/${client.name} gives the ClusterIP`,
        short.ok && short.out.trim() === vip,
        short.out.trim() || "no answer",
      );
      const srv = inNs(nsOf(client), "dig", [
        "+short",
        "+time=2",
        "SRV",
        `_${svc.ports[0]?.name ?? "http"}._tcp.${svc.name}.${svc.namespace}.svc.${cluster.domain}`,
      ]);
      if (svc.ports[0]?.name)
        expect(
          `SRV of the named port ${svc.ports[0].name}`,
          srv.ok && srv.out.includes(`${svcPort}`),
          srv.out.trim(),
        );
    }

    const ext = cluster.externalHosts[0];
    if (ext) {
      const extNs = netnsNames.external(lab, cluster.name, ext.name);
      const extPort =
        (
          state.objects.find((o) => o.value.kind === "ExternalHost")?.value as
            | { spec?: { ports?: { port: number }[] } }
            | undefined
        )?.spec?.ports?.[0]?.port ?? 80;
      step(`A pod reaches external host ${ext.name} (${ext.address}) through masquerade`);
      const r = await probeShow(
        "pod to external host",
        nsOf(client),
        `${client.namespace}/${client.name}`,
        ext.address,
        extPort,
        "connected",
      );
      const nodeAddr = cluster.nodes.find((n) => n.name === client.node)?.address ?? "";
      expect(
        "the external host saw the node's address, not the pod's",
        (r.answer ?? "").includes(` ${nodeAddr}:`),
        `node ${client.node} is ${nodeAddr}`,
      );
      step(
        `The external host reaches pod IPs ${mode === "routed" ? "directly (the router holds routes to the pod blocks)" : "not at all (VXLAN: pods are not addressable from outside)"}`,
      );
      if (mode === "routed") {
        const routes = inNs(netnsNames.underlay(lab, cluster.name), "ip", [
          "route",
          "show",
          "proto",
          "boot",
        ]).out;
        say(`   router: ${routes.split("\n").join("; ")}`);
      }
      // ICMP to the client pod: no NetworkPolicy isolates it, so only the routing decides.
      const ping = inNs(extNs, "ping", ["-c", "1", "-W", "1", client.ips[0] as string]);
      expect(
        `external host to pod IP ${client.ips[0]} ${mode === "routed" ? "answers (ping)" : "gets no answer (ping)"}`,
        mode === "routed" ? ping.ok : !ping.ok,
        /\d+ received/.exec(ping.out)?.[0] ?? ping.out.split("\n").pop() ?? "",
      );
      const isolated = serving.find((p) => p.namespace === client.namespace);
      const policy = state.objects.find((o) => o.value.kind === "NetworkPolicy")?.value as
        | { metadata?: { name?: string; namespace?: string } }
        | undefined;
      if (mode === "routed" && isolated && policy) {
        // The route is there; the NetworkPolicy of the serving pods admits only the client pods.
        await probeShow(
          `external host to ${isolated.namespace}/${isolated.name} is blocked by NetworkPolicy ${policy.metadata?.namespace ?? "default"}/${policy.metadata?.name}`,
          extNs,
          `external/${ext.name}`,
          isolated.ips[0] as string,
          portOf(isolated),
          "blocked",
        );
        // Inside the cluster too: a serving pod is no client, so the other serving pod refuses it.
        const peer = serving.find((p) => p !== isolated && p.namespace === isolated.namespace);
        if (peer) {
          step(
            `NetworkPolicy ${policy.metadata?.namespace ?? "default"}/${policy.metadata?.name}: the serving pods admit only the client pods (enforced in every node)`,
          );
          await probeShow(
            `pod to pod without the client label is blocked`,
            nsOf(peer),
            `${peer.namespace}/${peer.name}`,
            isolated.ips[0] as string,
            portOf(isolated),
            "blocked",
          );
        }
      }
    }
  }
}
