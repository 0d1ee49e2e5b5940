/**
 * Probes from a pod's network namespace: does a TCP connect or a UDP exchange from pod A reach host:port,
 * and who answered (the responder's first line, see responder.ts)? The lab's reachability matrix runs
 * one per pair of pods, so probeMany runs them concurrently: a blocked pair costs its whole timeout.
 *
 * Outcomes:
 *   connected  TCP: the handshake completed (`answer` is the first line read within the timeout, if any);
 *              UDP: an answer arrived within the timeout.
 *   blocked    with `reason`: "timeout" (dropped somewhere, or a UDP port nobody answers), "refused" (TCP
 *              RST, or ICMP port unreachable on UDP), "unreachable" (ICMP host/net unreachable, or no
 *              route), "denied" (a local firewall rule refused the packet: EPERM), else "error: <message>".
 * A probe that cannot be set up (no such namespace) rejects: that is not a network outcome.
 */
import { isIP } from "node:net";
import { containsIp, tryParseCidr, tryParseIp } from "../ipam/cidr.js";
import { connectTcp, type IpFamily, udpSocket } from "../linux/netns-native.js";
import { ownerOfAddress, peeringReachability } from "../plan/peering.js";
import type { AddressPlan } from "../plan/types.js";

export interface ProbeSpec {
  /** The namespace the probe starts in, e.g. /run/netns/<pod>. */
  fromNetns: string;
  /** An IP address (v4 or v6). */
  host: string;
  port: number;
  protocol: "TCP" | "UDP";
  timeoutMs: number;
}

export interface ProbeResult {
  outcome: "connected" | "blocked";
  /** Until connected (TCP), the answer (UDP), or giving up. */
  latencyMs: number;
  /** The first line of the responder's reply, without the newline. */
  answer?: string;
  /** Why blocked: "timeout", "refused", "unreachable", "denied", "error: ...". */
  reason?: string;
}

/** What the payload of a UDP probe says (the responder ignores it; a packet capture shows it). */
const UDP_PAYLOAD = "podnet probe\n";

/** Maps a socket error to a probe's reason. */
export function blockedReason(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  switch (code) {
    case "ETIMEDOUT":
      return "timeout";
    case "ECONNREFUSED":
    case "ECONNRESET":
      return "refused";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EADDRNOTAVAIL":
      return "unreachable";
    case "EPERM":
    case "EACCES":
      return "denied";
    default:
      return `error: ${(error as Error).message}`;
  }
}

function familyOf(host: string): IpFamily {
  const family = isIP(host);
  if (family === 0) throw new TypeError(`probe: host must be an IP address, got "${host}"`);
  return family as IpFamily;
}

/** Setup failures (namespace, addon) reject; everything the network does is a result. */
function isSetupError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === "ENOENT" || code === "ENOADDON" || error instanceof TypeError;
}

async function probeTcp(spec: ProbeSpec, started: number): Promise<ProbeResult> {
  let socket: Awaited<ReturnType<typeof connectTcp>>;
  try {
    socket = await connectTcp(spec.fromNetns, spec.host, spec.port, { timeoutMs: spec.timeoutMs });
  } catch (e) {
    if (isSetupError(e)) throw e;
    return { outcome: "blocked", latencyMs: performance.now() - started, reason: blockedReason(e) };
  }
  const latencyMs = performance.now() - started;
  const remaining = Math.max(1, spec.timeoutMs - latencyMs);
  const answer = await new Promise<string | undefined>((resolve) => {
    let text = "";
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      const nl = text.indexOf("\n");
      resolve(nl >= 0 ? text.slice(0, nl) : text || undefined);
    };
    const timer = setTimeout(done, remaining);
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      text += chunk;
      if (text.includes("\n") || text.length > 4096) done();
    });
    socket.on("end", done);
    socket.on("error", done);
  });
  return answer === undefined
    ? { outcome: "connected", latencyMs }
    : { outcome: "connected", latencyMs, answer };
}

async function probeUdp(spec: ProbeSpec, started: number): Promise<ProbeResult> {
  const socket = await udpSocket(spec.fromNetns, familyOf(spec.host));
  return new Promise<ProbeResult>((resolve) => {
    let finished = false;
    const finish = (result: ProbeResult) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.close();
      resolve(result);
    };
    const blocked = (reason: string) =>
      finish({ outcome: "blocked", latencyMs: performance.now() - started, reason });
    const timer = setTimeout(() => blocked("timeout"), spec.timeoutMs);
    socket.on("message", (payload) => {
      const text = payload.toString("utf8");
      const nl = text.indexOf("\n");
      finish({
        outcome: "connected",
        latencyMs: performance.now() - started,
        answer: nl >= 0 ? text.slice(0, nl) : text,
      });
    });
    // Connected, so that the kernel reports ICMP errors for this peer (ECONNREFUSED: port unreachable).
    socket.on("error", (e) => blocked(blockedReason(e)));
    // A failed connect (no route: ENETUNREACH) goes to the callback, not to "error" (untyped in @types/node).
    const onConnect = (e?: Error) => {
      if (finished) return; // timed out first: the socket is closed
      if (e) blocked(blockedReason(e));
      else socket.send(UDP_PAYLOAD);
    };
    socket.connect(spec.port, spec.host, onConnect as () => void);
  });
}

/** One probe from spec.fromNetns to host:port. */
export async function probe(spec: ProbeSpec): Promise<ProbeResult> {
  familyOf(spec.host);
  const started = performance.now();
  return spec.protocol === "TCP" ? probeTcp(spec, started) : probeUdp(spec, started);
}

export interface ProbeManyOptions {
  /** Probes in flight at once; default 256 (each holds one socket). */
  concurrency?: number;
}

/** Runs every probe, `concurrency` at a time; results in the order of `specs`. */
export async function probeMany(
  specs: readonly ProbeSpec[],
  options: ProbeManyOptions = {},
): Promise<ProbeResult[]> {
  const concurrency = Math.max(1, options.concurrency ?? 256);
  const results: ProbeResult[] = new Array(specs.length);
  let next = 0;
  const worker = async () => {
    while (next < specs.length) {
      const i = next++;
      results[i] = await probe(specs[i] as ProbeSpec);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, specs.length) }, worker));
  return results;
}

/** The source of a probe as `explainBlocked` needs it (a targets.ts Endpoint fits). */
export interface ProbeSource {
  label: string;
  kind: string;
  cluster?: string;
  ips: string[];
}

/**
 * Why a blocked probe could not have connected, when the address plan says so (the same reasoning
 * `podnet plan` prints, from the same pure helpers): the source's address aliases the service range of
 * the cluster it probes (the black hole), or the target is in another cluster that the source's cluster
 * cannot reach that way (not peered, or pod IPs that are not routed outside their cluster).
 * Undefined when the plan has no explanation (look at policies, ports, the probe's reason).
 */
export function explainBlocked(plan: AddressPlan, from: ProbeSource, dstIp: string): string | undefined {
  const owner = ownerOfAddress(plan, dstIp);
  const srcIp = tryParseIp(from.ips[0] ?? "");
  const targetCluster = owner?.cluster ?? from.cluster;
  const cluster = plan.clusters.find((c) => c.name === targetCluster);
  if (srcIp && cluster && from.kind !== "pod") {
    for (const text of cluster.ranges.serviceCIDRs) {
      const cidr = tryParseCidr(text);
      if (!cidr || cidr.family !== srcIp.family || !containsIp(cidr, srcIp)) continue;
      return `${from.label}'s address ${from.ips[0]} lies inside service CIDR ${text} of cluster ${cluster.name}: the service proxy on ${cluster.name}'s nodes drops every packet addressed into that range, so the replies never leave the node (a routing black hole; podnet plan reports it as service-range-alias)`;
    }
  }
  if (!owner || !from.cluster || owner.cluster === from.cluster) return undefined;
  const r = peeringReachability(plan, from.cluster, owner.cluster);
  const target = plan.clusters.find((c) => c.name === owner.cluster);
  if (!r.peered) return r.reason;
  if (owner.what === "service")
    return `${dstIp} is a ClusterIP of cluster ${owner.cluster} (service CIDR ${owner.cidr}): ClusterIPs exist only inside their cluster; use the Service's load-balancer IP or a NodePort`;
  if (owner.what !== "pod") return from.kind === "pod" && !r.nodesReachable ? r.reason : undefined;
  // From a node or an external host only the target's side matters (their addresses are routed).
  if (from.kind !== "pod") return target?.fabric.podsAddressableFromOutside ? undefined : r.reason;
  return r.podsAddressable ? undefined : r.reason;
}
