/** EndpointSlice (discovery.k8s.io/v1): addresses, conditions and ports of a Service's endpoints. */
import { familyName, type IpAddress, parseIp } from "../ipam/cidr.js";
import type { ObjCtx } from "./context.js";
import { checkNameField, namespacedMeta, type ReadMeta } from "./meta.js";
import { readPort, readProtocol } from "./pod.js";
import type { Endpoint, EndpointPort, EndpointSlice, IpFamily } from "./types.js";
import { cidrErrorMessage, dns1123Label, dns1123Subdomain } from "./validate.js";

export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";
const MAX_ENDPOINTS = 1000;
const MAX_ADDRESSES = 100;
const MAX_PORTS = 20000;

export function readEndpointSlice(o: ObjCtx, meta: ReadMeta): EndpointSlice {
  const root = o.root;
  const atF = root.get("addressType");
  const addressType = atF.oneOf(["IPv4", "IPv6", "FQDN"] as const);
  if (!atF.set) atF.required("Required value", "set addressType: IPv4 (or IPv6, FQDN)");
  const slice: EndpointSlice = {
    kind: "EndpointSlice",
    meta: namespacedMeta(meta, o.location),
    addressType: addressType ?? "IPv4",
    endpoints: [],
    ports: [],
  };
  const sn = meta.labels[SERVICE_NAME_LABEL];
  if (sn !== undefined) slice.serviceName = sn;
  const epsF = root.get("endpoints");
  const eps = epsF.list();
  if (eps.length > MAX_ENDPOINTS)
    epsF.error(`Too many: ${eps.length}: must have at most ${MAX_ENDPOINTS} items`);
  for (const ef of eps) {
    const em = ef.map();
    if (!em.set) continue;
    const addrsF = em.get("addresses");
    const addrs = addrsF.list();
    const ep: Endpoint = { addresses: [], conditions: { ready: true, serving: true, terminating: false } };
    if (addrs.length === 0 && !(addrsF.set && !Array.isArray(addrsF.v))) {
      addrsF.required("Required value: must contain at least 1 address");
    }
    if (addrs.length > MAX_ADDRESSES)
      addrsF.error(`Too many: ${addrs.length}: must have at most ${MAX_ADDRESSES} items`);
    for (const af of addrs) {
      const a = af.str();
      if (a === undefined) continue;
      if (addressType === "FQDN") {
        const errs = dns1123Subdomain(a);
        if (errs.length > 0) af.error(`invalid value ${JSON.stringify(a)}: ${errs.join("; ")}`);
        else ep.addresses.push(a);
      } else if (addressType !== undefined) {
        let ip: IpAddress;
        try {
          ip = parseIp(a);
        } catch (e) {
          af.error(
            cidrErrorMessage(e),
            `write an ${addressType} address, e.g. ${addressType === "IPv4" ? "10.244.1.5" : "fd00:10:244:1::5"}`,
          );
          continue;
        }
        const family: IpFamily = familyName(ip.family);
        if (family !== addressType) {
          af.error(
            `invalid value ${JSON.stringify(a)}: must be a valid ${addressType} address`,
            `this is an ${family} address; put it in an EndpointSlice with addressType: ${family}`,
          );
        } else ep.addresses.push(a);
      }
    }
    const cf = em.get("conditions").map();
    const ready = cf.get("ready").bool() ?? true;
    const serving = cf.get("serving").bool() ?? ready;
    const terminating = cf.get("terminating").bool() ?? false;
    ep.conditions = { ready, serving, terminating };
    const hF = em.get("hostname");
    const h = hF.str();
    if (h !== undefined && h !== "") {
      checkNameField(hF, "dns1123Label", h, "hostname");
      ep.hostname = h;
    }
    const nF = em.get("nodeName");
    const n = nF.str();
    if (n !== undefined && n !== "") {
      checkNameField(nF, "dns1123Subdomain", n, "node name");
      ep.nodeName = n;
    }
    const trF = em.get("targetRef").map();
    if (trF.set) {
      const kind = trF.get("kind").str();
      const name = trF.get("name").str();
      const namespace = trF.get("namespace").str();
      if (kind !== undefined && name !== undefined) {
        ep.targetRef = { kind, name };
        if (namespace !== undefined && namespace !== "") ep.targetRef.namespace = namespace;
      }
    }
    slice.endpoints.push(ep);
  }
  const portsF = root.get("ports");
  const ports = portsF.list();
  if (ports.length > MAX_PORTS)
    portsF.error(`Too many: ${ports.length}: must have at most ${MAX_PORTS} items`);
  const names = new Map<string, number>();
  ports.forEach((pf, i) => {
    const pm = pf.map();
    if (!pm.set) return;
    const nameF = pm.get("name");
    const name = nameF.str() ?? "";
    if (name !== "") {
      const errs = dns1123Label(name);
      if (errs.length > 0) nameF.error(`invalid port name ${JSON.stringify(name)}: ${errs.join("; ")}`);
    }
    const prev = names.get(name);
    if (prev !== undefined) {
      (nameF.set ? nameF : pf).error(
        `Duplicate value: ${JSON.stringify(name)} (also ports[${prev}].name)`,
        "give each port a unique name",
      );
    } else names.set(name, i);
    const portF = pm.get("port");
    const port = readPort(portF);
    if (!portF.set)
      portF.required("Required value: podnet needs the port number of each EndpointSlice port", "set port");
    const protocol = readProtocol(pm.get("protocol"));
    if (port === undefined) return;
    const ep: EndpointPort = { port, protocol };
    if (name !== "") ep.name = name;
    slice.ports.push(ep);
  });
  return slice;
}
