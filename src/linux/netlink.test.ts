// The messages, byte for byte, against what iproute2 6.1 sends for the same command (captured with
// `strace -e trace=sendmsg -e write=3 ip ...`; sequence numbers zeroed, as the builders leave them).
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseCidr, parseIp } from "../ipam/cidr.js";
import {
  delLinkMessage,
  getAddrsMessage,
  getLinkMessage,
  NLMSG_ERROR,
  newAddrMessage,
  newBridgeMessage,
  newNeighMessage,
  newRouteMessage,
  newVethMessage,
  parseAddr,
  parseError,
  parseLink,
  parseMessages,
  RTM_NEWLINK,
  setHairpinMessage,
  setLinkMessage,
} from "./netlink.js";

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ""), "hex");
const SEQ0 = "00000000 00000000"; // nlmsg_seq, nlmsg_pid

test("ip link add cbr0 address 02:00:00:00:00:01 type bridge", () => {
  assert.deepEqual(
    newBridgeMessage("cbr0", "02:00:00:00:00:01"),
    hex(`48000000 1000 0506 ${SEQ0}
         00000000 00000000 00000000 00000000
         0a000100 020000000001 0000   09000300 63627230 00000000
         10001200 0a000100 627269646765 0000`),
  );
});

test("ip link add veth0 address … mtu 1400 master cbr0 type veth peer name eth0 address … mtu 1400 netns NS", () => {
  const message = newVethMessage(
    { name: "veth0", mac: "02:00:00:00:00:02", mtu: 1400, master: 2 },
    { name: "eth0", mac: "02:00:00:00:00:03", mtu: 1400, netnsFd: 4 },
  );
  assert.deepEqual(
    message,
    hex(`94000000 1000 0506 ${SEQ0}
         00000000 00000000 00000000 00000000
         0a000100 020000000002 0000   08000400 78050000   08000a00 02000000
         0a000300 7665746830 000000
         4c001200 08000100 76657468
           40000200 3c000100
             00000000 00000000 00000000 00000000
             0a000100 020000000003 0000   08000400 78050000   08001c00 04000000
             09000300 65746830 00000000`),
  );
});

test("ip link set cbr0 up; ip link set veth0 type bridge_slave hairpin on; ip link del veth0", () => {
  assert.deepEqual(
    setLinkMessage({ index: 2 }, { up: true }),
    hex(`20000000 1000 0500 ${SEQ0} 00000000 02000000 01000000 01000000`),
  );
  assert.deepEqual(
    setHairpinMessage({ index: 3 }, true),
    hex(`40000000 1000 0500 ${SEQ0} 00000000 03000000 00000000 00000000
         20001200 10000100 6272696467655f736c617665 0c000500 05000400 01000000`),
  );
  assert.deepEqual(
    delLinkMessage({ index: 3 }),
    hex(`20000000 1100 0500 ${SEQ0} 00000000 03000000 00000000 00000000`),
  );
  // By name (what the plugin's DEL sends): the same header, IFLA_IFNAME instead of the index.
  assert.deepEqual(
    delLinkMessage({ name: "veth0" }),
    hex(`2c000000 1100 0500 ${SEQ0} 00000000 00000000 00000000 00000000 0a000300 7665746830 000000`),
  );
});

test("ip addr replace 10.1.0.1/24 dev cbr0; ip addr replace fd00::1/64 dev cbr0 nodad; ip addr add", () => {
  assert.deepEqual(
    newAddrMessage(2, parseIp("10.1.0.1"), 24, { replace: true }),
    hex(`28000000 1400 0505 ${SEQ0} 02180000 02000000 08000200 0a010001 08000100 0a010001`),
  );
  const v6 = "fd000000000000000000000000000001";
  assert.deepEqual(
    newAddrMessage(2, parseIp("fd00::1"), 64, { replace: true, nodad: true }),
    hex(`40000000 1400 0505 ${SEQ0} 0a400200 02000000 14000200 ${v6} 14000100 ${v6}`),
  );
  assert.deepEqual(
    newAddrMessage(5, parseIp("10.1.0.5"), 24),
    hex(`28000000 1400 0506 ${SEQ0} 02180000 05000000 08000200 0a010005 08000100 0a010005`),
  );
});

test("ip route add (default via a gateway, on-link, IPv6)", () => {
  const route = (cidr: string, gw: string | undefined, oif: number) => {
    const dst = parseCidr(cidr);
    return newRouteMessage(
      { family: dst.family, value: dst.network },
      dst.prefix,
      gw ? parseIp(gw) : undefined,
      oif,
    );
  };
  assert.deepEqual(
    route("0.0.0.0/0", "10.1.0.1", 5),
    hex(`34000000 1800 0506 ${SEQ0} 02000000 fe030001 00000000
         08000100 00000000 08000500 0a010001 08000400 05000000`),
  );
  // Without a gateway `ip` picks scope link (fd).
  assert.deepEqual(
    route("192.168.0.0/16", undefined, 5),
    hex(`2c000000 1800 0506 ${SEQ0} 02100000 fe03fd01 00000000 08000100 c0a80000 08000400 05000000`),
  );
  assert.deepEqual(
    route("::/0", "fd00::1", 5),
    hex(`4c000000 1800 0506 ${SEQ0} 0a000000 fe030001 00000000
         14000100 00000000000000000000000000000000
         14000500 fd000000000000000000000000000001 08000400 05000000`),
  );
});

test("ip neigh replace 10.1.0.5 lladdr 02:00:00:00:00:03 dev cbr0 nud stale", () => {
  assert.deepEqual(
    newNeighMessage(2, parseIp("10.1.0.5"), "02:00:00:00:00:03"),
    hex(`30000000 1c00 0505 ${SEQ0} 02000000 02000000 04000000
         08000100 0a010005 0a000200 020000000003 0000`),
  );
});

test("ip link show DEV asks without statistics", () => {
  assert.deepEqual(
    getLinkMessage("eth0"),
    hex(`34000000 1200 0500 ${SEQ0} 00000000 00000000 00000000 00000000
         09000300 65746830 00000000 08001d00 08000000`),
  );
});

test("MACs and names are checked before anything is sent", () => {
  assert.throws(() => newBridgeMessage("br", "02:00:00:00:00"), /not a MAC address/);
});

test("answers: an error with the kernel's extended ACK, and a link", () => {
  // NLMSG_ERROR, flags NLM_F_CAPPED|NLM_F_ACK_TLVS, error -EINVAL, the request's header, NLMSGERR_ATTR_MSG.
  const text = Buffer.from("Nexthop has invalid gateway\0");
  const tlv = Buffer.alloc(4 + text.length + ((4 - (text.length % 4)) % 4));
  tlv.writeUInt16LE(4 + text.length, 0);
  tlv.writeUInt16LE(1, 2);
  text.copy(tlv, 4);
  const body = Buffer.concat([hex("eaffffff"), hex(`34000000 1800 0506 07000000 00000000`), tlv]);
  const header = Buffer.alloc(16);
  header.writeUInt32LE(16 + body.length, 0);
  header.writeUInt16LE(NLMSG_ERROR, 4);
  header.writeUInt16LE(0x300, 6);
  header.writeUInt32LE(7, 8);
  const [error] = parseMessages(Buffer.concat([header, body]));
  assert.ok(error);
  assert.equal(error.seq, 7);
  assert.deepEqual(parseError(error), { errno: 22, extack: "Nexthop has invalid gateway" });

  // An RTM_NEWLINK answer: index 5, UP, eth0, MAC, MTU 1400, master 2.
  const link = hex(`4c000000 1000 0000 01000000 00000000 00000100 05000000 01000000 00000000
    09000300 65746830 00000000 0a000100 020000000003 0000 08000400 78050000 08000a00 02000000`);
  const [m] = parseMessages(Buffer.concat([link, hex("00000000")]).subarray(0, 0x4c));
  assert.equal(m?.type, RTM_NEWLINK);
  assert.deepEqual(parseLink(m as NonNullable<typeof m>), {
    index: 5,
    name: "eth0",
    flags: 1,
    mac: "02:00:00:00:00:03",
    mtu: 1400,
    master: 2,
  });
});

test("ip addr show: a dump request, and an address from its answer", () => {
  assert.deepEqual(getAddrsMessage(), hex(`18000000 1600 0503 ${SEQ0} 00000000 00000000`));
  // RTM_NEWADDR: AF_INET6, /64, index 7, IFA_ADDRESS fd00::1.
  const answer = hex(`2c000000 1400 0200 01000000 00000000 0a400080 07000000
    14000100 fd000000000000000000000000000001`);
  const [m] = parseMessages(answer);
  assert.deepEqual(parseAddr(m as NonNullable<typeof m>), {
    index: 7,
    ip: { family: 6, value: 0xfd000000000000000000000000000001n },
    prefix: 64,
  });
});
