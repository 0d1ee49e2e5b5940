// The edge of the plugin: runs DataplaneSteps (dataplane.ts) in a network namespace, either as one
// `ip -batch` process or as rtnetlink messages from this process (src/linux/netlink.ts). Same steps, same
// order, same stop at the first failure, same errors: a failed step is an IpBatchError naming its 1-based
// number, its `ip` line and the reason `ip` prints, so the plugin's handling (a raced bridge, a route that
// exists) and its messages do not depend on the applier.
import { closeSync, openSync, readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { formatIp, tryParseIp } from "../../ipam/cidr.js";
import { IpBatchError, type IpLink, ipBatch, ipJson } from "../../linux/ip.js";
import {
  delLinkMessage,
  getAddrsMessage,
  getLinkMessage,
  ipStyleReason,
  type LinkRef,
  NetlinkError,
  type NetlinkOutcome,
  NetlinkSocket,
  netlinkAddon,
  newAddrMessage,
  newBridgeMessage,
  newNeighMessage,
  newRouteMessage,
  newVethMessage,
  parseAddr,
  parseLink,
  RTM_NEWADDR,
  RTM_NEWLINK,
  setHairpinMessage,
  setLinkMessage,
} from "../../linux/netlink.js";
import { contextNetns, inContextNetns } from "../../linux/netns-context.js";
import { type DataplaneStep, stepLine } from "./dataplane.js";

/** What exists of the bridge in the node's namespace. */
export interface BridgeState {
  exists: boolean;
  mac?: string;
  /** "address/prefix" of every address on it. */
  addresses: Set<string>;
}

export interface StepApplier {
  readonly name: "ip" | "netlink";
  /** The bridge as the node's namespace (the calling context's) has it. */
  readBridge(name: string): Promise<BridgeState>;
  /**
   * Runs the steps in order inside `netns` (a path), or in the node's namespace (the calling context's)
   * when undefined. The first failure stops: IpBatchError(step number, ip line, reason); earlier steps stay.
   */
  run(steps: readonly DataplaneStep[], netns?: string): Promise<void>;
  /** The MAC address of a link in the node's namespace. */
  linkMac(name: string): Promise<string | undefined>;
}

/** Reads the bridge with getifaddrs (netlink dumps of every link and address, in the calling thread's namespace). */
function bridgeFromInterfaces(name: string): BridgeState {
  // getifaddrs answers for the calling thread's namespace: the node's, also in the lab's node agent.
  const entries = inContextNetns(() => networkInterfaces())[name];
  if (!entries || entries.length === 0) return { exists: false, addresses: new Set() };
  const addresses = new Set<string>();
  for (const e of entries) {
    const ip = tryParseIp(e.address.split("%")[0] ?? "");
    const prefix = e.cidr?.split("/")[1];
    if (ip && prefix) addresses.add(`${formatIp(ip)}/${prefix}`);
  }
  return { exists: true, mac: entries[0]?.mac, addresses };
}

export const ipApplier: StepApplier = {
  name: "ip",
  async readBridge(name) {
    return bridgeFromInterfaces(name);
  },
  async run(steps, netns) {
    await ipBatch(steps.map(stepLine), netns === undefined ? {} : { netns });
  },
  async linkMac(name) {
    const links = await ipJson<IpLink[]>(["link", "show", "dev", name]);
    return links[0]?.address;
  },
};

const ENODEV = 19;

/** The interface a step needs the index of (addresses, routes, neighbours and a master are by index only). */
function indexNeeded(step: DataplaneStep): string | undefined {
  switch (step.op) {
    case "addr-add":
    case "neigh-stale":
    case "route-add":
      return step.dev;
    case "veth-add":
      return step.master;
    default:
      return undefined;
  }
}

/** The link a step creates or deletes (its index, if looked up before, is no longer valid). */
function linkChanged(step: DataplaneStep): string | undefined {
  if (step.op === "bridge-add" || step.op === "veth-add") return step.name;
  if (step.op === "link-del") return step.dev;
  return undefined;
}

/** A failed step as `ip -batch` reports it. */
function stepError(
  index: number,
  step: DataplaneStep,
  errno: number,
  extack: string | undefined,
): IpBatchError {
  // `ip` looks names up before it sends anything and says so; the kernel says ENODEV.
  const dev = "dev" in step ? step.dev : "master" in step ? step.master : undefined;
  const reason =
    errno === ENODEV && dev !== undefined && !extack
      ? `Cannot find device "${dev}"`
      : ipStyleReason(errno, extack);
  return new IpBatchError(index + 1, stepLine(step), reason, "");
}

/**
 * Runs steps on one socket with as few requests as the indexes allow: messages queue up until a step
 * needs the index of a link not yet looked up; then the queue and that RTM_GETLINK go in one request.
 * An ADD's side thus takes two requests. Links are named where the kernel accepts names (link up,
 * hairpin, delete), so the host veth needs no lookup after it is created.
 */
class NetlinkStepRunner {
  private readonly indexes = new Map<string, number>();
  private queue: { message: Buffer; index: number; step: DataplaneStep }[] = [];
  /** Namespace fds the queued messages refer to (IFLA_NET_NS_FD): open until the request is done. */
  private fds: number[] = [];

  constructor(private readonly socket: NetlinkSocket) {}

  async run(steps: readonly DataplaneStep[]): Promise<void> {
    try {
      for (const [index, step] of steps.entries()) {
        const needed = indexNeeded(step);
        if (needed !== undefined && !this.indexes.has(needed)) {
          const found = await this.flush(needed);
          if (found === undefined) throw stepError(index, step, ENODEV, undefined);
        }
        this.queue.push({ message: this.encode(step), index, step });
        const changed = linkChanged(step);
        if (changed !== undefined) this.indexes.delete(changed);
      }
      await this.flush();
    } finally {
      this.closeFds();
    }
  }

  /** Sends the queue (and a lookup of `lookUp`); throws the first failed step. Returns the looked-up index. */
  private async flush(lookUp?: string): Promise<number | undefined> {
    const queued = this.queue;
    this.queue = [];
    if (queued.length === 0 && lookUp === undefined) return undefined;
    const messages = queued.map((q) => q.message);
    if (lookUp !== undefined) messages.push(getLinkMessage(lookUp));
    let outcomes: NetlinkOutcome[];
    try {
      outcomes = await this.socket.request(messages);
    } finally {
      this.closeFds();
    }
    for (const [i, q] of queued.entries()) {
      const outcome = outcomes[i];
      if (!outcome) throw new Error("netlink: the kernel did not answer every message");
      if (outcome.errno !== 0) throw stepError(q.index, q.step, outcome.errno, outcome.extack);
    }
    if (lookUp === undefined) return undefined;
    const answer = outcomes[queued.length];
    if (!answer) throw new Error("netlink: the kernel did not answer the link lookup");
    if (answer.errno === ENODEV) return undefined;
    if (answer.errno !== 0)
      throw new NetlinkError(answer.errno, answer.extack, ipStyleReason(answer.errno, answer.extack));
    const link = answer.answers.find((m) => m.type === RTM_NEWLINK);
    if (!link) return undefined;
    const index = parseLink(link).index;
    this.indexes.set(lookUp, index);
    return index;
  }

  private closeFds(): void {
    for (const fd of this.fds) closeSync(fd);
    this.fds = [];
  }

  /** A link by index when looked up already (what `ip` sends), else by name. */
  private ref(name: string): LinkRef {
    const index = this.indexes.get(name);
    return index === undefined ? { name } : { index };
  }

  private mustIndex(name: string): number {
    const index = this.indexes.get(name);
    if (index === undefined) throw new Error(`netlink applier: ${name} was not looked up`);
    return index;
  }

  private encode(step: DataplaneStep): Buffer {
    switch (step.op) {
      case "bridge-add":
        return newBridgeMessage(step.name, step.mac);
      case "addr-add":
        return newAddrMessage(this.mustIndex(step.dev), step.ip, step.prefix, {
          replace: step.replace,
          nodad: step.ip.family === 6,
        });
      case "link-up":
        return setLinkMessage(this.ref(step.dev), { up: true });
      case "veth-add": {
        // IFLA_NET_NS_FD: the kernel resolves the descriptor in this process's table.
        const peerNetns = openSync(step.peer.netns, "r");
        this.fds.push(peerNetns);
        return newVethMessage(
          { ...step, master: this.mustIndex(step.master) },
          { ...step.peer, netnsFd: peerNetns },
        );
      }
      case "hairpin-on":
        return setHairpinMessage(this.ref(step.dev), true);
      case "neigh-stale":
        return newNeighMessage(this.mustIndex(step.dev), step.ip, step.mac);
      case "route-add":
        return newRouteMessage(
          { family: step.dst.family, value: step.dst.network },
          step.dst.prefix,
          step.gw,
          this.mustIndex(step.dev),
        );
      case "link-del":
        return delLinkMessage(this.ref(step.dev));
    }
  }
}

export const netlinkApplier: StepApplier = {
  name: "netlink",
  // One lookup and one address dump, not getifaddrs' dump of every link with its statistics (~1.4 ms
  // of CPU per ADD in a node with 20 pods).
  async readBridge(name) {
    const socket = NetlinkSocket.open(contextNetns());
    try {
      const [link, addrs] = await socket.request([getLinkMessage(name), getAddrsMessage()], false);
      if (link?.errno === ENODEV) return { exists: false, addresses: new Set() };
      for (const outcome of [link, addrs]) {
        if (!outcome) throw new Error("netlink: the kernel did not answer every message");
        if (outcome.errno !== 0)
          throw new NetlinkError(outcome.errno, outcome.extack, ipStyleReason(outcome.errno, outcome.extack));
      }
      const answer = link?.answers.find((m) => m.type === RTM_NEWLINK);
      if (!answer) return { exists: false, addresses: new Set() };
      const bridge = parseLink(answer);
      const addresses = new Set<string>();
      for (const m of addrs?.answers ?? []) {
        const a = m.type === RTM_NEWADDR ? parseAddr(m) : undefined;
        if (a?.index === bridge.index) addresses.add(`${formatIp(a.ip)}/${a.prefix}`);
      }
      return { exists: true, ...(bridge.mac ? { mac: bridge.mac } : {}), addresses };
    } finally {
      socket.close();
    }
  },
  async run(steps, netns) {
    if (steps.length === 0) return;
    const socket = NetlinkSocket.open(netns ?? contextNetns());
    try {
      await new NetlinkStepRunner(socket).run(steps);
    } finally {
      socket.close();
    }
  },
  async linkMac(name) {
    const socket = NetlinkSocket.open(contextNetns());
    try {
      return (await socket.getLink(name))?.mac;
    } finally {
      socket.close();
    }
  },
};

let chosen: StepApplier | undefined;

/**
 * netlink when the addon is built (dist/native/netlink.node) and this process may enter namespaces
 * (CAP_SYS_ADMIN, as root has); `ip -batch` otherwise. PODNET_CNI_APPLIER=ip|netlink forces one.
 */
export function stepApplier(): StepApplier {
  if (chosen) return chosen;
  const forced = process.env.PODNET_CNI_APPLIER;
  if (forced === "ip") chosen = ipApplier;
  else if (forced === "netlink") chosen = netlinkApplier;
  else chosen = netlinkAddon() && mayEnterNamespaces() ? netlinkApplier : ipApplier;
  return chosen;
}

/** Whether CAP_SYS_ADMIN (setns) is in this process's effective set. */
function mayEnterNamespaces(): boolean {
  try {
    const status = readFileSync("/proc/self/status", "utf8");
    const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    return hex !== undefined && (BigInt(`0x${hex}`) & (1n << 21n)) !== 0n;
  } catch {
    return false;
  }
}
