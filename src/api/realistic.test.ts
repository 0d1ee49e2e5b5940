/**
 * Real users' manifests: fields podnet does not use are ignored (listed with verbose), kinds it
 * does not model are skipped with one warning per kind, and a manifest in the style of the upstream
 * Kubernetes examples loads without errors.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { loadManifestText } from "./loader.js";
import { matchesSelector } from "./selector.js";
import { errorsOf, show } from "./testutil.js";

/** In the style of kubernetes/website's examples (application/, service/networking/). */
const GUESTBOOK = `# Guestbook frontend, as in the Kubernetes tutorials, with the usual production extras.
apiVersion: v1
kind: Namespace
metadata:
  name: guestbook
  labels:
    pod-security.kubernetes.io/enforce: baseline
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: frontend
  namespace: guestbook
  labels:
    app.kubernetes.io/name: guestbook
    app.kubernetes.io/component: frontend
  annotations:
    deployment.kubernetes.io/revision: "3"
spec:
  replicas: 3
  revisionHistoryLimit: 5
  progressDeadlineSeconds: 600
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 0
  selector:
    matchLabels:
      app.kubernetes.io/name: guestbook
      app.kubernetes.io/component: frontend
  template:
    metadata:
      labels:
        app.kubernetes.io/name: guestbook
        app.kubernetes.io/component: frontend
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: "9102"
    spec:
      serviceAccountName: frontend
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 30
      securityContext:
        runAsNonRoot: true
        seccompProfile:
          type: RuntimeDefault
      initContainers:
        - name: wait-for-redis
          image: busybox:1.36
          command: ["sh", "-c", "until nc -z redis-leader 6379; do sleep 1; done"]
      containers:
        - name: php-redis
          image: us-docker.pkg.dev/google-samples/containers/gke/gb-frontend:v5
          imagePullPolicy: IfNotPresent
          args: ["--port=80"]
          env:
            - name: GET_HOSTS_FROM
              value: "dns"
            - name: POD_IP
              valueFrom:
                fieldRef:
                  fieldPath: status.podIP
          envFrom:
            - configMapRef:
                name: frontend-config
          resources:
            requests:
              cpu: 100m
              memory: 100Mi
            limits:
              memory: 256Mi
          ports:
            - name: http
              containerPort: 80
            - name: metrics
              containerPort: 9102
              protocol: TCP
          readinessProbe:
            httpGet:
              path: /healthz
              port: http
            initialDelaySeconds: 5
            periodSeconds: 10
          livenessProbe:
            tcpSocket:
              port: 80
            failureThreshold: 3
          lifecycle:
            preStop:
              exec:
                command: ["sleep", "5"]
          volumeMounts:
            - name: cache
              mountPath: /var/cache/app
            - name: config
              mountPath: /etc/frontend
              readOnly: true
          securityContext:
            allowPrivilegeEscalation: false
            capabilities:
              drop: ["ALL"]
      volumes:
        - name: cache
          emptyDir:
            sizeLimit: 500Mi
        - name: config
          configMap:
            name: frontend-config
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    app.kubernetes.io/component: frontend
      tolerations:
        - key: node-role.kubernetes.io/control-plane
          operator: Exists
          effect: NoSchedule
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: topology.kubernetes.io/zone
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              app.kubernetes.io/component: frontend
status:
  availableReplicas: 3
  observedGeneration: 7
---
apiVersion: v1
kind: Service
metadata:
  name: frontend
  namespace: guestbook
  labels:
    app.kubernetes.io/name: guestbook
    app.kubernetes.io/component: frontend
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-type: nlb
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector:
    app.kubernetes.io/name: guestbook
    app.kubernetes.io/component: frontend
  ports:
    - name: http
      port: 80
      targetPort: http
      appProtocol: http
  loadBalancerSourceRanges:
    - 192.0.2.0/24
  allocateLoadBalancerNodePorts: true
status:
  loadBalancer:
    ingress:
      - ip: 198.51.100.20
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: test-network-policy
  namespace: guestbook
spec:
  podSelector:
    matchLabels:
      app.kubernetes.io/component: frontend
  policyTypes:
    - Ingress
    - Egress
  ingress:
    - from:
        - ipBlock:
            cidr: 172.17.0.0/16
            except:
              - 172.17.1.0/24
        - namespaceSelector:
            matchLabels:
              project: myproject
        - podSelector:
            matchLabels:
              role: frontend
      ports:
        - protocol: TCP
          port: 6379
  egress:
    - to:
        - ipBlock:
            cidr: 10.0.0.0/24
      ports:
        - protocol: TCP
          port: 5978
    - to:
        - namespaceSelector:
            matchExpressions:
              - key: kubernetes.io/metadata.name
                operator: In
                values: ["kube-system"]
      ports:
        - protocol: UDP
          port: 53
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: frontend-config
  namespace: guestbook
data:
  settings.yaml: |
    cache: true
    ttl: 30
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: frontend
  namespace: guestbook
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: frontend
  namespace: guestbook
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: frontend}
  minReplicas: 3
  maxReplicas: 10
`;

test("an upstream-style Deployment + Service + NetworkPolicy loads without errors", () => {
  const r = loadManifestText(GUESTBOOK, "guestbook.yaml");
  assert.deepEqual(errorsOf(r.diagnostics), [], show(r.diagnostics));
  const s = r.state;
  assert.equal(s.pods.length, 3);
  const pod = s.pods[0];
  assert.deepEqual(pod?.containers, [
    {
      name: "php-redis",
      ports: [
        { name: "http", containerPort: 80, protocol: "TCP" },
        { name: "metrics", containerPort: 9102, protocol: "TCP" },
      ],
    },
  ]);
  assert.equal(pod?.meta.annotations["prometheus.io/port"], "9102");
  const svc = s.services[0];
  assert.equal(svc?.externalTrafficPolicy, "Local");
  assert.deepEqual(svc?.loadBalancerIngress, ["198.51.100.20"]);
  assert.deepEqual(svc?.loadBalancerSourceRanges, ["192.0.2.0/24"]);
  assert.ok(
    svc?.selector &&
      s.pods.every((p) =>
        matchesSelector({ matchLabels: svc.selector ?? {}, matchExpressions: [] }, p.meta.labels),
      ),
  );
  const np = s.networkPolicies[0];
  assert.deepEqual(np?.policyTypes, ["Ingress", "Egress"]);
  assert.equal(np?.ingress[0]?.peers.length, 3);
  assert.deepEqual(np?.egress[1]?.peers[0]?.namespaceSelector, {
    matchLabels: {},
    matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: ["kube-system"] }],
  });
  assert.ok(
    s.pods.every((p) =>
      matchesSelector(np?.podSelector ?? { matchLabels: {}, matchExpressions: [] }, p.meta.labels),
    ),
  );
  const guestbook = s.namespaces.find((n) => n.meta.name === "guestbook");
  assert.equal(guestbook?.implicit, false);
  const warnings = r.diagnostics.filter((d) => d.severity === "warning").map((d) => d.message);
  assert.deepEqual(warnings, [
    "skipped 1 ConfigMap object: podnet does not model ConfigMap",
    "skipped 1 ServiceAccount object: podnet does not model ServiceAccount",
    "skipped 1 HorizontalPodAutoscaler object: podnet does not model HorizontalPodAutoscaler",
  ]);
});

test("verbose lists each ignored field once per kind and path, with the line of its first use", () => {
  const quiet = loadManifestText(GUESTBOOK, "guestbook.yaml");
  assert.equal(quiet.diagnostics.filter((d) => d.severity === "info").length, 0);
  const r = loadManifestText(GUESTBOOK, "guestbook.yaml", { verbose: true });
  assert.deepEqual(errorsOf(r.diagnostics), []);
  const infos = r.diagnostics.filter((d) => d.severity === "info");
  const listed = new Set(infos.map((d) => `${d.object}: ${d.path}`));
  assert.equal(listed.size, infos.length, "one info per distinct Kind: path");
  for (const expected of [
    "Deployment: spec.strategy",
    "Deployment: spec.revisionHistoryLimit",
    "Deployment: spec.template.spec.containers[].image",
    "Deployment: spec.template.spec.containers[].resources",
    "Deployment: spec.template.spec.containers[].readinessProbe",
    "Deployment: spec.template.spec.containers[].env",
    "Deployment: spec.template.spec.volumes",
    "Deployment: spec.template.spec.initContainers",
    "Deployment: spec.template.spec.affinity",
    "Deployment: status",
    "Service: spec.ports[].appProtocol",
    "Service: spec.allocateLoadBalancerNodePorts",
    "Service: status.loadBalancer.ingress[].hostname",
  ]) {
    if (expected.endsWith("hostname")) continue; // not present in this manifest
    assert.ok(listed.has(expected), `${expected} not listed:\n${[...listed].join("\n")}`);
  }
  // Used fields are not listed.
  for (const used of [
    "Deployment: spec.replicas",
    "Deployment: spec.template.spec.containers[].ports",
    "Service: status.loadBalancer.ingress[].ip",
    "Service: spec.ports[].targetPort",
    "NetworkPolicy: spec.ingress[].from[].ipBlock",
  ]) {
    assert.ok(!listed.has(used), `${used} listed as ignored`);
  }
  const image = infos.find((d) => d.path === "spec.template.spec.containers[].image");
  assert.equal(image?.source?.line, 54);
  assert.match(image?.message ?? "", /ignored: podnet does not use this field \(1 object\)/);
});

test("ignored fields are counted across objects, not listed per object", () => {
  const pod = (name: string) => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  uid: 1234
spec:
  containers:
    - name: c
      image: nginx
      ports: [{containerPort: 80}]
status:
  phase: Running
`;
  const r = loadManifestText([pod("a"), pod("b"), pod("c")].join("---\n"), "p.yaml", { verbose: true });
  const infos = r.diagnostics.filter((d) => d.severity === "info");
  assert.deepEqual(
    infos.map((d) => `${d.object}: ${d.path} @${d.source?.line}: ${d.message}`),
    [
      "Pod: metadata.uid @5: ignored: podnet does not use this field (3 objects)",
      "Pod: spec.containers[].image @9: ignored: podnet does not use this field (3 objects)",
      "Pod: status @11: ignored: podnet does not use this field (3 objects)",
    ],
  );
});

test("unknown kinds: one warning per kind with the count, at the first object", () => {
  const cm = (n: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${n}\ndata: {a: b}\n`;
  const crd = `apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata:\n  name: tls\n`;
  const r = loadManifestText([cm("a"), crd, cm("b"), cm("c")].join("---\n"), "k.yaml");
  assert.deepEqual(
    r.diagnostics.map((d) => `${d.severity} ${d.source?.line}: ${d.message}`),
    [
      "warning 1: skipped 3 ConfigMap objects: podnet does not model ConfigMap",
      "warning 7: skipped 1 Certificate object: podnet does not model Certificate",
    ],
  );
});

test("kind: List and typed lists (PodList) load their items, with item lines", () => {
  const text = `apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Service
    metadata:
      name: a
    spec:
      ports: [{port: 80}]
  - apiVersion: v1
    kind: Service
    metadata:
      name: b
    spec:
      ports: [{port: 0}]
---
apiVersion: v1
kind: PodList
items:
  - metadata:
      name: p
    spec:
      containers: [{name: c}]
`;
  const r = loadManifestText(text, "l.yaml");
  assert.deepEqual(
    r.state.services.map((s) => [s.meta.name, s.meta.source?.line]),
    [
      ["a", 4],
      ["b", 10],
    ],
  );
  assert.deepEqual(
    r.state.pods.map((p) => p.meta.name),
    ["p"],
  );
  const errors = errorsOf(r.diagnostics);
  assert.equal(errors.length, 1, show(r.diagnostics));
  assert.equal(errors[0]?.path, "spec.ports[0].port");
  assert.equal(errors[0]?.source?.line, 15);
});

test("JSON manifests load, and errors in them have lines", () => {
  const json = JSON.stringify(
    {
      apiVersion: "v1",
      kind: "List",
      items: [
        {
          apiVersion: "v1",
          kind: "Service",
          metadata: { name: "a" },
          spec: { ports: [{ port: 80, protocol: "tcp" }] },
        },
      ],
    },
    null,
    2,
  );
  const r = loadManifestText(json, "x.json");
  const errors = errorsOf(r.diagnostics);
  assert.equal(errors.length, 1, show(r.diagnostics));
  assert.equal(errors[0]?.path, "spec.ports[0].protocol");
  assert.equal(errors[0]?.source?.line, json.split("\n").findIndex((l) => l.includes('"protocol"')) + 1);
  assert.equal(r.state.services[0]?.meta.source?.line, 5, "the line of the item's opening brace");
});
