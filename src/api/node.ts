/** Node: pod CIDRs fixed by the manifest and the InternalIP address. */

import { type Cidr, cidrEquals, formatCidr } from "../ipam/cidr.js";
import type { ObjCtx } from "./context.js";
import type { ReadMeta } from "./meta.js";
import { clusterScopedMeta } from "./meta.js";
import { readCidr, readIp } from "./service.js";
import type { Node } from "./types.js";

const ADDRESS_TYPES = ["Hostname", "InternalIP", "ExternalIP", "InternalDNS", "ExternalDNS"] as const;

export function readNode(o: ObjCtx, meta: ReadMeta): Node {
  const spec = o.root.get("spec").map();
  const node: Node = {
    kind: "Node",
    meta: clusterScopedMeta(meta, o.location),
    podCIDRs: [],
    implicit: false,
  };
  const oneF = spec.get("podCIDR");
  const manyF = spec.get("podCIDRs");
  const one = oneF.str() === "" ? undefined : readCidr(oneF);
  const items = manyF.list();
  const many: Cidr[] = [];
  items.forEach((f, i) => {
    const c = readCidr(f);
    if (!c) return;
    if (many.some((m) => m.family === c.family)) {
      f.error(
        `invalid value ${JSON.stringify(formatCidr(c))}: may specify no more than one CIDR for each IP family`,
      );
      return;
    }
    if (i === 0 && one && !cidrEquals(one, c)) {
      f.error(
        `invalid value ${JSON.stringify(formatCidr(c))}: must match \`podCIDR\` (${formatCidr(one)})`,
        "give the same CIDR in podCIDR and podCIDRs[0], or only podCIDRs",
      );
    }
    many.push(c);
  });
  if (items.length > 2) manyF.error(`must have at most 2 items (one per IP family), found ${items.length}`);
  node.podCIDRs = (many.length > 0 ? many : one ? [one] : []).map(formatCidr);
  for (const af of o.root.get("status").map().get("addresses").list()) {
    const am = af.map();
    const type = am.get("type").oneOf(ADDRESS_TYPES);
    if (type === "InternalIP" || type === "ExternalIP") {
      const addrF = am.get("address");
      const ip = readIp(addrF);
      if (!addrF.set) addrF.required();
      if (ip && type === "InternalIP" && node.address === undefined) node.address = ip.text;
    } else am.get("address").str();
  }
  return node;
}
