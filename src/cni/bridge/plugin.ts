// podnet, the main plugin: a node bridge, a veth pair per pod, addresses and routes from IPAM, optional
// masquerading. ADD, DEL, CHECK, STATUS and GC; VERSION is answered by the skel.
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { type Family, formatIp, type IpAddress, tryParseIp } from "../../ipam/cidr.js";
import {
  type IpAddrLink,
  IpBatchError,
  type IpRoute,
  ipBatch,
  ipJson,
  ipLine,
  parseJsonValues,
} from "../../linux/ip.js";
import { deterministicMac, hostVethName } from "../../linux/names.js";
import { ensureSysctl } from "../../linux/sysctl.js";
import { type CniRequest, type PluginHandlers, validAttachments } from "../skel.js";
import { CniError, ErrorCode, type Interface, type Result } from "../spec.js";
import { parseResult } from "../version.js";
import { type BridgeState, stepApplier } from "./apply.js";
import { parseBridgeConfig } from "./config.js";
import {
  type AttachPlan,
  nodeSteps,
  type PodAddress,
  type PodRoute,
  podAddresses,
  podRoutes,
  podSteps,
  resultRoutes,
} from "./dataplane.js";
import { type IpamClient, ipamClient } from "./ipam-client.js";

/** PODNET_CNI_TRACE=1 writes the time of each phase of ADD to stderr (ms since the process started). */
const trace = process.env.PODNET_CNI_TRACE
  ? (phase: string) => process.stderr.write(`podnet: ${phase} at ${performance.now().toFixed(1)} ms\n`)
  : () => {};

/** The masquerade module (and nft, lock files) loads only for networks with ipMasq: start-up time matters. */
const masq = () => import("./masq.js");

function randomMac(): string {
  const b = Array.from({ length: 6 }, () => Math.floor(Math.random() * 256));
  b[0] = ((b[0] ?? 0) & 0xfc) | 0x02; // locally administered, unicast
  return b.map((x) => x.toString(16).padStart(2, "0")).join(":");
}

function netnsMustExist(req: CniRequest): void {
  try {
    statSync(req.netns);
  } catch {
    throw new CniError(
      ErrorCode.InvalidEnvironment,
      `CNI_NETNS ${req.netns} does not exist; the runtime must create the pod's network namespace before ADD`,
    );
  }
}

function isMissingDevice(e: unknown): boolean {
  return e instanceof IpBatchError && /Cannot find device|does not exist|No such device/.test(e.reason);
}

/** Deletes a link in this namespace; false when it did not exist. */
async function deleteLink(name: string): Promise<boolean> {
  try {
    await stepApplier().run([{ op: "link-del", dev: name }]);
    return true;
  } catch (e) {
    if (isMissingDevice(e)) return false;
    throw e;
  }
}

function kernelError(where: string, e: unknown, hint = ""): CniError {
  const what = e instanceof Error ? e.message : String(e);
  return new CniError(ErrorCode.KernelOperationFailed, `${where}: ${what}${hint}`);
}

/** Runs the node steps; when the bridge appeared meanwhile, runs them again without creating it. Returns the bridge MAC. */
async function setUpNode(plan: AttachPlan, known: BridgeState): Promise<string | undefined> {
  const applier = stepApplier();
  const first = nodeSteps(plan);
  try {
    await applier.run(first.steps);
    return plan.createBridgeMac ?? known.mac;
  } catch (e) {
    const raced =
      e instanceof IpBatchError && e.lineNumber === first.bridgeStep && /File exists/.test(e.reason);
    if (!raced) throw e;
  }
  // The bridge exists (another ADD created it, or it has no address): use it and read its MAC.
  await applier.run(nodeSteps({ ...plan, createBridgeMac: undefined }).steps);
  return applier.linkMac(plan.bridge);
}

/**
 * Runs the pod steps. A route that exists already (another network of the pod set the default route) is
 * skipped, as the spec asks, and the remaining routes are installed. Returns the routes installed.
 */
async function setUpPod(plan: AttachPlan): Promise<PodRoute[]> {
  const applier = stepApplier();
  const { steps, routeSteps } = podSteps(plan);
  const installed: PodRoute[] = [];
  let next = 0; // first route not yet attempted
  let batch = [...steps, ...routeSteps];
  for (;;) {
    try {
      await applier.run(batch, plan.netns);
      for (let i = next; i < routeSteps.length; i++) installed.push(plan.routes[i] as PodRoute);
      return installed;
    } catch (e) {
      const setup = batch.length - (routeSteps.length - next);
      const failed = e instanceof IpBatchError ? (e.lineNumber ?? 0) - setup - 1 : -1; // index past `next`
      if (!(e instanceof IpBatchError) || failed < 0 || !/File exists/.test(e.reason)) throw e;
      const skipped = next + failed;
      for (let i = next; i < skipped; i++) installed.push(plan.routes[i] as PodRoute);
      process.stderr.write(
        `podnet: ${e.line} skipped: the route exists already (set up by another network?)\n`,
      );
      next = skipped + 1;
      if (next >= routeSteps.length) return installed;
      batch = routeSteps.slice(next);
    }
  }
}

function mergePrevious(prev: Result | undefined, ours: Result): Result {
  if (!prev) return ours;
  const offset = prev.interfaces?.length ?? 0;
  return {
    cniVersion: ours.cniVersion,
    interfaces: [...(prev.interfaces ?? []), ...(ours.interfaces ?? [])],
    ips: [
      ...(prev.ips ?? []),
      ...(ours.ips ?? []).map((ip) => ({ ...ip, interface: (ip.interface ?? 0) + offset })),
    ],
    routes: [...(prev.routes ?? []), ...(ours.routes ?? [])],
    ...((ours.dns ?? prev.dns) ? { dns: ours.dns ?? prev.dns } : {}),
  };
}

async function add(req: CniRequest): Promise<Result> {
  const cfg = parseBridgeConfig(req.config);
  const prev =
    req.config.prevResult === undefined ? undefined : parseResult(req.config.prevResult, "prevResult");
  netnsMustExist(req);
  const ipam = ipamClient(req, cfg.ipam.type);
  trace("start");
  const ipamResult = await ipam.add();
  trace(`ipam (kernel steps by ${stepApplier().name})`);
  const hostIf = hostVethName(req.containerId, req.ifname);
  let vethMayExist = false;
  try {
    const addresses = podAddresses(ipamResult, ipam.type);
    const routes = podRoutes(addresses, ipamResult.routes ?? [], cfg.isDefaultGateway);
    const known = await stepApplier().readBridge(cfg.bridge);
    const bridgeAddresses = cfg.isGateway
      ? dedupeGateways(addresses).filter((g) => !known.addresses.has(`${formatIp(g.ip)}/${g.prefix}`))
      : [];
    const plan: AttachPlan = {
      bridge: cfg.bridge,
      ...(known.exists ? {} : { createBridgeMac: randomMac() }),
      bridgeAddresses,
      hostIf,
      hostMac: deterministicMac("host", req.containerId, req.ifname),
      containerIf: req.ifname,
      containerMac: deterministicMac("container", req.containerId, req.ifname),
      mtu: cfg.mtu,
      netns: req.netns,
      hairpin: cfg.hairpinMode,
      addresses,
      routes,
    };
    if (cfg.isGateway) enableForwarding(addresses);
    let bridgeMac: string | undefined;
    try {
      vethMayExist = true;
      bridgeMac = await setUpNode(plan, known);
      trace("node side");
    } catch (e) {
      if (e instanceof IpBatchError && /File exists/.test(e.reason) && e.line?.includes(" type veth ")) {
        vethMayExist = false; // not created by this ADD: leave it alone
        throw kernelError(
          "cannot create the veth pair",
          e,
          `; interface ${req.ifname} already exists in ${req.netns}, or ${hostIf} exists on the node (an earlier ADD of this container and interface was not deleted: run DEL first)`,
        );
      }
      throw kernelError("setting up the node side failed", e);
    }
    let installed: PodRoute[];
    try {
      installed = await setUpPod(plan);
      trace("pod side");
    } catch (e) {
      throw kernelError(`setting up ${req.ifname} in ${req.netns} failed`, e);
    }
    if (plan.createBridgeMac) {
      // The bridge is new: its first carrier change, which the kernel handles a moment later, flushes the
      // neighbour entries the node steps just wrote (seen on the netlink path: the first pod of a node then
      // waited 1-2 s for IPv6 neighbour discovery). Written again now that the pod's side is up.
      await stepApplier()
        .run(nodeSteps(plan).steps.filter((step) => step.op === "neigh-stale"))
        .catch((e) =>
          process.stderr.write(`podnet: neighbour entries for ${req.containerId}: ${String(e)}
`),
        );
    }
    if (cfg.ipMasq) {
      const { attachmentTag, masqAdd } = await masq();
      await masqAdd(
        cfg.network,
        attachmentTag(req.containerId, req.ifname),
        addresses.map((a) => ({ ip: a.ip, subnet: a.subnet })),
      );
    }
    const interfaces: Interface[] = [
      { name: cfg.bridge, ...(bridgeMac ? { mac: bridgeMac } : {}) },
      { name: hostIf, mac: plan.hostMac, mtu: cfg.mtu },
      { name: req.ifname, mac: plan.containerMac, mtu: cfg.mtu, sandbox: req.netns },
    ];
    const result: Result = {
      cniVersion: "1.1.0",
      interfaces,
      ips: addresses.map((a) => ({
        address: `${formatIp(a.ip)}/${a.subnet.prefix}`,
        gateway: formatIp(a.gateway),
        interface: 2,
      })),
      routes: resultRoutes(installed),
    };
    const dns = cfg.dns ?? ipamResult.dns;
    if (dns) result.dns = dns;
    return mergePrevious(prev, result);
  } catch (e) {
    await rollback(ipam, vethMayExist ? hostIf : undefined);
    throw e;
  }
}

function dedupeGateways(addresses: readonly PodAddress[]): { ip: IpAddress; prefix: number }[] {
  const seen = new Set<string>();
  const out: { ip: IpAddress; prefix: number }[] = [];
  for (const a of addresses) {
    const key = `${formatIp(a.gateway)}/${a.subnet.prefix}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ ip: a.gateway, prefix: a.subnet.prefix });
  }
  return out;
}

function enableForwarding(addresses: readonly PodAddress[]): void {
  const families = new Set<Family>(addresses.map((a) => a.ip.family));
  if (families.has(4)) ensureSysctl("net.ipv4.ip_forward", "1");
  if (families.has(6)) ensureSysctl("net.ipv6.conf.all.forwarding", "1");
}

/**
 * Undoes a failed ADD: the veth (when this ADD may have created it) and the addresses this ADD allocated.
 * Masquerade rules need no undoing: adding them is the last step and one nft transaction.
 */
async function rollback(ipam: IpamClient, hostIf: string | undefined): Promise<void> {
  const log = (what: string, e: unknown) =>
    process.stderr.write(`podnet: rollback of ADD: ${what}: ${e instanceof Error ? e.message : String(e)}\n`);
  if (hostIf) await deleteLink(hostIf).catch((e) => log(`deleting ${hostIf}`, e));
  await ipam.rollback().catch((e) => log("releasing the addresses", e));
}

async function del(req: CniRequest): Promise<void> {
  const cfg = parseBridgeConfig(req.config);
  const ipam = ipamClient(req, cfg.ipam.type);
  let failure: unknown;
  try {
    await ipam.del();
  } catch (e) {
    failure = e;
  }
  // Deleting the host side removes the pod side too; both are gone already when the namespace was deleted.
  const hostIf = hostVethName(req.containerId, req.ifname);
  try {
    await deleteLink(hostIf);
  } catch (e) {
    failure ??= kernelError(`deleting ${hostIf}`, e);
  }
  if (cfg.ipMasq) {
    try {
      const { attachmentTag, masqRemove } = await masq();
      await masqRemove(cfg.network, attachmentTag(req.containerId, req.ifname));
    } catch (e) {
      failure ??= kernelError("removing the masquerade rules", e);
    }
  }
  if (failure) throw failure;
}

function canonicalIp(text: string): string {
  const ip = tryParseIp(text);
  return ip ? formatIp(ip) : text;
}

/** A route destination as `ip -j route` prints it ("default", "10.1.0.0/24", "10.1.0.7") or as a CIDR. */
function canonicalDst(dst: string): string {
  if (dst === "default") return "default";
  const [addr, prefix] = dst.split("/");
  const ip = tryParseIp(addr ?? "");
  if (!ip) return dst;
  const len = prefix === undefined ? (ip.family === 4 ? 32 : 128) : Number(prefix);
  return len === 0 ? "default" : `${formatIp(ip)}/${len}`;
}

function checkFailed(msg: string): CniError {
  return new CniError(ErrorCode.CheckFailed, msg);
}

async function check(req: CniRequest): Promise<void> {
  const cfg = parseBridgeConfig(req.config);
  if (req.config.prevResult === undefined) {
    throw new CniError(
      ErrorCode.InvalidConfig,
      "CHECK needs prevResult (the result of the ADD) in the configuration",
    );
  }
  const prev = parseResult(req.config.prevResult, "prevResult");
  const interfaces = prev.interfaces ?? [];
  const index = interfaces.findIndex((i) => i.name === req.ifname && i.sandbox === req.netns);
  if (index < 0) {
    throw checkFailed(
      `prevResult lists no interface ${req.ifname} in sandbox ${req.netns}; it is not the result of a podnet ADD for this attachment`,
    );
  }
  const expected = interfaces[index] as Interface;
  const hostIf = hostVethName(req.containerId, req.ifname);
  try {
    statSync(req.netns);
  } catch {
    throw checkFailed(`the pod's network namespace ${req.netns} does not exist any more`);
  }

  // Node side: the host veth on the bridge, the gateway addresses on the bridge. (In one `ip -batch`, a
  // `link show` makes later `addr show` lines omit addresses, so both are `addr show`.)
  let nodeOut: string;
  try {
    nodeOut = await ipBatch(
      [ipLine("addr", "show", "dev", hostIf), ipLine("addr", "show", "dev", cfg.bridge)],
      { json: true },
    );
  } catch (e) {
    if (isMissingDevice(e)) {
      const which = (e as IpBatchError).lineNumber === 1 ? `host veth ${hostIf}` : `bridge ${cfg.bridge}`;
      throw checkFailed(`${which} is missing on the node; delete and re-add the pod`);
    }
    throw kernelError("reading the node's links", e);
  }
  const [hostLinks, bridgeLinks] = parseJsonValues(nodeOut) as [IpAddrLink[], IpAddrLink[]];
  const host = hostLinks[0];
  if (host?.master !== cfg.bridge) {
    throw checkFailed(
      `host veth ${hostIf} is not attached to bridge ${cfg.bridge} (master: ${host?.master ?? "none"})`,
    );
  }
  const ips = (prev.ips ?? []).filter((ip) => ip.interface === index);
  if (cfg.isGateway) {
    const onBridge = new Set((bridgeLinks[0]?.addr_info ?? []).map((a) => canonicalIp(a.local)));
    for (const ip of ips) {
      if (ip.gateway && !onBridge.has(canonicalIp(ip.gateway))) {
        throw checkFailed(
          `gateway ${ip.gateway} is missing on bridge ${cfg.bridge}; re-add it or delete and re-add the pod`,
        );
      }
    }
  }

  // Pod side: the interface, its MAC, its addresses, the routes. (A batch keeps the first route listing's
  // address family, so IPv6 routes are read by a second process when prevResult has any.)
  let podOut: string;
  let routes6: IpRoute[] = [];
  try {
    podOut = await ipBatch(
      [ipLine("addr", "show", "dev", req.ifname), ipLine("route", "show", "root", "0.0.0.0/0")],
      {
        netns: req.netns,
        json: true,
      },
    );
    if ((prev.routes ?? []).some((r) => r.dst.includes(":"))) {
      routes6 = await ipJson<IpRoute[]>(["-6", "route", "show"], { netns: req.netns });
    }
  } catch (e) {
    if (isMissingDevice(e))
      throw checkFailed(`interface ${req.ifname} is missing in ${req.netns}; delete and re-add the pod`);
    throw kernelError(`reading ${req.ifname} in ${req.netns}`, e);
  }
  const [links, routes4] = parseJsonValues(podOut) as [IpAddrLink[], IpRoute[]];
  const link = links[0];
  if (!link) throw checkFailed(`interface ${req.ifname} is missing in ${req.netns}`);
  if (expected.mac && link.address?.toLowerCase() !== expected.mac.toLowerCase()) {
    throw checkFailed(
      `${req.ifname} in ${req.netns} has MAC ${link.address}, but prevResult says ${expected.mac}`,
    );
  }
  const live = new Set((link.addr_info ?? []).map((a) => `${canonicalIp(a.local)}/${a.prefixlen}`));
  for (const ip of ips) {
    const [addr, prefix] = ip.address.split("/");
    if (!live.has(`${canonicalIp(addr ?? "")}/${prefix}`)) {
      throw checkFailed(
        `address ${ip.address} (from prevResult) is missing on ${req.ifname} in ${req.netns}; delete and re-add the pod`,
      );
    }
  }
  const liveRoutes = new Set([...(routes4 ?? []), ...routes6].map((r) => canonicalDst(r.dst)));
  for (const r of prev.routes ?? []) {
    if (!liveRoutes.has(canonicalDst(r.dst))) {
      throw checkFailed(
        `route to ${r.dst} (from prevResult) is missing in ${req.netns}; delete and re-add the pod`,
      );
    }
  }

  await ipamClient(req, cfg.ipam.type).check(prev);
  if (cfg.ipMasq) {
    const { attachmentTag, masqCount } = await masq();
    if ((await masqCount(cfg.network, attachmentTag(req.containerId, req.ifname))) > 0) return;
    throw checkFailed(
      `the masquerade rules of this attachment are missing from the node's nftables table; delete and re-add the pod`,
    );
  }
}

function onPath(cmd: string, env: NodeJS.ProcessEnv): boolean {
  for (const dir of (env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(delimiter)) {
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      // next
    }
  }
  return false;
}

async function status(req: CniRequest): Promise<void> {
  const cfg = parseBridgeConfig(req.config);
  const needed = ["ip", "nsenter", ...(cfg.ipMasq ? ["nft"] : [])];
  const missing = needed.filter((c) => !onPath(c, req.env));
  if (missing.length > 0) {
    throw new CniError(
      ErrorCode.PluginNotAvailable,
      `podnet needs ${missing.join(", ")} (iproute2, util-linux${cfg.ipMasq ? ", nftables" : ""}) in PATH; install ${missing.length === 1 ? "it" : "them"}`,
    );
  }
  await ipamClient(req, cfg.ipam.type).status();
}

async function gc(req: CniRequest): Promise<void> {
  const cfg = parseBridgeConfig(req.config);
  const valid = validAttachments(req.config);
  let failure: unknown;
  try {
    await ipamClient(req, cfg.ipam.type).gc();
  } catch (e) {
    failure = e;
  }
  if (cfg.ipMasq) {
    try {
      const { attachmentTag, masqGc } = await masq();
      await masqGc(cfg.network, new Set(valid.map((a) => attachmentTag(a.containerID, a.ifname))));
    } catch (e) {
      failure ??= kernelError("removing stale masquerade rules", e);
    }
  }
  if (failure) throw failure;
}

export const podnetHandlers: PluginHandlers = { name: "podnet", add, del, check, status, gc };
