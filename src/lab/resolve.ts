/**
 * Name resolution the way a pod does it: the pod's resolv.conf (nameserver, search path, ndots), queries
 * over UDP from inside the pod's network namespace to the cluster DNS. Used by `podnet lab probe` so that
 * probing `web` or `web.shop` from a pod asks the same server with the same search path as the pod's
 * own programs (dig +search, getent) would.
 */
import { readFileSync } from "node:fs";
import dnsPacket from "dns-packet";
import { udpSocket } from "../linux/netns-native.js";
import { netnsEtcDir } from "./kernel.js";

export interface ResolvConf {
  nameservers: string[];
  search: string[];
  ndots: number;
}

export function parseResolvConf(text: string): ResolvConf {
  const conf: ResolvConf = { nameservers: [], search: [], ndots: 1 };
  for (const line of text.split("\n")) {
    const [key, ...values] = line.trim().split(/\s+/);
    if (key === "nameserver" && values[0]) conf.nameservers.push(values[0]);
    else if (key === "search") conf.search = values;
    else if (key === "options")
      for (const v of values) if (v.startsWith("ndots:")) conf.ndots = Number(v.slice(6)) || 0;
  }
  return conf;
}

/** The names a resolver tries for `name`, in order (glibc: search first when dots < ndots). */
export function candidateNames(name: string, conf: ResolvConf): string[] {
  if (name.endsWith(".")) return [name.slice(0, -1)];
  const searched = conf.search.map((s) => `${name}.${s}`);
  const dots = name.split(".").length - 1;
  return dots >= conf.ndots ? [name, ...searched] : [...searched, name];
}

export interface Resolution {
  /** The name that answered (after the search path). */
  name: string;
  addresses: string[];
  nameserver: string;
  /** The names tried, with their answer: NXDOMAIN, NODATA or the addresses. */
  tried: string[];
}

export class ResolveError extends Error {}

async function queryA(netns: string, server: string, name: string, timeoutMs: number) {
  const socket = await udpSocket(netns, server.includes(":") ? 6 : 4);
  try {
    const id = Math.floor(Math.random() * 65536);
    const query = dnsPacket.encode({
      type: "query",
      id,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: "A", name }],
    });
    return await new Promise<dnsPacket.Packet>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new ResolveError(`no answer from ${server} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      socket.on("message", (m) => {
        const packet = dnsPacket.decode(m);
        if (packet.id !== id) return;
        clearTimeout(timer);
        resolve(packet);
      });
      socket.send(query, 53, server);
    });
  } finally {
    socket.close();
  }
}

/** Resolves `name` to IPv4 addresses from inside the pod whose namespace is `netnsName`. */
export async function resolveInPod(netnsName: string, name: string, timeoutMs = 2000): Promise<Resolution> {
  let text: string;
  try {
    text = readFileSync(`${netnsEtcDir(netnsName)}/resolv.conf`, "utf8");
  } catch {
    throw new ResolveError(`${netnsName} has no resolv.conf (not a pod of a lab with cluster DNS)`);
  }
  const conf = parseResolvConf(text);
  const server = conf.nameservers[0];
  if (!server) throw new ResolveError(`the resolv.conf of ${netnsName} names no nameserver`);
  const tried: string[] = [];
  for (const candidate of candidateNames(name, conf)) {
    const answer = await queryA(`/run/netns/${netnsName}`, server, candidate, timeoutMs);
    const addresses = (answer.answers ?? []).flatMap((a) => (a.type === "A" ? [String(a.data)] : []));
    const rcode = (answer as { rcode?: string }).rcode ?? "NOERROR";
    tried.push(
      `${candidate}: ${addresses.length ? addresses.join(",") : rcode === "NOERROR" ? "NODATA" : rcode}`,
    );
    if (addresses.length) return { name: candidate, addresses, nameserver: server, tried };
  }
  throw new ResolveError(
    `"${name}" does not resolve from the pod (nameserver ${server}): ${tried.join("; ")}`,
  );
}
