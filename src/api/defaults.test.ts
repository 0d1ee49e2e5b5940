/** Kubernetes defaulting, per kind. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { CLUSTER_DEFAULTS, SESSION_AFFINITY_DEFAULT_TIMEOUT } from "./defaults.js";
import { loadManifestText } from "./loader.js";
import { errorsOf, show, yaml } from "./testutil.js";
import type { DesiredState } from "./types.js";

function load(text: string): DesiredState {
  const r = loadManifestText(text, "d.yaml");
  assert.deepEqual(errorsOf(r.diagnostics), [], show(r.diagnostics));
  return r.state;
}

test("Service defaults: ClusterIP, TCP, targetPort = port, no affinity, Cluster policies, single stack", () => {
  const s = load(yaml`
    apiVersion: v1
    kind: Service
    metadata:
      name: web
    spec:
      selector: {app: web}
      ports:
        - port: 80
  `).services[0];
  assert.deepEqual(s, {
    kind: "Service",
    meta: {
      name: "web",
      namespace: "default",
      cluster: "default",
      labels: {},
      annotations: {},
      source: { file: "d.yaml", line: 1 },
    },
    type: "ClusterIP",
    clusterIPs: [],
    ipFamilies: ["IPv4"],
    ipFamilyPolicy: "SingleStack",
    selector: { app: "web" },
    ports: [{ protocol: "TCP", port: 80, targetPort: 80 }],
    sessionAffinity: "None",
    internalTrafficPolicy: "Cluster",
    loadBalancerIngress: [],
    loadBalancerSourceRanges: [],
    externalIPs: [],
    publishNotReadyAddresses: false,
  });
});

test("Service defaults: externalTrafficPolicy for NodePort/LoadBalancer, ClientIP timeout, clusterIP from clusterIPs", () => {
  const state = load(yaml`
    apiVersion: v1
    kind: Service
    metadata:
      name: np
    spec:
      type: NodePort
      sessionAffinity: ClientIP
      clusterIPs: [10.96.0.50]
      ports:
        - name: http
          port: 80
          targetPort: http
        - name: dns
          port: 53
          protocol: UDP
          nodePort: 30053
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: lb
    spec:
      type: LoadBalancer
      ports: [{port: 443}]
    status:
      loadBalancer:
        ingress:
          - ip: 198.51.100.7
          - hostname: lb.example.com
  `);
  const [np, lb] = state.services;
  assert.equal(np?.externalTrafficPolicy, "Cluster");
  assert.equal(np?.sessionAffinityTimeoutSeconds, SESSION_AFFINITY_DEFAULT_TIMEOUT);
  assert.equal(np?.clusterIP, "10.96.0.50");
  assert.deepEqual(np?.ports, [
    { name: "http", protocol: "TCP", port: 80, targetPort: "http" },
    { name: "dns", protocol: "UDP", port: 53, targetPort: 53, nodePort: 30053 },
  ]);
  assert.equal(lb?.externalTrafficPolicy, "Cluster");
  assert.deepEqual(lb?.loadBalancerIngress, ["198.51.100.7"]);
});

test("Service IP families follow clusterIPs and the cluster's families", () => {
  const state = load(yaml`
    apiVersion: podnet.dev/v1alpha1
    kind: Cluster
    metadata:
      name: dual
    spec:
      podCIDRs: [10.244.0.0/16, fd00:10:244::/56]
      serviceCIDRs: [10.96.0.0/12, fd00:10:96::/112]
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: v6first
    spec:
      clusterIPs: [fd00:10:96::20, 10.96.0.20]
      ports: [{port: 80}]
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: prefer
    spec:
      ipFamilyPolicy: PreferDualStack
      ports: [{port: 80}]
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: single
    spec:
      ports: [{port: 80}]
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: headless
    spec:
      clusterIP: None
  `);
  const by = new Map(state.services.map((s) => [s.meta.name, s]));
  assert.deepEqual(by.get("v6first")?.ipFamilies, ["IPv6", "IPv4"]);
  assert.equal(by.get("v6first")?.ipFamilyPolicy, "RequireDualStack");
  assert.equal(by.get("v6first")?.clusterIP, "fd00:10:96::20");
  assert.deepEqual(by.get("prefer")?.ipFamilies, ["IPv4", "IPv6"]);
  assert.deepEqual(by.get("single")?.ipFamilies, ["IPv4"]);
  assert.equal(by.get("headless")?.clusterIP, "None");
  assert.deepEqual(by.get("headless")?.clusterIPs, ["None"]);
});

test("Pod defaults: container port protocol TCP, ready unless annotated, hostPort under hostNetwork", () => {
  const state = load(yaml`
    apiVersion: v1
    kind: Pod
    metadata:
      name: a
      namespace: shop
    spec:
      containers:
        - name: web
          ports:
            - containerPort: 8080
              name: http
    ---
    apiVersion: v1
    kind: Pod
    metadata:
      name: b
      namespace: shop
      annotations:
        podnet.dev/ready: "false"
    spec:
      hostNetwork: true
      nodeName: node-2
      hostname: bee
      subdomain: hive
      containers:
        - name: agent
          ports:
            - containerPort: 9100
              protocol: UDP
  `);
  const [a, b] = state.pods;
  assert.deepEqual(a?.containers, [
    { name: "web", ports: [{ name: "http", containerPort: 8080, protocol: "TCP" }] },
  ]);
  assert.equal(a?.ready, true);
  assert.equal(a?.hostNetwork, false);
  assert.equal(a?.nodeName, undefined);
  assert.equal(a?.meta.namespace, "shop");
  assert.equal(b?.ready, false);
  assert.equal(b?.hostNetwork, true);
  assert.equal(b?.nodeName, "node-2");
  assert.equal(b?.hostname, "bee");
  assert.equal(b?.subdomain, "hive");
  assert.deepEqual(b?.containers[0]?.ports, [{ containerPort: 9100, protocol: "UDP", hostPort: 9100 }]);
});

test("NetworkPolicy defaults: policyTypes from the rules, port protocol TCP", () => {
  const state = load(yaml`
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata:
      name: ingress-only
    spec:
      podSelector: {}
      ingress:
        - ports:
            - port: 80
    ---
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata:
      name: both
    spec:
      podSelector:
        matchLabels: {app: web}
      egress:
        - to:
            - ipBlock:
                cidr: 10.0.0.0/8
                except: [10.1.0.0/16]
          ports:
            - port: 53
              protocol: UDP
            - port: 8000
              endPort: 8080
    ---
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata:
      name: explicit
    spec:
      podSelector: {}
      policyTypes: [Egress]
  `);
  const by = new Map(state.networkPolicies.map((p) => [p.meta.name, p]));
  assert.deepEqual(by.get("ingress-only")?.policyTypes, ["Ingress"]);
  assert.deepEqual(by.get("ingress-only")?.ingress, [{ peers: [], ports: [{ protocol: "TCP", port: 80 }] }]);
  assert.deepEqual(by.get("ingress-only")?.podSelector, { matchLabels: {}, matchExpressions: [] });
  assert.deepEqual(by.get("both")?.policyTypes, ["Ingress", "Egress"]);
  assert.deepEqual(by.get("both")?.egress, [
    {
      peers: [{ ipBlock: { cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] } }],
      ports: [
        { protocol: "UDP", port: 53 },
        { protocol: "TCP", port: 8000, endPort: 8080 },
      ],
    },
  ]);
  assert.deepEqual(by.get("explicit")?.policyTypes, ["Egress"]);
});

test("EndpointSlice defaults: ready when unset, serving follows ready, not terminating, TCP", () => {
  const state = load(yaml`
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata:
      name: db-1
      labels:
        kubernetes.io/service-name: db
    addressType: IPv4
    ports:
      - name: pg
        port: 5432
    endpoints:
      - addresses: [10.244.1.5]
      - addresses: [10.244.2.5]
        conditions:
          ready: false
      - addresses: [10.244.3.5]
        conditions:
          ready: false
          serving: true
          terminating: true
        nodeName: node-1
        targetRef: {kind: Pod, name: db-2, namespace: default}
  `);
  const s = state.endpointSlices[0];
  assert.equal(s?.serviceName, "db");
  assert.deepEqual(s?.ports, [{ name: "pg", port: 5432, protocol: "TCP" }]);
  assert.deepEqual(
    s?.endpoints.map((e) => e.conditions),
    [
      { ready: true, serving: true, terminating: false },
      { ready: false, serving: false, terminating: false },
      { ready: false, serving: true, terminating: true },
    ],
  );
  assert.deepEqual(s?.endpoints[2]?.targetRef, { kind: "Pod", name: "db-2", namespace: "default" });
});

test("Cluster defaults come from CLUSTER_DEFAULTS; the DNS address is the 10th of the service CIDR", () => {
  const c = load(yaml`
    apiVersion: podnet.dev/v1alpha1
    kind: Cluster
    metadata:
      name: lab
  `).clusters[0];
  assert.ok(c);
  const { kind, meta, implicit, dns, ...rest } = c;
  const { dns: defaultDns, ...defaults } = CLUSTER_DEFAULTS;
  assert.deepEqual(rest, defaults);
  assert.deepEqual(dns, { ...defaultDns, serviceIP: "10.96.0.10" });
  assert.equal(kind, "Cluster");
  assert.equal(meta.name, "lab");
  assert.equal(implicit, false);
});

test("Cluster shorthands: singular CIDRs, a number for nodeCIDRMaskSize, IPv6-only defaults", () => {
  const state = load(yaml`
    apiVersion: podnet.dev/v1alpha1
    kind: Cluster
    metadata:
      name: a
    spec:
      podCIDR: 10.100.0.0/16
      serviceCIDR: 10.200.0.0/16
      nodeCIDRMaskSize: 26
      nodes: 3
      clusterDomain: a.local
      fabric:
        mode: vxlan
        vni: 42
        mtu: 9000
      dns:
        ttl: 30
        podRecords: verified
        forward:
          - zone: b.local.
            servers: [10.201.0.10, "10.201.0.11:5353", "[fd00::a]:53"]
        upstream: [192.0.2.53]
    ---
    apiVersion: podnet.dev/v1alpha1
    kind: Cluster
    metadata:
      name: b
    spec:
      podCIDRs: [fd00:20:244::/56]
      nodeCIDRMaskSize: {ipv6: 64}
  `);
  const [a, b] = state.clusters;
  assert.deepEqual(a?.podCIDRs, ["10.100.0.0/16"]);
  assert.deepEqual(a?.serviceCIDRs, ["10.200.0.0/16"]);
  assert.deepEqual(a?.nodeCIDRMaskSize, { ipv4: 26, ipv6: 64 });
  assert.equal(a?.nodeCount, 3);
  assert.equal(a?.clusterDomain, "a.local");
  assert.deepEqual(a?.fabric, {
    mode: "vxlan",
    vni: 42,
    port: 4789,
    mtu: 9000,
    advertiseToRouter: false,
    masquerade: true,
  });
  // Where each forward entry was declared (for diagnostics) is checked elsewhere; the values here.
  const forward = a?.dns.forward.map(({ source: _source, ...f }) => f);
  assert.deepEqual({ ...a?.dns, forward }, {
    serviceIP: "10.200.0.10",
    ttl: 30,
    podRecords: "verified",
    forward: [{ zone: "b.local", servers: ["10.201.0.10", "10.201.0.11:5353", "[fd00::a]:53"] }],
    upstream: ["192.0.2.53"],
  });
  assert.deepEqual(b?.podCIDRs, ["fd00:20:244::/56"]);
  assert.deepEqual(b?.serviceCIDRs, ["fd00:10:96::/112"]);
  assert.equal(b?.dns.serviceIP, "fd00:10:96::a");
});

test("Namespaces get kubernetes.io/metadata.name; ExternalHost ports default to TCP; Node InternalIP", () => {
  const state = load(yaml`
    apiVersion: v1
    kind: Namespace
    metadata:
      name: shop
      labels:
        team: a
        kubernetes.io/metadata.name: wrong
    ---
    apiVersion: podnet.dev/v1alpha1
    kind: ExternalHost
    metadata:
      name: pay
    spec:
      address: 203.0.113.50
      ports:
        - port: 443
        - port: 53
          protocol: UDP
    ---
    apiVersion: v1
    kind: Node
    metadata:
      name: worker-1
    spec:
      podCIDRs: [10.244.7.0/24]
    status:
      addresses:
        - type: Hostname
          address: worker-1
        - type: InternalIP
          address: 172.18.0.11
  `);
  const shop = state.namespaces.find((n) => n.meta.name === "shop");
  assert.deepEqual(shop?.meta.labels, { team: "a", "kubernetes.io/metadata.name": "shop" });
  assert.equal(shop?.implicit, false);
  assert.deepEqual(state.externalHosts[0]?.ports, [
    { port: 443, protocol: "TCP" },
    { port: 53, protocol: "UDP" },
  ]);
  assert.equal(state.externalHosts[0]?.address, "203.0.113.50");
  assert.deepEqual(state.nodes, [
    {
      kind: "Node",
      meta: {
        name: "worker-1",
        cluster: "default",
        labels: {},
        annotations: {},
        source: { file: "d.yaml", line: 20 },
      },
      podCIDRs: ["10.244.7.0/24"],
      address: "172.18.0.11",
      implicit: false,
    },
  ]);
});

test("Deployment replicas default to 1", () => {
  const state = load(yaml`
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
    spec:
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec: {containers: [{name: web}]}
  `);
  assert.equal(state.pods.length, 1);
});
