/**
 * The cluster zone against the Kubernetes DNS-Based Service Discovery specification (schema 1.1.0, "spec
 * §x" below) and CoreDNS's kubernetes plugin ("CoreDNS: ..."), on a dual-stack cluster loaded with the real
 * loader and address planner. Each row: a question, the rcode, the answers and additionals (presentation
 * format, compared as sets), and whether the SOA is in the authority section.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { loadManifestText } from "../../api/index.js";
import type { PodRecordsMode } from "../../api/types.js";
import { planAddresses } from "../../plan/index.js";
import type { ClusterPlan } from "../../plan/types.js";
import type { DnsRecord, LookupResult } from "../types.js";
import { clusterZoneInput, type ZoneEndpoint, type ZoneService } from "./input.js";
import { dashedIp, reverseName } from "./names.js";
import { buildClusterZone, type ClusterZone } from "./zone.js";

const MANIFEST = `
apiVersion: podnet.dev/v1alpha1
kind: Cluster
metadata: {name: c}
spec:
  nodes: 2
  podCIDRs: [10.244.0.0/16, fd00:10:244::/56]
  serviceCIDRs: [10.96.0.0/16, fd00:10:96::/112]
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: shop, labels: {app: web}}
spec: {nodeName: node-1, containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: shop, labels: {app: web}, annotations: {podnet.dev/ready: "false"}}
spec: {nodeName: node-2, containers: [{name: c, ports: [{name: http, containerPort: 9090}]}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: pg, ports: [{name: pg, containerPort: 5432}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db-spare, namespace: shop, labels: {app: db}, annotations: {podnet.dev/ready: "false"}}
spec: {hostname: db-spare, subdomain: db, containers: [{name: pg, ports: [{name: pg, containerPort: 5432}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.96.0.50
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}, {name: admin, port: 8443, targetPort: 8443}]
---
apiVersion: v1
kind: Service
metadata: {name: plain, namespace: shop}
spec: {clusterIP: 10.96.0.70, selector: {app: web}, ports: [{port: 7000}]}
---
apiVersion: v1
kind: Service
metadata: {name: web2, namespace: shop}
spec:
  ipFamilyPolicy: RequireDualStack
  clusterIPs: [10.96.0.60, "fd00:10:96::60"]
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec:
  clusterIP: None
  ipFamilies: [IPv4]
  selector: {app: db}
  ports: [{name: pg, port: 5432, targetPort: pg}]
---
apiVersion: v1
kind: Service
metadata: {name: peers, namespace: shop}
spec:
  clusterIP: None
  ipFamilies: [IPv4]
  publishNotReadyAddresses: true
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: bare, namespace: shop}
spec: {clusterIP: None, ipFamilies: [IPv4], selector: {app: web}}
---
apiVersion: v1
kind: Service
metadata: {name: nobody, namespace: shop}
spec: {clusterIP: None, selector: {app: none}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: shop}
spec: {type: ExternalName, externalName: www.example.com}
---
apiVersion: v1
kind: Service
metadata: {name: alias, namespace: shop}
spec: {type: ExternalName, externalName: web.shop.svc.cluster.local}
---
apiVersion: v1
kind: Service
metadata: {name: legacy, namespace: shop}
spec: {clusterIP: None, ipFamilies: [IPv4], ports: [{name: pg, port: 5432}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: legacy-1, namespace: shop, labels: {kubernetes.io/service-name: legacy}}
addressType: IPv4
endpoints:
  - addresses: [192.0.2.10]
    hostname: primary
  - addresses: [192.0.2.11]
ports: [{name: pg, port: 15432}]
`;

function load(podRecords: PodRecordsMode = "insecure"): { zone: ClusterZone; plan: ClusterPlan } {
  const loaded = loadManifestText(MANIFEST, "zone.yaml");
  assert.deepEqual(
    loaded.diagnostics.filter((d) => d.severity === "error").map((d) => d.message),
    [],
  );
  const plan = planAddresses(loaded.state).clusters[0] as ClusterPlan;
  return { plan, zone: buildClusterZone(clusterZoneInput(loaded.state, plan, { podRecords, serial: 7 })) };
}

const { zone, plan } = load();
/** A pod's planned address of one family. */
const podIp = (name: string, v6 = false): string => {
  const ip = plan.pods.find((p) => p.name === name)?.ips.find((i) => i.includes(":") === v6);
  assert.ok(ip, `pod ${name} has no ${v6 ? "IPv6" : "IPv4"} address`);
  return ip;
};
const D = "cluster.local";
const SVC = `shop.svc.${D}`;

function show(r: DnsRecord): string {
  const d = r.data;
  const data =
    r.type === "SRV"
      ? `${r.data.priority} ${r.data.weight} ${r.data.port} ${r.data.target}`
      : r.type === "TXT"
        ? r.data.map((t) => JSON.stringify(t)).join(" ")
        : r.type === "SOA"
          ? `${r.data.mname} ${r.data.rname} ${r.data.serial} ${r.data.refresh} ${r.data.retry} ${r.data.expire} ${r.data.minimum}`
          : String(d);
  return `${r.name} ${r.ttl} ${r.type} ${data}`;
}

interface Row {
  q: [string, string];
  rcode: "NOERROR" | "NXDOMAIN" | "REFUSED";
  answers?: string[];
  additionals?: string[];
  /** Whether the zone's SOA is in the authority section (every negative answer). */
  soa?: boolean;
  why: string;
}

function check(z: ClusterZone, row: Row): void {
  const r = z.lookup(row.q[0], row.q[1]) as LookupResult;
  const label = `${row.q[0]} ${row.q[1]} (${row.why})`;
  assert.ok(r, `${label}: no answer`);
  assert.equal(r.rcode, row.rcode, label);
  assert.deepEqual(r.answers.map(show).sort(), [...(row.answers ?? [])].sort(), label);
  assert.deepEqual(r.additionals.map(show).sort(), [...(row.additionals ?? [])].sort(), label);
  const soa = row.soa ?? (row.rcode !== "REFUSED" && (row.answers ?? []).length === 0);
  assert.deepEqual(
    r.authority.map((a) => a.type),
    soa ? ["SOA"] : [],
    `${label}: authority`,
  );
}

test("records for a Service with ClusterIP, schema version and apex", () => {
  const rows: Row[] = [
    // spec §2.2: the schema version (CoreDNS: TTL 28800).
    {
      q: [`dns-version.${D}`, "TXT"],
      rcode: "NOERROR",
      answers: [`dns-version.${D} 28800 TXT "1.1.0"`],
      why: "§2.2",
    },
    // The name exists: other types are NODATA (CoreDNS says NXDOMAIN for A; README, deviations).
    { q: [`dns-version.${D}`, "A"], rcode: "NOERROR", why: "§2.2, existing name without A" },
    // spec §2.3.1: A (and, schema 1.1.0, AAAA) of the ClusterIPs.
    { q: [`web.${SVC}`, "A"], rcode: "NOERROR", answers: [`web.${SVC} 5 A 10.96.0.50`], why: "§2.3.1" },
    { q: [`web.${SVC}`, "AAAA"], rcode: "NOERROR", why: "§2.3.1: single-stack IPv4, NODATA for AAAA" },
    {
      q: [`web2.${SVC}`, "A"],
      rcode: "NOERROR",
      answers: [`web2.${SVC} 5 A 10.96.0.60`],
      why: "§2.3.1 dual-stack",
    },
    {
      q: [`web2.${SVC}`, "AAAA"],
      rcode: "NOERROR",
      answers: [`web2.${SVC} 5 AAAA fd00:10:96::60`],
      why: "§2.3.1 dual-stack AAAA",
    },
    // spec §2.3.2: SRV per named port, target the service; CoreDNS: priority 0, weight 100 / records found.
    {
      q: [`_http._tcp.web.${SVC}`, "SRV"],
      rcode: "NOERROR",
      answers: [`_http._tcp.web.${SVC} 5 SRV 0 100 80 web.${SVC}`],
      additionals: [`web.${SVC} 5 A 10.96.0.50`],
      why: "§2.3.2, additional A",
    },
    {
      q: [`_http._tcp.web2.${SVC}`, "SRV"],
      rcode: "NOERROR",
      answers: [`_http._tcp.web2.${SVC} 5 SRV 0 50 80 web2.${SVC}`],
      additionals: [`web2.${SVC} 5 A 10.96.0.60`, `web2.${SVC} 5 AAAA fd00:10:96::60`],
      why: "§2.3.2 dual-stack: one SRV, both addresses (CoreDNS counts one record per IP: weight 50)",
    },
    { q: [`_https._tcp.web.${SVC}`, "SRV"], rcode: "NXDOMAIN", why: "§2.3.2: no port of that name" },
    { q: [`_http._udp.web.${SVC}`, "SRV"], rcode: "NXDOMAIN", why: "§2.3.2: no such protocol for the port" },
    // CoreDNS: an SRV question for the service name itself lists every port, unnamed ones included.
    {
      q: [`web.${SVC}`, "SRV"],
      rcode: "NOERROR",
      answers: [`web.${SVC} 5 SRV 0 50 80 web.${SVC}`, `web.${SVC} 5 SRV 0 50 8443 web.${SVC}`],
      additionals: [`web.${SVC} 5 A 10.96.0.50`],
      why: "CoreDNS findServices with no port filter",
    },
    {
      q: [`plain.${SVC}`, "SRV"],
      rcode: "NOERROR",
      answers: [`plain.${SVC} 5 SRV 0 100 7000 plain.${SVC}`],
      additionals: [`plain.${SVC} 5 A 10.96.0.70`],
      why: "CoreDNS: the unnamed port, only through the service name",
    },
    {
      q: [`_._tcp.plain.${SVC}`, "SRV"],
      rcode: "NOERROR",
      answers: [`_._tcp.plain.${SVC} 5 SRV 0 100 7000 plain.${SVC}`],
      additionals: [`plain.${SVC} 5 A 10.96.0.70`],
      why: "CoreDNS: an empty port label matches any port",
    },
    {
      q: [`_http._tcp.plain.${SVC}`, "SRV"],
      rcode: "NXDOMAIN",
      why: "§2.3.2: unnamed ports have no SRV record",
    },
    // CoreDNS: the SRV owner name also answers A with the service address (findServices ignores qtype).
    {
      q: [`_http._tcp.web.${SVC}`, "A"],
      rcode: "NOERROR",
      answers: [`_http._tcp.web.${SVC} 5 A 10.96.0.50`],
      why: "CoreDNS",
    },
    // spec §2.3.3: PTR of the ClusterIP (both families).
    {
      q: [reverseName("10.96.0.50"), "PTR"],
      rcode: "NOERROR",
      answers: [`${reverseName("10.96.0.50")} 5 PTR web.${SVC}`],
      why: "§2.3.3",
    },
    {
      q: [reverseName("fd00:10:96::60"), "PTR"],
      rcode: "NOERROR",
      answers: [`${reverseName("fd00:10:96::60")} 5 PTR web2.${SVC}`],
      why: "§2.3.3 (ip6.arpa)",
    },
    // CoreDNS: endpoint names exist under ClusterIP services too (findServices: "endpoint query").
    {
      q: [`${dashedIp(podIp("a"))}.web.${SVC}`, "A"],
      rcode: "NOERROR",
      answers: [`${dashedIp(podIp("a"))}.web.${SVC} 5 A ${podIp("a")}`],
      why: "CoreDNS endpoint query",
    },
    {
      q: [`${dashedIp(podIp("b"))}.web.${SVC}`, "A"],
      rcode: "NXDOMAIN",
      why: "CoreDNS: not-ready endpoints are not published",
    },
    // The apex: SOA, NS ns.dns.<zone> with the DNS service address as glue, NODATA otherwise.
    {
      q: [D, "SOA"],
      rcode: "NOERROR",
      answers: [`${D} 5 SOA ns.dns.${D} hostmaster.${D} 7 7200 1800 86400 5`],
      soa: false,
      why: "CoreDNS plugin.SOA",
    },
    {
      q: [D, "NS"],
      rcode: "NOERROR",
      answers: [`${D} 5 NS ns.dns.${D}`],
      additionals: [`ns.dns.${D} 5 A ${plan.dnsServiceIP}`],
      why: "CoreDNS plugin.NS",
    },
    { q: [D, "A"], rcode: "NOERROR", why: "CoreDNS: apex NODATA" },
    {
      q: [`ns.dns.${D}`, "A"],
      rcode: "NOERROR",
      answers: [`ns.dns.${D} 5 A ${plan.dnsServiceIP}`],
      why: "CoreDNS isDefaultNS",
    },
    { q: [`ns.dns.${D}`, "TXT"], rcode: "NOERROR", why: "CoreDNS isDefaultNS: NODATA for other types" },
    { q: [`dns.${D}`, "A"], rcode: "NXDOMAIN", why: "CoreDNS: parseRequest rejects it" },
  ];
  for (const row of rows) check(zone, row);
});

test("records for headless Services (spec §2.4)", () => {
  const db0 = podIp("db-0");
  const db1 = podIp("db-1");
  const [a, b] = [podIp("a"), podIp("b")];
  const rows: Row[] = [
    // §2.4.1: one A per ready endpoint; db-spare is not ready.
    {
      q: [`db.${SVC}`, "A"],
      rcode: "NOERROR",
      answers: [`db.${SVC} 5 A ${db0}`, `db.${SVC} 5 A ${db1}`],
      why: "§2.4.1",
    },
    { q: [`db.${SVC}`, "AAAA"], rcode: "NOERROR", why: "§2.4.1: IPv4-only endpoints, NODATA" },
    // §2.4.1: <hostname>.<service> from the StatefulSet pods' hostname/subdomain.
    {
      q: [`db-0.db.${SVC}`, "A"],
      rcode: "NOERROR",
      answers: [`db-0.db.${SVC} 5 A ${db0}`],
      why: "§2.4.1 hostname",
    },
    { q: [`db-spare.db.${SVC}`, "A"], rcode: "NXDOMAIN", why: "§2.4.1: only ready endpoints" },
    { q: [`db-9.db.${SVC}`, "A"], rcode: "NXDOMAIN", why: "no such endpoint" },
    // §2.4.2: SRV per ready endpoint × named port, target <hostname>.<service>, the endpoint's port.
    {
      q: [`_pg._tcp.db.${SVC}`, "SRV"],
      rcode: "NOERROR",
      answers: [
        `_pg._tcp.db.${SVC} 5 SRV 0 50 5432 db-0.db.${SVC}`,
        `_pg._tcp.db.${SVC} 5 SRV 0 50 5432 db-1.db.${SVC}`,
      ],
      additionals: [`db-0.db.${SVC} 5 A ${db0}`, `db-1.db.${SVC} 5 A ${db1}`],
      why: "§2.4.2",
    },
    // publishNotReadyAddresses: every endpoint; no hostname → CoreDNS's dashed-IP name.
    {
      q: [`peers.${SVC}`, "A"],
      rcode: "NOERROR",
      answers: [`peers.${SVC} 5 A ${a}`, `peers.${SVC} 5 A ${b}`],
      why: "§2.1 ready, publishNotReadyAddresses",
    },
    {
      q: [`_http._tcp.peers.${SVC}`, "SRV"],
      rcode: "NOERROR",
      answers: [
        `_http._tcp.peers.${SVC} 5 SRV 0 50 8080 ${dashedIp(a)}.peers.${SVC}`,
        `_http._tcp.peers.${SVC} 5 SRV 0 50 9090 ${dashedIp(b)}.peers.${SVC}`,
      ],
      additionals: [`${dashedIp(a)}.peers.${SVC} 5 A ${a}`, `${dashedIp(b)}.peers.${SVC} 5 A ${b}`],
      why: "§2.4.2 without hostnames: CoreDNS endpointHostname, per-endpoint target ports",
    },
    {
      q: [`${dashedIp(b)}.peers.${SVC}`, "A"],
      rcode: "NOERROR",
      answers: [`${dashedIp(b)}.peers.${SVC} 5 A ${b}`],
      why: "CoreDNS endpoint query by dashed IP",
    },
    // A headless service without ports: addresses, but no SRV (CoreDNS's port -1 sentinel).
    { q: [`bare.${SVC}`, "A"], rcode: "NOERROR", answers: [`bare.${SVC} 5 A ${a}`], why: "§2.4.1" },
    { q: [`bare.${SVC}`, "SRV"], rcode: "NOERROR", why: "no ports: NODATA" },
    // §2.4.1: no ready endpoints → NXDOMAIN.
    { q: [`nobody.${SVC}`, "A"], rcode: "NXDOMAIN", why: "§2.4.1" },
    // EndpointSlice objects: their hostname field.
    {
      q: [`primary.legacy.${SVC}`, "A"],
      rcode: "NOERROR",
      answers: [`primary.legacy.${SVC} 5 A 192.0.2.10`],
      why: "§2.1 hostname from the EndpointSlice",
    },
    {
      q: [`_pg._tcp.legacy.${SVC}`, "SRV"],
      rcode: "NOERROR",
      answers: [
        `_pg._tcp.legacy.${SVC} 5 SRV 0 50 15432 primary.legacy.${SVC}`,
        `_pg._tcp.legacy.${SVC} 5 SRV 0 50 15432 192-0-2-11.legacy.${SVC}`,
      ],
      additionals: [`primary.legacy.${SVC} 5 A 192.0.2.10`, `192-0-2-11.legacy.${SVC} 5 A 192.0.2.11`],
      why: "§2.4.2",
    },
    // §2.4.3: PTR of a ready endpoint → <hostname>.<service>; CoreDNS: one per service it backs.
    {
      q: [reverseName(db0), "PTR"],
      rcode: "NOERROR",
      answers: [`${reverseName(db0)} 5 PTR db-0.db.${SVC}`],
      why: "§2.4.3",
    },
    {
      q: [reverseName(a), "PTR"],
      rcode: "NOERROR",
      answers: [
        `${reverseName(a)} 5 PTR ${dashedIp(a)}.web.${SVC}`,
        `${reverseName(a)} 5 PTR ${dashedIp(a)}.web2.${SVC}`,
        `${reverseName(a)} 5 PTR ${dashedIp(a)}.plain.${SVC}`,
        `${reverseName(a)} 5 PTR ${dashedIp(a)}.peers.${SVC}`,
        `${reverseName(a)} 5 PTR ${dashedIp(a)}.bare.${SVC}`,
      ],
      why: "§2.4.3, CoreDNS serviceRecordForIP: every service with the endpoint",
    },
    {
      q: [reverseName(podIp("a", true)), "PTR"],
      rcode: "NOERROR",
      answers: [`${reverseName(podIp("a", true))} 5 PTR ${dashedIp(podIp("a", true))}.web2.${SVC}`],
      why: "§2.4.3 IPv6 endpoint (dual-stack service), dashed IPv6 hostname",
    },
  ];
  for (const row of rows) check(zone, row);
  // b is published only by `peers` (publishNotReadyAddresses).
  check(zone, {
    q: [reverseName(b), "PTR"],
    rcode: "NOERROR",
    answers: [`${reverseName(b)} 5 PTR ${dashedIp(b)}.peers.${SVC}`],
    why: "§2.4.3 ready only",
  });
});

test("ExternalName services (spec §2.5): the CNAME for any type, in-zone targets followed", () => {
  const rows: Row[] = [
    {
      q: [`ext.${SVC}`, "A"],
      rcode: "NOERROR",
      answers: [`ext.${SVC} 5 CNAME www.example.com`],
      why: "§2.5",
    },
    {
      q: [`ext.${SVC}`, "CNAME"],
      rcode: "NOERROR",
      answers: [`ext.${SVC} 5 CNAME www.example.com`],
      why: "§2.5",
    },
    // RFC 1034 §3.6.2: a CNAME owner has no other data; CoreDNS answers NODATA for these (README).
    {
      q: [`ext.${SVC}`, "SRV"],
      rcode: "NOERROR",
      answers: [`ext.${SVC} 5 CNAME www.example.com`],
      why: "RFC 1034",
    },
    {
      q: [`ext.${SVC}`, "TXT"],
      rcode: "NOERROR",
      answers: [`ext.${SVC} 5 CNAME www.example.com`],
      why: "RFC 1034",
    },
    // CoreDNS: an in-zone target is resolved in the same answer.
    {
      q: [`alias.${SVC}`, "A"],
      rcode: "NOERROR",
      answers: [`alias.${SVC} 5 CNAME web.${SVC}`, `web.${SVC} 5 A 10.96.0.50`],
      why: "CoreDNS plugin.A follows in-zone CNAMEs",
    },
    { q: [`x.ext.${SVC}`, "A"], rcode: "NXDOMAIN", why: "CoreDNS: no endpoints under an ExternalName" },
  ];
  for (const row of rows) check(zone, row);
  const chain = zone.lookup(`alias.${SVC}`, "A") as LookupResult;
  assert.deepEqual(
    chain.answers.map((r) => r.type),
    ["CNAME", "A"],
    "the CNAME comes first",
  );
  // An in-zone target that has no data of the type: the CNAME, and the target's NODATA (SOA).
  check(zone, {
    q: [`alias.${SVC}`, "AAAA"],
    rcode: "NOERROR",
    answers: [`alias.${SVC} 5 CNAME web.${SVC}`],
    soa: true,
    why: "RFC 2308 §2.2",
  });
});

test("pod records (spec §2.6) in the three modes", () => {
  const a = podIp("a");
  const a6 = podIp("a", true);
  const insecure: Row[] = [
    {
      q: [`1-2-3-4.shop.pod.${D}`, "A"],
      rcode: "NOERROR",
      answers: [`1-2-3-4.shop.pod.${D} 5 A 1.2.3.4`],
      why: "§2.6",
    },
    { q: [`1-2-3-4.shop.pod.${D}`, "AAAA"], rcode: "NOERROR", why: "§2.6: IPv4, NODATA for AAAA" },
    {
      q: [`fd00--1.shop.pod.${D}`, "AAAA"],
      rcode: "NOERROR",
      answers: [`fd00--1.shop.pod.${D} 5 AAAA fd00::1`],
      why: "CoreDNS findPods: IPv6 with - for :",
    },
    { q: [`1-2-3-456.shop.pod.${D}`, "A"], rcode: "NXDOMAIN", why: "not an address" },
    { q: [`1-2-3-4.nowhere.pod.${D}`, "A"], rcode: "NXDOMAIN", why: "CoreDNS: the namespace must exist" },
    { q: [`shop.pod.${D}`, "A"], rcode: "NOERROR", why: "CoreDNS: empty pod name in an existing namespace" },
  ];
  for (const row of insecure) check(zone, row);

  const verified = load("verified").zone;
  const rows: Row[] = [
    {
      q: [`${dashedIp(a)}.shop.pod.${D}`, "A"],
      rcode: "NOERROR",
      answers: [`${dashedIp(a)}.shop.pod.${D} 5 A ${a}`],
      why: "verified",
    },
    {
      q: [`${dashedIp(a6)}.shop.pod.${D}`, "AAAA"],
      rcode: "NOERROR",
      answers: [`${dashedIp(a6)}.shop.pod.${D} 5 AAAA ${a6}`],
      why: "verified, IPv6",
    },
    {
      q: [`${dashedIp(a)}.default.pod.${D}`, "A"],
      rcode: "NXDOMAIN",
      why: "verified: pod is in another namespace",
    },
    { q: [`1-2-3-4.shop.pod.${D}`, "A"], rcode: "NXDOMAIN", why: "verified: no pod has it" },
  ];
  for (const row of rows) check(verified, row);

  const disabled = load("disabled").zone;
  check(disabled, { q: [`${dashedIp(a)}.shop.pod.${D}`, "A"], rcode: "NXDOMAIN", why: "disabled" });
  check(disabled, { q: [`shop.pod.${D}`, "A"], rcode: "NXDOMAIN", why: "CoreDNS findPods: disabled first" });
  check(disabled, { q: [`pod.${D}`, "A"], rcode: "NOERROR", why: "CoreDNS parseRequest: pod.<zone> NODATA" });
});

test("NXDOMAIN versus NODATA, as CoreDNS's kubernetes plugin", () => {
  const rows: Row[] = [
    { q: [`svc.${D}`, "A"], rcode: "NOERROR", why: "empty non-terminal" },
    { q: [`pod.${D}`, "A"], rcode: "NOERROR", why: "empty non-terminal" },
    { q: [`shop.svc.${D}`, "A"], rcode: "NOERROR", why: "existing namespace" },
    { q: [`default.svc.${D}`, "SRV"], rcode: "NOERROR", why: "existing (builtin) namespace" },
    { q: [`nowhere.svc.${D}`, "A"], rcode: "NXDOMAIN", why: "missing namespace" },
    { q: [`nosuch.${SVC}`, "A"], rcode: "NXDOMAIN", why: "missing service" },
    { q: [`web.nowhere.svc.${D}`, "A"], rcode: "NXDOMAIN", why: "missing namespace" },
    { q: [`web.${SVC}`, "TXT"], rcode: "NOERROR", why: "existing name, type it lacks" },
    { q: [`web.${SVC}`, "MX"], rcode: "NOERROR", why: "fake A lookup: exists" },
    { q: [`web.${SVC}`, "PTR"], rcode: "NOERROR", why: "fake A lookup: exists" },
    { q: [`web.${SVC}`, "NS"], rcode: "NOERROR", why: "NS below the apex: fake A lookup" },
    { q: [`web.${SVC}`, "SOA"], rcode: "NOERROR", why: "SOA below the apex: NODATA" },
    { q: [`nosuch.${SVC}`, "TXT"], rcode: "NXDOMAIN", why: "missing name (CoreDNS: NODATA for TXT; README)" },
    { q: [`nosuch.${SVC}`, "SOA"], rcode: "NXDOMAIN", why: "missing name (CoreDNS: NODATA for SOA; README)" },
    // CoreDNS: ANY is not expanded; the fake A lookup decides NODATA/NXDOMAIN.
    { q: [`web.${SVC}`, "ANY"], rcode: "NOERROR", why: "ANY: NODATA" },
    { q: [`nosuch.${SVC}`, "ANY"], rcode: "NXDOMAIN", why: "ANY: NXDOMAIN" },
    { q: [`web.${SVC}`, "TYPE65"], rcode: "NOERROR", why: "unknown type" },
    // parseRequest: the last label must be svc or pod; at most two labels left of the service.
    { q: [`foo.${D}`, "A"], rcode: "NXDOMAIN", why: "CoreDNS errInvalidRequest" },
    { q: [`a.b.c.web.${SVC}`, "A"], rcode: "NXDOMAIN", why: "CoreDNS: too long" },
    // CoreDNS 1.9+ has no wildcard queries: `*` is an ordinary label.
    { q: [`*.${SVC}`, "A"], rcode: "NXDOMAIN", why: "no wildcards" },
    { q: [`web.*.svc.${D}`, "A"], rcode: "NXDOMAIN", why: "no wildcards" },
    { q: [D, "AXFR"], rcode: "REFUSED", soa: false, why: "no zone transfers" },
  ];
  for (const row of rows) check(zone, row);
});

test("outside the zone and reverse misses: undefined, so that the server forwards", () => {
  assert.equal(zone.lookup("example.com", "A"), undefined);
  assert.equal(zone.lookup("cluster.local.example.com", "A"), undefined);
  assert.equal(zone.lookup("xcluster.local", "A"), undefined);
  assert.equal(zone.lookup(reverseName("8.8.8.8"), "PTR"), undefined, "not a cluster address");
  assert.equal(zone.lookup(reverseName("10.96.0.50"), "A"), undefined, "reverse names answer PTR only");
  assert.equal(zone.lookup("96.10.in-addr.arpa", "PTR"), undefined, "a partial reverse name");
  assert.deepEqual(zone.zones, ["cluster.local", "in-addr.arpa", "ip6.arpa"]);
});

test("kube-dns, when declared, gives the name server addresses", () => {
  const loaded = loadManifestText(
    `${MANIFEST}---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system}
spec: {ipFamilyPolicy: PreferDualStack, selector: {k8s-app: kube-dns}, ports: [{name: dns, port: 53, protocol: UDP}]}
`,
    "dns.yaml",
  );
  const p = planAddresses(loaded.state).clusters[0] as ClusterPlan;
  const z = buildClusterZone(clusterZoneInput(loaded.state, p));
  const kubeDns = p.services.find((s) => s.name === "kube-dns")?.clusterIPs ?? [];
  assert.equal(kubeDns.length, 2);
  const ns = z.lookup(D, "NS") as LookupResult;
  assert.deepEqual(ns.additionals.map((r) => r.data).sort(), [...kubeDns].sort());
});

test("edge cases on hand-written input: ExternalName forms, CNAME loops, SRV weights", () => {
  const service = (name: string, rest: Partial<ZoneService>): ZoneService => ({
    namespace: "shop",
    name,
    kind: "ExternalName",
    clusterIPs: [],
    ports: [],
    publishNotReadyAddresses: false,
    endpoints: [],
    ...rest,
  });
  const endpoint = (ip: string): ZoneEndpoint => ({
    ip,
    ready: true,
    ports: [{ name: "http", protocol: "tcp", port: 8080 }],
  });
  const z = buildClusterZone({
    domain: "cluster.local.",
    nameServerIPs: ["10.96.0.10"],
    namespaces: ["shop"],
    pods: [],
    services: [
      service("upper", { externalName: "WWW.Example.COM." }),
      service("by-ip", { externalName: "192.0.2.1" }),
      service("loop-a", { externalName: `loop-b.${SVC}` }),
      service("loop-b", { externalName: `loop-a.${SVC}` }),
      service("three", {
        kind: "Headless",
        ports: [{ name: "http", protocol: "tcp", port: 80 }],
        endpoints: [endpoint("10.0.0.1"), endpoint("10.0.0.2"), endpoint("10.0.0.3")],
      }),
    ],
  });
  assert.equal(z.ttl, 5, "CoreDNS's default TTL");
  assert.deepEqual(z.zones, ["cluster.local", "in-addr.arpa", "ip6.arpa"], "the final dot is dropped");
  check(z, {
    q: [`upper.${SVC}`, "A"],
    rcode: "NOERROR",
    answers: [`upper.${SVC} 5 CNAME www.example.com`],
    why: "lower case, no final dot",
  });
  check(z, { q: [`by-ip.${SVC}`, "A"], rcode: "NXDOMAIN", why: "CoreDNS: an IP is no CNAME target" });
  // A CNAME loop inside the zone stops after 8 CNAMEs (CoreDNS: len(previousRecords) > 7).
  const loop = z.lookup(`loop-a.${SVC}`, "A") as LookupResult;
  assert.equal(loop.rcode, "NOERROR");
  assert.equal(loop.answers.length, 8);
  assert.ok(loop.answers.every((r) => r.type === "CNAME"));
  // Three SRV records share the weight 100: floor(100/3) each (plugin.SRV).
  const srv = z.lookup(`_http._tcp.three.${SVC}`, "SRV") as LookupResult;
  assert.deepEqual(
    srv.answers.map((r) => (r.type === "SRV" ? r.data.weight : 0)),
    [33, 33, 33],
  );
  assert.equal(z.lookup(`three.${SVC}`, "PTR")?.rcode, "NOERROR", "forward names have no PTR: NODATA");
});
