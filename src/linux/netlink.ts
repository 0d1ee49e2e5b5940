/**
 * rtnetlink in-process: the messages `ip link/addr/route/neigh` send, built here, and a socket inside any
 * network namespace to send them on (native/netlink.c, built to dist/native/netlink.node).
 *
 * Starting `ip` costs ~2.5 ms of CPU here (it links libbpf and libelf) and a CNI ADD started it twice;
 * the kernel's part of the same work is mostly well under a millisecond. The builders are pure and return one
 * message each (sequence number 0: `NetlinkSocket.request` numbers them), so they are unit-tested byte
 * for byte without root. Failures read as `ip` reports them ("RTNETLINK answers: File exists", or
 * "Error: <the kernel's extended ACK>."), so callers and users see the same messages on both paths.
 */
import { closeSync, existsSync, openSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

// ---- constants (linux/netlink.h, rtnetlink.h, if_link.h, if_addr.h, neighbour.h, veth.h) -------------

export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_DUMP = 0x300;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
/** In an error message's header: the extended-ACK attributes follow the (capped) request header. */
const NLM_F_CAPPED = 0x100;
const NLM_F_ACK_TLVS = 0x200;
const NLMSGERR_ATTR_MSG = 1;

export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_NEWNEIGH = 28;

const AF_UNSPEC = 0;
const AF_INET = 2;
const AF_INET6 = 10;
export const IFF_UP = 0x1;

export const IFLA_ADDRESS = 1;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_MASTER = 10;
export const IFLA_LINKINFO = 18;
export const IFLA_NET_NS_FD = 28;
export const IFLA_EXT_MASK = 29;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const IFLA_INFO_SLAVE_DATA = 5;
const VETH_INFO_PEER = 1;
const IFLA_BRPORT_MODE = 4; // hairpin
const RTEXT_FILTER_SKIP_STATS = 1 << 3;

const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
export const IFA_F_NODAD = 0x02;

const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
export const RT_TABLE_MAIN = 254;
export const RTPROT_BOOT = 3;
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
const RTN_UNICAST = 1;

const NDA_DST = 1;
const NDA_LLADDR = 2;
export const NUD_STALE = 0x04;

const NLMSG_HDRLEN = 16;
const IFINFOMSG_LEN = 16;

// ---- encoding -----------------------------------------------------------------------------------------

/** An IP address as podnet's IPAM holds it (ipam/cidr.ts's IpAddress has this shape). */
export interface NetlinkIp {
  family: 4 | 6;
  value: bigint;
}

const align4 = (n: number) => (n + 3) & ~3;

/** One attribute (struct nlattr + payload, padded to 4 bytes). */
export function attr(type: number, payload: Uint8Array): Buffer {
  const out = Buffer.alloc(align4(4 + payload.length));
  out.writeUInt16LE(4 + payload.length, 0);
  out.writeUInt16LE(type, 2);
  out.set(payload, 4);
  return out;
}

const u8 = (type: number, v: number) => attr(type, Uint8Array.of(v));
function u32(type: number, v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return attr(type, b);
}
/** A NUL-terminated string attribute (what iproute2 sends for names). */
const str = (type: number, s: string) => attr(type, Buffer.from(`${s}\0`, "utf8"));
/** A string without its NUL (iproute2 sends link kinds so). */
const kind = (type: number, s: string) => attr(type, Buffer.from(s, "utf8"));
const nested = (type: number, ...attrs: Buffer[]) => attr(type, Buffer.concat(attrs));

/** "02:00:00:00:00:01" -> its 6 bytes. */
export function macBytes(mac: string): Buffer {
  const parts = mac.split(":");
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p)))
    throw new Error(`"${mac}" is not a MAC address (six hex pairs separated by colons)`);
  return Buffer.from(parts.map((p) => Number.parseInt(p, 16)));
}

/** An address in network byte order (4 or 16 bytes). */
export function ipBytes(ip: NetlinkIp): Buffer {
  const n = ip.family === 4 ? 4 : 16;
  const out = Buffer.alloc(n);
  let v = ip.value;
  for (let i = n - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

const afOf = (family: 4 | 6) => (family === 4 ? AF_INET : AF_INET6);

/** struct nlmsghdr + the fixed header + attributes; sequence number and port id 0. */
function message(type: number, flags: number, fixed: Buffer, attrs: Buffer[]): Buffer {
  const body = Buffer.concat([fixed, ...attrs]);
  const out = Buffer.alloc(NLMSG_HDRLEN + body.length);
  out.writeUInt32LE(out.length, 0);
  out.writeUInt16LE(type, 4);
  out.writeUInt16LE(flags | NLM_F_REQUEST | NLM_F_ACK, 6);
  body.copy(out, NLMSG_HDRLEN);
  return out;
}

/** struct ifinfomsg. */
function ifinfomsg(index = 0, flags = 0, change = 0): Buffer {
  const b = Buffer.alloc(IFINFOMSG_LEN);
  b.writeUInt8(AF_UNSPEC, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags, 8);
  b.writeUInt32LE(change, 12);
  return b;
}

/** A link by index when known (what `ip` sends), else by name (the kernel looks it up). */
export type LinkRef = { index: number } | { name: string };

function linkRef(ref: LinkRef): { index: number; attrs: Buffer[] } {
  return "index" in ref ? { index: ref.index, attrs: [] } : { index: 0, attrs: [str(IFLA_IFNAME, ref.name)] };
}

export interface VethEnd {
  name: string;
  mac: string;
  mtu: number;
}

/**
 * `ip link add NAME address MAC mtu MTU [master M] type veth peer name P address M mtu N netns NS`:
 * the peer is created directly in the namespace `peer.netnsFd` refers to (an fd open in this process).
 */
export function newVethMessage(
  host: VethEnd & { master?: number },
  peer: VethEnd & { netnsFd: number },
): Buffer {
  // Attributes in the order iproute2 sends them, so the bytes compare equal (netlink.test.ts).
  const peerInfo = Buffer.concat([
    ifinfomsg(),
    attr(IFLA_ADDRESS, macBytes(peer.mac)),
    u32(IFLA_MTU, peer.mtu),
    u32(IFLA_NET_NS_FD, peer.netnsFd),
    str(IFLA_IFNAME, peer.name),
  ]);
  return message(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifinfomsg(), [
    attr(IFLA_ADDRESS, macBytes(host.mac)),
    u32(IFLA_MTU, host.mtu),
    ...(host.master === undefined ? [] : [u32(IFLA_MASTER, host.master)]),
    str(IFLA_IFNAME, host.name),
    nested(
      IFLA_LINKINFO,
      kind(IFLA_INFO_KIND, "veth"),
      nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peerInfo)),
    ),
  ]);
}

/** `ip link add NAME address MAC type bridge`. */
export function newBridgeMessage(name: string, mac: string): Buffer {
  return message(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifinfomsg(), [
    attr(IFLA_ADDRESS, macBytes(mac)),
    str(IFLA_IFNAME, name),
    nested(IFLA_LINKINFO, kind(IFLA_INFO_KIND, "bridge")),
  ]);
}

/** `ip link set DEV [up|down] [master M]`: only what is given changes (ifi_change masks the flags). */
export function setLinkMessage(ref: LinkRef, change: { up?: boolean; master?: number }): Buffer {
  const { index, attrs } = linkRef(ref);
  const flags = change.up ? IFF_UP : 0;
  const mask = change.up === undefined ? 0 : IFF_UP;
  return message(RTM_NEWLINK, 0, ifinfomsg(index, flags, mask), [
    ...attrs,
    ...(change.master === undefined ? [] : [u32(IFLA_MASTER, change.master)]),
  ]);
}

/**
 * `ip link set DEV type bridge_slave hairpin on|off`: the bridge port's slave data. As iproute2 does, the
 * kind goes in IFLA_INFO_KIND ("bridge_slave"); the kernel hands the slave data to the port's master.
 */
export function setHairpinMessage(ref: LinkRef, on: boolean): Buffer {
  const { index, attrs } = linkRef(ref);
  return message(RTM_NEWLINK, 0, ifinfomsg(index), [
    ...attrs,
    nested(
      IFLA_LINKINFO,
      kind(IFLA_INFO_KIND, "bridge_slave"),
      nested(IFLA_INFO_SLAVE_DATA, u8(IFLA_BRPORT_MODE, on ? 1 : 0)),
    ),
  ]);
}

/** `ip link del DEV`. */
export function delLinkMessage(ref: LinkRef): Buffer {
  const { index, attrs } = linkRef(ref);
  return message(RTM_DELLINK, 0, ifinfomsg(index), attrs);
}

/** `ip link show DEV` (without statistics: the answer stays small). */
export function getLinkMessage(name: string): Buffer {
  return message(RTM_GETLINK, 0, ifinfomsg(), [
    str(IFLA_IFNAME, name),
    u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS),
  ]);
}

/** `ip addr show`: a dump of every address of the namespace (the kernel filters by index only in strict mode). */
export function getAddrsMessage(): Buffer {
  return message(RTM_GETADDR, NLM_F_DUMP, Buffer.alloc(8), []);
}

/** `ip addr add|replace IP/PREFIX dev DEV [nodad]`. */
export function newAddrMessage(
  index: number,
  ip: NetlinkIp,
  prefix: number,
  options: { replace?: boolean; nodad?: boolean } = {},
): Buffer {
  const fixed = Buffer.alloc(8); // struct ifaddrmsg
  fixed.writeUInt8(afOf(ip.family), 0);
  fixed.writeUInt8(prefix, 1);
  fixed.writeUInt8(options.nodad ? IFA_F_NODAD : 0, 2);
  fixed.writeUInt8(RT_SCOPE_UNIVERSE, 3);
  fixed.writeUInt32LE(index, 4);
  const bytes = ipBytes(ip);
  return message(RTM_NEWADDR, NLM_F_CREATE | (options.replace ? NLM_F_REPLACE : NLM_F_EXCL), fixed, [
    attr(IFA_LOCAL, bytes),
    attr(IFA_ADDRESS, bytes),
  ]);
}

/**
 * `ip route add DST/LEN [via GW] dev DEV`: table main, proto boot, type unicast; scope universe with a
 * gateway and link without one, as `ip` chooses.
 */
export function newRouteMessage(
  dst: NetlinkIp,
  prefix: number,
  gateway: NetlinkIp | undefined,
  oif: number,
): Buffer {
  const fixed = Buffer.alloc(12); // struct rtmsg
  fixed.writeUInt8(afOf(dst.family), 0);
  fixed.writeUInt8(prefix, 1);
  fixed.writeUInt8(RT_TABLE_MAIN, 4);
  fixed.writeUInt8(RTPROT_BOOT, 5);
  fixed.writeUInt8(gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK, 6);
  fixed.writeUInt8(RTN_UNICAST, 7);
  return message(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, fixed, [
    attr(RTA_DST, ipBytes(dst)),
    ...(gateway ? [attr(RTA_GATEWAY, ipBytes(gateway))] : []),
    u32(RTA_OIF, oif),
  ]);
}

/** `ip neigh replace IP lladdr MAC dev DEV nud stale`. */
export function newNeighMessage(index: number, ip: NetlinkIp, mac: string, state = NUD_STALE): Buffer {
  const fixed = Buffer.alloc(12); // struct ndmsg
  fixed.writeUInt8(afOf(ip.family), 0);
  fixed.writeInt32LE(index, 4);
  fixed.writeUInt16LE(state, 8);
  return message(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, fixed, [
    attr(NDA_DST, ipBytes(ip)),
    attr(NDA_LLADDR, macBytes(mac)),
  ]);
}

// ---- decoding -----------------------------------------------------------------------------------------

export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  /** Everything after struct nlmsghdr. */
  payload: Buffer;
}

/** Splits a buffer of netlink messages. */
export function parseMessages(buf: Buffer): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) break;
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

/** Attributes as type -> payload (the last one wins; NLA_F_NESTED and NLA_F_NET_BYTEORDER stripped). */
export function parseAttrs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) break;
    out.set(buf.readUInt16LE(off + 2) & 0x3fff, buf.subarray(off + 4, off + len));
    off += align4(len);
  }
  return out;
}

/** An NLMSG_ERROR: errno (0 is an ACK) and the kernel's extended-ACK text when it gave one. */
export function parseError(m: NetlinkMessage): { errno: number; extack?: string } {
  const errno = -m.payload.readInt32LE(0);
  if (!(m.flags & NLM_F_ACK_TLVS)) return { errno };
  // struct nlmsgerr: int error + the request's nlmsghdr (+ the request's body unless capped).
  const requestLen = m.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : m.payload.readUInt32LE(4);
  const text = parseAttrs(m.payload.subarray(4 + align4(requestLen))).get(NLMSGERR_ATTR_MSG);
  if (!text) return { errno };
  const end = text.indexOf(0);
  return { errno, extack: text.subarray(0, end < 0 ? text.length : end).toString("utf8") };
}

/** What `ip -j link show` says of a link, from an RTM_NEWLINK answer. */
export interface LinkInfo {
  index: number;
  name: string;
  flags: number;
  mac?: string;
  mtu?: number;
  master?: number;
}

export function parseLink(m: NetlinkMessage): LinkInfo {
  const attrs = parseAttrs(m.payload.subarray(IFINFOMSG_LEN));
  const name = attrs.get(IFLA_IFNAME);
  const mac = attrs.get(IFLA_ADDRESS);
  const mtu = attrs.get(IFLA_MTU);
  const master = attrs.get(IFLA_MASTER);
  return {
    index: m.payload.readInt32LE(4),
    name: name ? name.subarray(0, name.indexOf(0) < 0 ? name.length : name.indexOf(0)).toString() : "",
    flags: m.payload.readUInt32LE(8),
    ...(mac ? { mac: [...mac].map((b) => b.toString(16).padStart(2, "0")).join(":") } : {}),
    ...(mtu ? { mtu: mtu.readUInt32LE(0) } : {}),
    ...(master ? { master: master.readUInt32LE(0) } : {}),
  };
}

/** One address from an RTM_NEWADDR answer. */
export interface AddrInfo {
  index: number;
  ip: NetlinkIp;
  prefix: number;
}

export function parseAddr(m: NetlinkMessage): AddrInfo | undefined {
  const family = m.payload.readUInt8(0) === AF_INET ? 4 : m.payload.readUInt8(0) === AF_INET6 ? 6 : undefined;
  if (family === undefined) return undefined;
  const attrs = parseAttrs(m.payload.subarray(8));
  const bytes = attrs.get(IFA_LOCAL) ?? attrs.get(IFA_ADDRESS);
  if (!bytes || bytes.length !== (family === 4 ? 4 : 16)) return undefined;
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  return { index: m.payload.readUInt32LE(4), ip: { family, value }, prefix: m.payload.readUInt8(1) };
}

// ---- the socket ---------------------------------------------------------------------------------------

/** What native/netlink.c exports. */
interface NetlinkAddon {
  openSocket(netnsFd: number): number;
  request(fd: number, messages: Buffer, stopOnError: boolean): Promise<Buffer>;
  strerror(errno: number): string;
}

/** A request the kernel refused, worded as `ip` words it. */
export class NetlinkError extends Error {
  constructor(
    readonly errno: number,
    readonly extack: string | undefined,
    /** "Error: <extack>." or "RTNETLINK answers: <strerror>", as ip prints it. */
    readonly reason: string,
  ) {
    super(reason);
    this.name = "NetlinkError";
  }
}

// The ES module sits in dist/src/linux/; the plugin bundle (dist/plugins/podnet.cjs, where import.meta.url
// is the bundle's own URL: scripts/bundle-plugins.mjs) one level below dist/.
const ADDON_PATH = fileURLToPath(
  new URL(
    import.meta.url.endsWith(".cjs") ? "../native/netlink.node" : "../../native/netlink.node",
    import.meta.url,
  ),
);

let addon: NetlinkAddon | null | undefined;

/** The addon, or undefined when it is not built (then callers use `ip`). Loaded once. */
export function netlinkAddon(): NetlinkAddon | undefined {
  if (addon === undefined) {
    try {
      addon = existsSync(ADDON_PATH) ? (createRequire(import.meta.url)(ADDON_PATH) as NetlinkAddon) : null;
    } catch {
      addon = null;
    }
  }
  return addon ?? undefined;
}

function mustAddon(): NetlinkAddon {
  const a = netlinkAddon();
  if (!a) throw new Error(`podnet's netlink addon is missing (${ADDON_PATH}): run npm run build`);
  return a;
}

/** The reason `ip` would print for errno (and the kernel's extended ACK). */
export function ipStyleReason(errno: number, extack?: string): string {
  if (extack) return `Error: ${extack}${extack.endsWith(".") ? "" : "."}`;
  return `RTNETLINK answers: ${mustAddon().strerror(errno)}`;
}

/** What one request message got: its error (0: done) and any answer before the ACK (a GETLINK's link). */
export interface NetlinkOutcome {
  errno: number;
  extack?: string;
  answers: NetlinkMessage[];
}

let nextSeq = 1;

/**
 * A NETLINK_ROUTE socket inside one network namespace. Opening it enters the namespace synchronously (on
 * this thread, and back); requests run on a libuv worker thread, as the kernel may sleep in them (the RTNL
 * lock, an RCU grace period when a link goes) and a busy event loop must not sleep with it. One request
 * at a time per socket.
 */
export class NetlinkSocket {
  private constructor(private fd: number) {}

  /** Opens a socket in the namespace at `netnsPath` (a /run/netns/X or /proc/PID/ns/net path), or here. */
  static open(netnsPath?: string): NetlinkSocket {
    const native = mustAddon();
    if (netnsPath === undefined) return new NetlinkSocket(native.openSocket(-1));
    const netnsFd = openSync(netnsPath, "r");
    try {
      return new NetlinkSocket(native.openSocket(netnsFd));
    } finally {
      closeSync(netnsFd);
    }
  }

  /**
   * Sends the messages in order, each with its own sequence number, and returns one outcome per message
   * sent. With stopOnError (the default) nothing is sent after a failure, as `ip -batch` stops there: the
   * outcomes then end with the failed one.
   */
  async request(messages: readonly Buffer[], stopOnError = true): Promise<NetlinkOutcome[]> {
    if (this.fd < 0) throw new Error("netlink socket is closed");
    const seqs: number[] = [];
    const numbered = messages.map((m) => {
      const copy = Buffer.from(m);
      const seq = nextSeq;
      nextSeq = (nextSeq % 0x7fffffff) + 1;
      copy.writeUInt32LE(seq, 8);
      seqs.push(seq);
      return copy;
    });
    const answers = parseMessages(await mustAddon().request(this.fd, Buffer.concat(numbered), stopOnError));
    const outcomes: NetlinkOutcome[] = [];
    let pending: NetlinkMessage[] = [];
    for (const m of answers) {
      if (m.type === NLMSG_DONE && seqs.includes(m.seq)) {
        // The end of a dump, with the dump's error.
        const errno = m.payload.length >= 4 ? -m.payload.readInt32LE(0) : 0;
        outcomes.push({ errno, answers: pending });
        pending = [];
        continue;
      }
      if (m.type !== NLMSG_ERROR) {
        pending.push(m);
        continue;
      }
      if (!seqs.includes(m.seq)) continue;
      outcomes.push({ ...parseError(m), answers: pending });
      pending = [];
    }
    return outcomes;
  }

  /** Sends one message; throws NetlinkError when the kernel refuses it. Returns its answers. */
  async call(message: Buffer): Promise<NetlinkMessage[]> {
    const [outcome] = await this.request([message]);
    if (!outcome) throw new Error("netlink: the kernel did not answer");
    if (outcome.errno !== 0)
      throw new NetlinkError(outcome.errno, outcome.extack, ipStyleReason(outcome.errno, outcome.extack));
    return outcome.answers;
  }

  /** The link named `name`, or undefined when there is none. */
  async getLink(name: string): Promise<LinkInfo | undefined> {
    const [outcome] = await this.request([getLinkMessage(name)]);
    if (!outcome) throw new Error("netlink: the kernel did not answer");
    if (outcome.errno === 19 /* ENODEV */) return undefined;
    if (outcome.errno !== 0)
      throw new NetlinkError(outcome.errno, outcome.extack, ipStyleReason(outcome.errno, outcome.extack));
    const link = outcome.answers.find((m) => m.type === RTM_NEWLINK);
    return link ? parseLink(link) : undefined;
  }

  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }
}
