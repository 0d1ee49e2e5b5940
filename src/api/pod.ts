/** Pod and pod template specs: containers and their ports, hostNetwork, placement and DNS names. */
import type { Field, ObjCtx } from "./context.js";
import { READY_ANNOTATION } from "./defaults.js";
import { checkNameField, namespacedMeta, type ReadMeta } from "./meta.js";
import type { Container, ContainerPort, Pod, Protocol } from "./types.js";
import { ianaSvcName, PROTOCOLS, portNumber } from "./validate.js";

export interface PodSpec {
  nodeName?: string;
  hostname?: string;
  subdomain?: string;
  hostNetwork: boolean;
  containers: Container[];
}

/** Reads a port number field (1..65535); reports and returns undefined when invalid. */
export function readPort(f: Field, what = "port"): number | undefined {
  const n = f.int();
  if (n === undefined) return undefined;
  const err = portNumber(n);
  if (err) {
    f.error(`invalid ${what} ${n}: ${err}`);
    return undefined;
  }
  return n;
}

/** Reads a protocol (TCP, UDP, SCTP; case-sensitive), defaulting to TCP. */
export function readProtocol(f: Field): Protocol {
  return f.oneOf(PROTOCOLS) ?? "TCP";
}

/** Checks an IANA_SVC_NAME (named ports). */
export function checkPortName(f: Field, name: string): boolean {
  const errs = ianaSvcName(name);
  if (errs.length === 0) return true;
  f.error(`invalid port name ${JSON.stringify(name)}: ${errs.join("; ")}`);
  return false;
}

export function readPodSpec(spec: Field): PodSpec {
  const out: PodSpec = { hostNetwork: false, containers: [] };
  const hn = spec.get("hostNetwork").bool();
  out.hostNetwork = hn === true;
  const nodeF = spec.get("nodeName");
  const nodeName = nodeF.str();
  if (nodeName !== undefined && nodeName !== "") {
    checkNameField(nodeF, "dns1123Subdomain", nodeName, "node name");
    out.nodeName = nodeName;
  }
  for (const key of ["hostname", "subdomain"] as const) {
    const f = spec.get(key);
    const s = f.str();
    if (s !== undefined && s !== "") {
      checkNameField(f, "dns1123Label", s, key);
      out[key] = s;
    }
  }
  const containersF = spec.get("containers");
  const containers = containersF.list();
  if (containers.length === 0 && !(containersF.set && !Array.isArray(containersF.v))) {
    containersF.required(
      "Required value: a pod needs at least one container",
      "add spec.containers with a name",
    );
  }
  const names = new Set<string>();
  const portNames = new Map<string, string>();
  const hostPorts = new Set<string>();
  for (const c of containers) {
    const cm = c.map();
    if (!cm.set) continue;
    const nameF = cm.get("name");
    const name = nameF.str();
    if (name === undefined || name === "") {
      if (name === "" || !nameF.set) nameF.required();
    } else {
      checkNameField(nameF, "dns1123Label", name, "container name");
      if (names.has(name))
        nameF.error(`Duplicate value: ${JSON.stringify(name)}`, "give each container a unique name");
      names.add(name);
    }
    const ports: ContainerPort[] = [];
    for (const p of cm.get("ports").list()) {
      const pm = p.map();
      if (!pm.set) continue;
      const cpF = pm.get("containerPort");
      const containerPort = readPort(cpF, "containerPort");
      if (!cpF.set) cpF.required();
      const protocol = readProtocol(pm.get("protocol"));
      const port: ContainerPort = { containerPort: containerPort ?? 0, protocol };
      const pnF = pm.get("name");
      const pn = pnF.str();
      if (pn !== undefined && pn !== "") {
        if (checkPortName(pnF, pn)) {
          if (portNames.has(pn)) {
            pnF.error(
              `Duplicate value: ${JSON.stringify(pn)}`,
              `port names must be unique in a pod (also used by ${portNames.get(pn)})`,
            );
          } else portNames.set(pn, name ?? "another container");
        }
        port.name = pn;
      }
      const hpF = pm.get("hostPort");
      let hostPort = hpF.int();
      if (hostPort === 0) hostPort = undefined;
      if (hostPort !== undefined) {
        const err = portNumber(hostPort);
        if (err) {
          hpF.error(`invalid hostPort ${hostPort}: ${err}`);
          hostPort = undefined;
        }
      }
      if (out.hostNetwork) {
        if (hostPort !== undefined && containerPort !== undefined && hostPort !== containerPort) {
          hpF.error(
            `invalid hostPort ${hostPort}: must match \`containerPort\` when \`hostNetwork\` is true`,
            `remove hostPort or set it to ${containerPort}`,
          );
        }
        if (hostPort === undefined && containerPort !== undefined) hostPort = containerPort;
      }
      if (hostPort !== undefined) {
        const key = `${hostPort}/${protocol}`;
        if (hostPorts.has(key) && hpF.set)
          hpF.error(`Duplicate value: "${key}"`, "a host port can be used once per pod");
        hostPorts.add(key);
        port.hostPort = hostPort;
      }
      if (containerPort !== undefined) ports.push(port);
    }
    out.containers.push({ name: name ?? "", ports });
  }
  return out;
}

/** `podnet.dev/ready` annotation: "false" makes a pod unready; anything but "true"/"false" is an error. */
export function readReady(annotations: Record<string, string>, annotationsF: Field): boolean | undefined {
  const v = annotations[READY_ANNOTATION];
  if (v === undefined) return undefined;
  if (v === "true") return true;
  if (v === "false") return false;
  annotationsF
    .entry(READY_ANNOTATION)
    .error(
      `invalid value ${JSON.stringify(v)}: must be "true" or "false"`,
      'write podnet.dev/ready: "false" to make the pod unready',
    );
  return undefined;
}

export function readPod(o: ObjCtx, meta: ReadMeta): Pod {
  const spec = o.root.get("spec").map();
  const ps = readPodSpec(spec);
  const pod: Pod = {
    kind: "Pod",
    meta: namespacedMeta(meta, o.location),
    hostNetwork: ps.hostNetwork,
    containers: ps.containers,
    ready: readReady(meta.annotations, o.root.get("metadata").get("annotations")) ?? true,
  };
  if (ps.nodeName !== undefined) pod.nodeName = ps.nodeName;
  if (ps.hostname !== undefined) pod.hostname = ps.hostname;
  if (ps.subdomain !== undefined) pod.subdomain = ps.subdomain;
  return pod;
}
