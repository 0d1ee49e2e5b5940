/**
 * The loader: manifests in, `DesiredState` out. Parses every document, reads and validates each
 * object of a kind podnet models, assigns objects to clusters, adds what is implicit (the default
 * cluster, nodes, namespaces), expands workloads into pods, and checks references across objects.
 * Every problem becomes a diagnostic; nothing throws on bad input.
 */
import {
  type Cidr,
  containsCidr,
  containsIp,
  familyName,
  formatCidr,
  formatIp,
  tryParseCidr,
  tryParseIp,
} from "../ipam/cidr.js";
import { type ClusterInfo, defaultCluster, readCluster, readExternalHost, readNamespace } from "./cluster.js";
import { LoadCtx, type LoadOptions, ObjCtx, type RawObject, withoutUndefined } from "./context.js";
import { BUILTIN_NAMESPACES, CLUSTER_ANNOTATION, DEFAULT_CLUSTER_NAME } from "./defaults.js";
import type { Diagnostic, SourceLocation } from "./diagnostics.js";
import { readEndpointSlice } from "./endpointslice.js";
import { type ReadMeta, readMetadata } from "./meta.js";
import { readNetworkPolicy } from "./networkpolicy.js";
import { readNode } from "./node.js";
import { pathOf } from "./path.js";
import { checkPeerings, type PeeringEntry, readClusterPeering } from "./peering.js";
import { readPod } from "./pod.js";
import { readService } from "./service.js";
import { parseSource, readSources, type Source, type SourceDoc } from "./source.js";
import type {
  Cluster,
  ClusterPeering,
  DesiredState,
  EndpointSlice,
  ExternalHost,
  IpFamily,
  Namespace,
  NetworkPolicy,
  Node,
  Pod,
  Service,
} from "./types.js";
import { objectRef } from "./types.js";
import { closest, type NameRule } from "./validate.js";
import { expandWorkload, readWorkload, type Workload } from "./workload.js";

export interface LoadResult {
  state: DesiredState;
  /** Errors, warnings and info, ordered by file and line. */
  diagnostics: Diagnostic[];
}

export type { LoadOptions };

interface KindInfo {
  apiVersion: string;
  namespaced: boolean;
  rule: NameRule;
  /** Removed API versions and the Kubernetes release that removed them. */
  removed?: Record<string, string>;
}

const PODNET_GROUP = "podnet.dev";
const PODNET_VERSION = `${PODNET_GROUP}/v1alpha1`;
const WORKLOAD_REMOVED = { "extensions/v1beta1": "1.16", "apps/v1beta1": "1.16", "apps/v1beta2": "1.16" };

export const KINDS: Record<string, KindInfo> = {
  Cluster: { apiVersion: PODNET_VERSION, namespaced: false, rule: "dns1123Label" },
  ExternalHost: { apiVersion: PODNET_VERSION, namespaced: false, rule: "dns1123Label" },
  ClusterPeering: { apiVersion: PODNET_VERSION, namespaced: false, rule: "dns1123Subdomain" },
  Namespace: { apiVersion: "v1", namespaced: false, rule: "dns1123Label" },
  Node: { apiVersion: "v1", namespaced: false, rule: "dns1123Subdomain" },
  Pod: { apiVersion: "v1", namespaced: true, rule: "dns1123Subdomain" },
  Service: { apiVersion: "v1", namespaced: true, rule: "dns1035Label" },
  Deployment: {
    apiVersion: "apps/v1",
    namespaced: true,
    rule: "dns1123Subdomain",
    removed: WORKLOAD_REMOVED,
  },
  StatefulSet: {
    apiVersion: "apps/v1",
    namespaced: true,
    rule: "dns1123Subdomain",
    removed: WORKLOAD_REMOVED,
  },
  EndpointSlice: {
    apiVersion: "discovery.k8s.io/v1",
    namespaced: true,
    rule: "dns1123Subdomain",
    removed: { "discovery.k8s.io/v1beta1": "1.25" },
  },
  NetworkPolicy: {
    apiVersion: "networking.k8s.io/v1",
    namespaced: true,
    rule: "dns1123Subdomain",
    removed: { "extensions/v1beta1": "1.16" },
  },
};
const KIND_NAMES = Object.keys(KINDS);

type Read =
  | { kind: "Cluster"; obj: ClusterInfo }
  | { kind: "ExternalHost"; obj: ExternalHost }
  | { kind: "ClusterPeering"; obj: ClusterPeering }
  | { kind: "Namespace"; obj: Namespace }
  | { kind: "Node"; obj: Node }
  | { kind: "Pod"; obj: Pod }
  | { kind: "Service"; obj: Service }
  | { kind: "EndpointSlice"; obj: EndpointSlice }
  | { kind: "NetworkPolicy"; obj: NetworkPolicy }
  | { kind: "Deployment" | "StatefulSet"; obj: Workload };

interface Entry {
  o: ObjCtx;
  meta: ReadMeta;
  read: Read;
  cluster: string;
  namespace?: string;
  name: string;
  /** Which spec fields were written (the parsed object is released after reading). */
  spec: { podCIDRs: boolean; ipFamilies: boolean; clusterIPs: boolean };
}

function read(o: ObjCtx, meta: ReadMeta, kind: string): Read | undefined {
  switch (kind) {
    case "Cluster":
      return { kind, obj: readCluster(o, meta) };
    case "ExternalHost":
      return { kind, obj: readExternalHost(o, meta) };
    case "ClusterPeering":
      return { kind, obj: readClusterPeering(o, meta) };
    case "Namespace":
      return { kind, obj: readNamespace(o, meta) };
    case "Node":
      return { kind, obj: readNode(o, meta) };
    case "Pod":
      return { kind, obj: readPod(o, meta) };
    case "Service":
      return { kind, obj: readService(o, meta) };
    case "EndpointSlice":
      return { kind, obj: readEndpointSlice(o, meta) };
    case "NetworkPolicy":
      return { kind, obj: readNetworkPolicy(o, meta) };
    case "Deployment":
    case "StatefulSet":
      return { kind, obj: readWorkload(o, meta, kind) };
    default:
      return undefined;
  }
}

const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

const at = (loc: SourceLocation) => `${loc.file}:${loc.line}`;

class Loader {
  readonly load: LoadCtx;
  readonly entries: Entry[] = [];
  private readonly skipped = new Map<string, { count: number; source: SourceLocation; fileIndex: number }>();

  constructor(options: LoadOptions) {
    this.load = new LoadCtx(options);
  }

  /** Adds a diagnostic that is not tied to an object. */
  addAt(d: Diagnostic, fileIndex: number): void {
    this.load.add(d, fileIndex, d.source?.line ?? 0);
  }

  document(doc: SourceDoc): void {
    const v = doc.value;
    if (!isMap(v)) {
      this.addAt(
        {
          severity: "error",
          message: `a manifest document must be a map with apiVersion, kind and metadata; found ${Array.isArray(v) ? "a list" : JSON.stringify(v)}`,
          hint: Array.isArray(v)
            ? "wrap several objects in `kind: List` with `items`, or separate them with ---"
            : undefined,
          source: { file: doc.file, line: doc.line },
        },
        doc.fileIndex,
      );
      return;
    }
    const kind = v.kind;
    if (typeof kind === "string" && kind.endsWith("List") && !KINDS[kind] && Array.isArray(v.items)) {
      const itemKind = kind === "List" ? undefined : kind.slice(0, -4);
      v.items.forEach((item, i) => {
        const line = doc.itemLines?.[i] ?? doc.locator.lineOf(["items", i]) ?? doc.line;
        if (!isMap(item)) {
          this.addAt(
            {
              severity: "error",
              message: `expected a map (an object), found ${Array.isArray(item) ? "a list" : JSON.stringify(item)}`,
              path: `items[${i}]`,
              source: { file: doc.file, line },
            },
            doc.fileIndex,
          );
          return;
        }
        // Typed lists (PodList...) from the API omit the items' kind and apiVersion.
        if (itemKind && item.kind === undefined) item.kind = itemKind;
        if (itemKind && item.apiVersion === undefined && typeof v.apiVersion === "string")
          item.apiVersion = v.apiVersion;
        this.object({ doc, value: item, base: ["items", i], line });
      });
      doc.value = null;
      return;
    }
    this.object({ doc, value: v, base: [], line: doc.line });
    doc.value = null; // read: let the parse tree go
  }

  object(raw: RawObject): void {
    const v = raw.value;
    const kindV = v.kind;
    const name = isMap(v.metadata) && typeof v.metadata.name === "string" ? v.metadata.name : undefined;
    if (typeof kindV !== "string" || kindV === "") {
      const o = new ObjCtx(this.load, raw, "object");
      o.ref = name ? `object ${name}` : "object <unnamed>";
      const f = o.root.get("kind");
      if (kindV === undefined || kindV === null || kindV === "") {
        f.required("Required value: every object needs a kind", "set kind, e.g. kind: Deployment");
      } else f.str();
      return;
    }
    const info = KINDS[kindV];
    const apiVersion = v.apiVersion;
    if (!info) {
      const o = new ObjCtx(this.load, raw, kindV);
      o.ref = name ? `${kindV} ${name}` : `${kindV} <unnamed>`;
      const near = KIND_NAMES.find((k) => k.toLowerCase() === kindV.toLowerCase());
      if (near) {
        o.root
          .get("kind")
          .error(`unknown kind ${JSON.stringify(kindV)}: kinds are case-sensitive`, `use kind: ${near}`);
        return;
      }
      if (typeof apiVersion === "string" && apiVersion.split("/")[0] === PODNET_GROUP) {
        const podnetKinds = KIND_NAMES.filter((k) => KINDS[k]?.apiVersion === PODNET_VERSION);
        const guess = closest(kindV, podnetKinds);
        o.root
          .get("kind")
          .error(
            `unknown kind ${JSON.stringify(kindV)} in ${apiVersion}: podnet.dev kinds are ${podnetKinds.join(", ")}`,
            guess ? `did you mean ${guess}?` : undefined,
          );
        return;
      }
      const seen = this.skipped.get(kindV);
      if (seen) seen.count++;
      else this.skipped.set(kindV, { count: 1, source: o.location, fileIndex: raw.doc.fileIndex });
      return;
    }
    const o = new ObjCtx(this.load, raw, kindV);
    const meta = readMetadata(o, info.rule, info.namespaced);
    const avF = o.root.get("apiVersion");
    if (apiVersion === undefined || apiVersion === null || apiVersion === "") {
      avF.required(
        `Required value: ${kindV} needs apiVersion ${info.apiVersion}`,
        `set apiVersion: ${info.apiVersion}`,
      );
    } else if (typeof apiVersion !== "string") {
      avF.str();
    } else if (apiVersion !== info.apiVersion) {
      const removedIn = info.removed?.[apiVersion];
      avF.error(
        `unsupported apiVersion ${JSON.stringify(apiVersion)} for kind ${kindV}: expected ${JSON.stringify(info.apiVersion)}`,
        `set apiVersion: ${info.apiVersion}${removedIn ? ` (${apiVersion} ${kindV} objects were removed in Kubernetes ${removedIn})` : ""}`,
      );
    }
    o.root.get("kind");
    const r = read(o, meta, kindV);
    this.load.collectIgnored(o);
    const spec = isMap(v.spec) ? v.spec : {};
    const written = {
      podCIDRs: spec.podCIDRs !== undefined && spec.podCIDRs !== null,
      ipFamilies: spec.ipFamilies !== undefined && spec.ipFamilies !== null,
      clusterIPs: Array.isArray(spec.clusterIPs),
    };
    o.release();
    if (!r) return;
    this.entries.push({
      o,
      meta,
      read: r,
      cluster: "",
      name: meta.name ?? "",
      namespace: meta.namespace,
      spec: written,
    });
  }

  /** Warnings for kinds podnet does not model (one per kind). */
  skippedKinds(): void {
    for (const [kind, { count, source, fileIndex }] of this.skipped) {
      this.addAt(
        {
          severity: "warning",
          message: `skipped ${count} ${kind} object${count === 1 ? "" : "s"}: podnet does not model ${kind}`,
          hint: `podnet reads ${KIND_NAMES.join(", ")}`,
          source,
        },
        fileIndex,
      );
    }
  }

  build(): DesiredState {
    const state: DesiredState = {
      clusters: [],
      namespaces: [],
      nodes: [],
      pods: [],
      services: [],
      endpointSlices: [],
      networkPolicies: [],
      externalHosts: [],
      peerings: [],
    };

    // Clusters.
    const clusters = new Map<string, { info: ClusterInfo; o?: ObjCtx }>();
    for (const e of this.entries) {
      if (e.read.kind !== "Cluster" || e.name === "") continue;
      const prev = clusters.get(e.name);
      if (prev?.o) {
        e.o.error(
          pathOf("metadata", "name"),
          `duplicate Cluster ${e.name}: first declared at ${at(prev.o.location)}`,
          "rename or remove one of them",
        );
        continue;
      }
      clusters.set(e.name, { info: e.read.obj, o: e.o });
    }
    if (clusters.size === 0)
      clusters.set(DEFAULT_CLUSTER_NAME, { info: defaultCluster(DEFAULT_CLUSTER_NAME) });
    const names = [...clusters.keys()];
    for (const { info } of clusters.values()) state.clusters.push(info.cluster);

    // Peerings connect clusters and belong to none (like Cluster itself).
    const peerings: PeeringEntry[] = [];
    for (const e of this.entries)
      if (e.read.kind === "ClusterPeering" && e.name !== "") peerings.push({ o: e.o, peering: e.read.obj });
    state.peerings = checkPeerings(peerings, names);

    // Cluster of every object.
    const kept: Entry[] = [];
    for (const e of this.entries) {
      if (e.read.kind === "Cluster" || e.read.kind === "ClusterPeering") continue;
      const annotated = e.meta.cluster;
      const annF = () => e.o.root.get("metadata").get("annotations").entry(CLUSTER_ANNOTATION);
      if (annotated !== undefined) {
        if (!clusters.has(annotated)) {
          const implicit = clusters.size === 1 && clusters.get(names[0] as string)?.o === undefined;
          annF().error(
            `unknown cluster ${JSON.stringify(annotated)}: ${implicit ? `no Cluster object is declared (the implicit cluster is "${DEFAULT_CLUSTER_NAME}")` : `declared clusters: ${names.join(", ")}`}`,
            implicit
              ? `declare a Cluster named ${annotated} (apiVersion: ${PODNET_VERSION}) or remove the annotation`
              : `name one of: ${names.join(", ")}`,
          );
          continue;
        }
        e.cluster = annotated;
      } else if (clusters.size === 1) {
        e.cluster = names[0] as string;
      } else {
        e.o.error(
          pathOf("metadata", "annotations"),
          `missing annotation ${CLUSTER_ANNOTATION}: the manifests declare ${clusters.size} clusters (${names.join(", ")})`,
          `add metadata.annotations["${CLUSTER_ANNOTATION}"] naming one of: ${names.join(", ")}`,
        );
        continue;
      }
      kept.push(e);
    }

    // Duplicates: same cluster, kind, namespace and name.
    const firstSeen = new Map<string, ObjCtx>();
    const unique: Entry[] = [];
    for (const e of kept) {
      if (e.name === "") {
        unique.push(e);
        continue;
      }
      const key = `${e.cluster}\u0000${e.read.kind}\u0000${e.namespace ?? ""}\u0000${e.name}`;
      const prev = firstSeen.get(key);
      if (prev) {
        e.o.error(
          pathOf("metadata", "name"),
          `duplicate ${objectRef(e.read.kind, { name: e.name, namespace: e.namespace })}${names.length > 1 ? ` in cluster ${e.cluster}` : ""}: first declared at ${at(prev.location)}`,
          "rename or remove one of them",
        );
        continue;
      }
      firstSeen.set(key, e.o);
      unique.push(e);
    }

    // Objects by kind, per cluster.
    const nodesBy = new Map<string, Map<string, Node>>();
    const namespacesBy = new Map<string, Map<string, Namespace>>();
    for (const n of names) {
      nodesBy.set(n, new Map());
      const nsMap = new Map<string, Namespace>();
      for (const ns of BUILTIN_NAMESPACES) {
        nsMap.set(ns, {
          kind: "Namespace",
          meta: { name: ns, cluster: n, labels: {}, annotations: {} },
          implicit: true,
        });
      }
      namespacesBy.set(n, nsMap);
    }
    const servicesBy = new Map<string, Entry>();
    const podNames = new Map<string, Set<string>>();
    const podNamesIn = (cluster: string, namespace: string): Set<string> => {
      const key = `${cluster}\u0000${namespace}`;
      let set = podNames.get(key);
      if (!set) {
        set = new Set();
        podNames.set(key, set);
      }
      return set;
    };
    for (const e of unique) {
      const r = e.read;
      if ("meta" in r.obj) r.obj.meta.cluster = e.cluster;
      if (r.kind === "Node") nodesBy.get(e.cluster)?.set(e.name, r.obj);
      if (r.kind === "Namespace") namespacesBy.get(e.cluster)?.set(e.name, r.obj);
      if (r.kind === "Service") servicesBy.set(`${e.cluster}\u0000${e.namespace}\u0000${e.name}`, e);
      if (r.kind === "Pod") podNamesIn(e.cluster, r.obj.meta.namespace).add(e.name);
    }

    // Implicit nodes.
    for (const [cname, nodes] of nodesBy) {
      const info = clusters.get(cname)?.info as ClusterInfo;
      if (nodes.size === 0) {
        for (let i = 1; i <= info.cluster.nodeCount; i++) {
          const name = `node-${i}`;
          nodes.set(name, {
            kind: "Node",
            meta: { name, cluster: cname, labels: {}, annotations: {} },
            podCIDRs: [],
            implicit: true,
          });
        }
      } else if (info.nodesGiven) {
        const o = clusters.get(cname)?.o;
        o?.warning(
          pathOf("spec", "nodes"),
          `ignored: Node objects are declared for cluster ${cname} (${nodes.size} nodes)`,
          "remove spec.nodes or the Node objects",
        );
      }
    }

    // Objects in declaration order; workloads expanded in place.
    const externalAddresses = new Map<string, ExternalHost>(); // cluster\0address -> first host with it
    const referenced = new Map<string, ObjCtx>(); // cluster\0namespace -> first object in it
    for (const e of unique) {
      const r = e.read;
      if (e.namespace !== undefined) {
        const key = `${e.cluster}\u0000${e.namespace}`;
        if (!referenced.has(key)) referenced.set(key, e.o);
      }
      const info = clusters.get(e.cluster)?.info as ClusterInfo;
      switch (r.kind) {
        case "Cluster":
        case "ClusterPeering":
        case "Namespace":
          break;
        case "Node":
          this.checkNode(e, r.obj, info);
          state.nodes.push(r.obj);
          break;
        case "Pod":
          this.checkNodeName(e, r.obj.nodeName, nodesBy, pathOf("spec", "nodeName"));
          state.pods.push(r.obj);
          break;
        case "Deployment":
        case "StatefulSet": {
          const w = r.obj;
          w.cluster = e.cluster;
          if (e.name === "") break;
          this.checkNodeName(e, w.spec.nodeName, nodesBy, pathOf("spec", "template", "spec", "nodeName"));
          if (
            w.kind === "StatefulSet" &&
            w.serviceName &&
            !servicesBy.has(`${e.cluster}\u0000${w.namespace}\u0000${w.serviceName}`)
          ) {
            e.o.warning(
              pathOf("spec", "serviceName"),
              `no Service ${w.namespace}/${w.serviceName}: the pods get no per-pod DNS names`,
              `add a headless Service (clusterIP: None) named ${w.serviceName}`,
            );
          }
          const { pods, clashes } = expandWorkload(w, podNamesIn(e.cluster, w.namespace));
          for (const p of pods) state.pods.push(p);
          if (clashes.length > 0) {
            e.o.error(
              pathOf("metadata", "name"),
              `pod ${w.namespace}/${clashes[0]} of this ${w.kind} has the name of another pod`,
              "rename the StatefulSet or the Pod",
            );
          }
          break;
        }
        case "Service":
          state.services.push(r.obj);
          break;
        case "EndpointSlice":
          r.obj.endpoints.forEach((ep, i) => {
            if (ep.nodeName && !nodesBy.get(e.cluster)?.has(ep.nodeName)) {
              e.o.warning(
                pathOf("endpoints", i, "nodeName"),
                `node ${JSON.stringify(ep.nodeName)} does not exist in cluster ${e.cluster}`,
              );
            }
          });
          state.endpointSlices.push(r.obj);
          break;
        case "NetworkPolicy":
          state.networkPolicies.push(r.obj);
          break;
        case "ExternalHost":
          this.checkExternalHost(e, r.obj, externalAddresses);
          state.externalHosts.push(r.obj);
          break;
      }
    }
    this.checkServices(state.services, servicesBy, clusters);

    // Namespaces: builtins, declared, then referenced ones (implicit, with one info each).
    for (const [key, o] of referenced) {
      const [cname, ns] = key.split("\u0000") as [string, string];
      const nsMap = namespacesBy.get(cname) as Map<string, Namespace>;
      if (nsMap.has(ns)) continue;
      nsMap.set(ns, {
        kind: "Namespace",
        meta: { name: ns, cluster: cname, labels: {}, annotations: {} },
        implicit: true,
      });
      this.load.add(
        {
          severity: "info",
          object: `Namespace ${ns}`,
          message: `namespace ${ns} is not declared${names.length > 1 ? ` in cluster ${cname}` : ""}: podnet creates it (Kubernetes would reject objects in a missing namespace)`,
          hint: `add a Namespace object named ${ns}`,
          source: o.location,
        },
        o.raw.doc.fileIndex,
        o.raw.line,
      );
    }
    for (const nsMap of namespacesBy.values()) {
      for (const ns of nsMap.values()) {
        ns.meta.labels = { ...ns.meta.labels, "kubernetes.io/metadata.name": ns.meta.name };
        state.namespaces.push(ns);
      }
    }
    for (const nodes of nodesBy.values()) for (const n of nodes.values()) if (n.implicit) state.nodes.push(n);
    return state;
  }

  private checkNodeName(
    e: Entry,
    nodeName: string | undefined,
    nodesBy: Map<string, Map<string, Node>>,
    path: ReturnType<typeof pathOf>,
  ): void {
    if (nodeName === undefined) return;
    const nodes = nodesBy.get(e.cluster);
    if (!nodes || nodes.has(nodeName)) return;
    const list = [...nodes.keys()];
    const near = closest(nodeName, list);
    e.o.error(
      path,
      `node ${JSON.stringify(nodeName)} does not exist${nodesBy.size > 1 ? ` in cluster ${e.cluster}` : ""}`,
      near
        ? `did you mean "${near}"?`
        : `nodes: ${list.slice(0, 5).join(", ")}${list.length > 5 ? `, ... (${list.length})` : ""}; add a Node object or fix nodeName`,
    );
  }

  private checkNode(e: Entry, node: Node, info: ClusterInfo): void {
    node.podCIDRs.forEach((text) => {
      const c = tryParseCidr(text);
      if (!c) return; // readNode keeps valid CIDRs only
      const family = familyName(c.family);
      const pool = info.podCidrs.find((p) => p.family === c.family);
      const path = pathOf("spec", e.spec.podCIDRs ? "podCIDRs" : "podCIDR");
      if (!pool) {
        e.o.error(
          path,
          `${text} is ${family} but cluster ${info.cluster.meta.name} has no ${family} pod CIDR`,
          `the cluster's pod CIDRs: ${info.cluster.podCIDRs.join(", ")}`,
        );
      } else if (!containsCidr(pool, c)) {
        e.o.error(
          path,
          `${text} is outside the cluster's pod CIDR ${formatCidr(pool)}`,
          `give the node a block inside ${formatCidr(pool)}`,
        );
      }
    });
    if (node.address && info.nodeCidr) {
      const ip = tryParseIp(node.address);
      if (ip && !containsIp(info.nodeCidr, ip)) {
        const nodeCidr = formatCidr(info.nodeCidr);
        e.o.error(
          pathOf("status", "addresses"),
          `InternalIP ${node.address} is outside the cluster's nodeCIDR ${nodeCidr}`,
          `use an address in ${nodeCidr}, or change the Cluster's spec.nodeCIDR`,
        );
      }
    }
  }

  /**
   * An ExternalHost's address may lie anywhere (outside the externalCIDR the router gets a host route
   * to it; the planner reports one that aliases a cluster range), but two hosts of one cluster may not
   * share it. `seen` maps cluster\0canonical address to the first host with that address.
   */
  private checkExternalHost(e: Entry, host: ExternalHost, seen: Map<string, ExternalHost>): void {
    if (!host.address) return;
    const ip = tryParseIp(host.address);
    if (!ip) return; // readExternalHost keeps valid addresses only
    const key = `${e.cluster}\u0000${formatIp(ip)}`;
    const first = seen.get(key);
    if (!first) {
      seen.set(key, host);
      return;
    }
    const where = first.meta.source ? ` (${at(first.meta.source)})` : "";
    e.o.error(
      pathOf("spec", "address"),
      `Duplicate value: ${JSON.stringify(host.address)}: ExternalHost ${first.meta.name}${where} already has address ${first.address}`,
      "give each external host of a cluster its own address, or omit spec.address to have one allocated",
    );
  }

  /** Service defaulting and checks that need the cluster: IP families, ranges, allocation conflicts. */
  private checkServices(
    services: Service[],
    servicesBy: Map<string, Entry>,
    clusters: Map<string, { info: ClusterInfo; o?: ObjCtx }>,
  ): void {
    const cidrCache = new Map<Cluster, Cidr[]>();
    const ipOwners = new Map<string, string>();
    const nodePortOwners = new Map<string, string>();
    for (const [cname, { info }] of clusters) {
      if (info.cluster.dns.serviceIP)
        ipOwners.set(`${cname}\u0000${info.cluster.dns.serviceIP}`, "the cluster DNS (spec.dns.serviceIP)");
    }
    for (const svc of services) {
      const e = servicesBy.get(`${svc.meta.cluster}\u0000${svc.meta.namespace}\u0000${svc.meta.name}`);
      const info = clusters.get(svc.meta.cluster)?.info;
      if (!e || !info || e.read.obj !== svc) continue;
      const cluster = info.cluster;
      let svcCidrs = cidrCache.get(cluster);
      if (!svcCidrs) {
        svcCidrs = cluster.serviceCIDRs.map(tryParseCidr).filter((c): c is Cidr => c !== undefined);
        cidrCache.set(cluster, svcCidrs);
      }
      const clusterFamilies: IpFamily[] = svcCidrs.map((c) => familyName(c.family));
      if (clusterFamilies.length === 0) continue; // the Cluster's ranges are in error: reported there
      if (svc.type === "ExternalName") {
        svc.ipFamilies = [];
        continue;
      }
      const famPath = pathOf("spec", e.spec.ipFamilies ? "ipFamilies" : "clusterIPs");
      for (const fam of svc.ipFamilies) {
        if (!clusterFamilies.includes(fam)) {
          e.o.error(
            famPath,
            `${fam} is not configured on cluster ${cluster.meta.name} (service CIDRs: ${cluster.serviceCIDRs.join(", ")})`,
            "add a service CIDR of that family to the Cluster, or remove it",
          );
        }
      }
      if (svc.ipFamilyPolicy === "RequireDualStack" && clusterFamilies.length < 2) {
        e.o.error(
          pathOf("spec", "ipFamilyPolicy"),
          `invalid value "RequireDualStack": cluster ${cluster.meta.name} is not configured for dual-stack services`,
          "use PreferDualStack or SingleStack, or give the Cluster an IPv4 and an IPv6 service CIDR",
        );
      }
      const fams: IpFamily[] = svc.ipFamilies.filter((f) => clusterFamilies.includes(f));
      if (fams.length === 0 && clusterFamilies[0]) fams.push(clusterFamilies[0]);
      if (svc.ipFamilyPolicy !== "SingleStack")
        for (const f of clusterFamilies) if (!fams.includes(f)) fams.push(f);
      svc.ipFamilies = fams;

      svc.clusterIPs.forEach((ipText, i) => {
        if (ipText === "None") return;
        const ip = tryParseIp(ipText);
        if (!ip) return;
        const path = e.spec.clusterIPs ? pathOf("spec", "clusterIPs", i) : pathOf("spec", "clusterIP");
        const range = svcCidrs.filter((c) => c.family === ip.family);
        if (!range.some((c) => containsIp(c, ip))) {
          e.o.error(
            path,
            `invalid value ${JSON.stringify(ipText)}: provided IP is not in the valid range. The range of valid IPs is ${range.map(formatCidr).join(", ") || cluster.serviceCIDRs.join(", ")}`,
            "use an address in the cluster's service CIDR, or omit clusterIP to have one allocated",
          );
          return;
        }
        const key = `${svc.meta.cluster}\u0000${ipText}`;
        const owner = ipOwners.get(key);
        if (owner && !(owner.startsWith("the cluster DNS") && svc.meta.namespace === "kube-system")) {
          e.o.error(
            path,
            `invalid value ${JSON.stringify(ipText)}: provided IP is already allocated to ${owner}`,
            "use another address, or omit clusterIP to have one allocated",
          );
        } else ipOwners.set(key, objectRef("Service", svc.meta));
      });
      svc.ports.forEach((p, i) => {
        if (p.nodePort === undefined) return;
        const key = `${svc.meta.cluster}\u0000${p.nodePort}/${p.protocol}`;
        const owner = nodePortOwners.get(key);
        if (owner) {
          e.o.error(
            pathOf("spec", "ports", i, "nodePort"),
            `invalid value ${p.nodePort}: provided port is already allocated to ${owner}`,
            "use another nodePort, or omit it to have one allocated",
          );
        } else nodePortOwners.set(key, objectRef("Service", svc.meta));
      });
    }
  }
}

/** Loads manifests given as texts. `file` names each source in diagnostics. */
export function loadManifestSources(sources: readonly Source[], options: LoadOptions = {}): LoadResult {
  const loader = new Loader(options);
  for (const [i, src] of sources.entries()) loader.load.registerFile(src.file, i);
  sources.forEach((src, fileIndex) => {
    const diags: Diagnostic[] = [];
    parseSource(src, fileIndex, diags, (doc) => loader.document(doc));
    for (const d of diags) loader.addAt(d, fileIndex);
  });
  loader.skippedKinds();
  const state = loader.build();
  return { state, diagnostics: loader.load.finish() };
}

/** Loads one manifest text (tests, standard input as file "-"). */
export function loadManifestText(text: string, file: string, options: LoadOptions = {}): LoadResult {
  return loadManifestSources([{ file, text }], options);
}

/** Loads files and directories (recursively: *.yaml, *.yml, *.json, in sorted order). */
export function loadManifestFiles(paths: readonly string[], options: LoadOptions = {}): LoadResult {
  const readDiags: Diagnostic[] = [];
  const sources = readSources(paths, readDiags);
  const result = loadManifestSources(sources, options);
  return { state: result.state, diagnostics: [...readDiags.map(withoutUndefined), ...result.diagnostics] };
}
