/**
 * Validation: a table of bad manifests, each with the file:line, field path and message fragment it
 * must produce; and a manifest with several errors reported at once.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { formatDiagnostic } from "./diagnostics.js";
import { loadManifestText } from "./loader.js";
import { errorsOf, show, yaml } from "./testutil.js";

interface Row {
  name: string;
  text: string;
  line: number;
  /** Field path; `undefined` for diagnostics about the whole object or document. */
  path: string | undefined;
  message: string;
  hint?: string;
  object?: string;
}

const SVC_HEAD = yaml`
  apiVersion: v1
  kind: Service
  metadata:
    name: web
  spec:
`;

/** A Service whose spec continues at line 6 with `spec` (indented by the caller). */
const svc = (spec: string) => SVC_HEAD + spec;

const rows: Row[] = [
  // --- kind, apiVersion, metadata ---
  {
    name: "missing kind",
    text: yaml`
      apiVersion: v1
      metadata:
        name: x
    `,
    line: 1,
    path: "kind",
    message: "Required value",
  },
  {
    name: "kind is case-sensitive",
    text: yaml`
      apiVersion: apps/v1
      kind: deployment
      metadata:
        name: x
    `,
    line: 2,
    path: "kind",
    message: "kinds are case-sensitive",
    hint: "use kind: Deployment",
  },
  {
    name: "unknown kind in podnet.dev",
    text: yaml`
      apiVersion: podnet.dev/v1alpha1
      kind: Clustr
      metadata:
        name: x
    `,
    line: 2,
    path: "kind",
    message: 'unknown kind "Clustr"',
    hint: "did you mean Cluster?",
  },
  {
    name: "missing apiVersion",
    text: yaml`
      kind: Service
      metadata:
        name: web
      spec:
        clusterIP: None
    `,
    line: 1,
    path: "apiVersion",
    message: "Required value",
    hint: "set apiVersion: v1",
  },
  {
    name: "removed Deployment apiVersion",
    text: yaml`
      apiVersion: extensions/v1beta1
      kind: Deployment
      metadata:
        name: web
      spec:
        selector:
          matchLabels: {app: web}
        template:
          metadata:
            labels: {app: web}
          spec:
            containers: [{name: web}]
    `,
    line: 1,
    path: "apiVersion",
    message: 'expected "apps/v1"',
    hint: "removed in Kubernetes 1.16",
  },
  {
    name: "EndpointSlice needs discovery.k8s.io/v1",
    text: yaml`
      apiVersion: discovery.k8s.io/v1beta1
      kind: EndpointSlice
      metadata:
        name: web-1
      addressType: IPv4
    `,
    line: 1,
    path: "apiVersion",
    message: 'expected "discovery.k8s.io/v1"',
  },
  {
    name: "missing metadata.name points at the object",
    text: yaml`
      apiVersion: v1
      kind: Pod
      metadata:
        labels: {app: web}
      spec:
        containers: [{name: web}]
    `,
    line: 1,
    path: "metadata.name",
    message: "Required value",
  },
  {
    name: "generateName is not supported",
    text: yaml`
      apiVersion: v1
      kind: Pod
      metadata:
        generateName: web-
      spec:
        containers: [{name: web}]
    `,
    line: 1,
    path: "metadata.name",
    message: "name or generateName is required",
    hint: "replace generateName: web- with name: web",
  },
  {
    name: "Namespace name is an RFC 1123 label",
    text: yaml`
      apiVersion: v1
      kind: Namespace
      metadata:
        name: team.a
    `,
    line: 4,
    path: "metadata.name",
    message:
      "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc')",
    hint: 'use "team-a"',
  },
  {
    name: "Service name is an RFC 1035 label",
    text: yaml`
      apiVersion: v1
      kind: Service
      metadata:
        name: 1web
      spec:
        clusterIP: None
    `,
    line: 4,
    path: "metadata.name",
    message:
      "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character",
    hint: 'use "web"',
  },
  {
    name: "Pod name is an RFC 1123 subdomain of at most 253 characters",
    text: yaml`
      apiVersion: v1
      kind: Pod
      metadata:
        name: ${"a".repeat(254)}
      spec:
        containers: [{name: web}]
    `,
    line: 4,
    path: "metadata.name",
    message: "must be no more than 253 characters",
  },
  {
    name: "Deployment name with uppercase",
    text: yaml`
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: Web_App
      spec:
        selector: {matchLabels: {app: web}}
        template:
          metadata: {labels: {app: web}}
          spec: {containers: [{name: web}]}
    `,
    line: 4,
    path: "metadata.name",
    message: "a lowercase RFC 1123 subdomain must consist of",
    hint: 'use "web-app"',
  },
  {
    name: "invalid namespace",
    text: yaml`
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
        namespace: Team_A
      spec:
        containers: [{name: web}]
    `,
    line: 5,
    path: "metadata.namespace",
    message: 'invalid namespace "Team_A"',
  },
  // --- labels ---
  {
    name: "label key name part must start alphanumeric",
    text: yaml`
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
        labels:
          app: web
          -tier: db
      spec:
        containers: [{name: web}]
    `,
    line: 7,
    path: "metadata.labels[-tier]",
    message: "name part must consist of alphanumeric characters, '-', '_' or '.'",
  },
  {
    name: "label key prefix must be a DNS subdomain",
    text: yaml`
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
        labels:
          Example.COM/app: web
      spec:
        containers: [{name: web}]
    `,
    line: 6,
    path: "metadata.labels[Example.COM/app]",
    message: "prefix part a lowercase RFC 1123 subdomain",
  },
  {
    name: "label value at most 63 characters",
    text: yaml`
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
        labels:
          app: ${"v".repeat(64)}
      spec:
        containers: [{name: web}]
    `,
    line: 6,
    path: "metadata.labels[app]",
    message: "must be no more than 63 characters",
  },
  {
    name: "label value with a space",
    text: yaml`
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
        labels:
          app: my app
      spec:
        containers: [{name: web}]
    `,
    line: 6,
    path: "metadata.labels[app]",
    message: "a valid label must be an empty string or consist of alphanumeric characters",
    hint: 'use "my-app"',
  },
  {
    name: "label value must be a string (type error)",
    text: yaml`
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
        labels:
          version: 1.10
      spec:
        containers: [{name: web}]
    `,
    line: 6,
    path: "metadata.labels[version]",
    message: "expected a string, found a number (1.1)",
    hint: 'quote it: "1.1"',
  },
  {
    name: "labels must be a map (type error)",
    text: yaml`
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
        labels:
          - app
      spec:
        containers: [{name: web}]
    `,
    line: 5,
    path: "metadata.labels",
    message: "expected a map, found a list",
  },
  {
    name: "unknown value of podnet.dev/ready",
    text: yaml`
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
        annotations:
          podnet.dev/ready: "maybe"
      spec:
        containers: [{name: web}]
    `,
    line: 6,
    path: "metadata.annotations[podnet.dev/ready]",
    message: 'must be "true" or "false"',
  },
  // --- selectors ---
  {
    name: "In needs values",
    text: yaml`
      apiVersion: networking.k8s.io/v1
      kind: NetworkPolicy
      metadata:
        name: np
      spec:
        podSelector:
          matchExpressions:
            - key: app
              operator: In
    `,
    line: 8,
    path: "spec.podSelector.matchExpressions[0].values",
    message: "must be specified when `operator` is 'In' or 'NotIn'",
  },
  {
    name: "Exists takes no values",
    text: yaml`
      apiVersion: networking.k8s.io/v1
      kind: NetworkPolicy
      metadata:
        name: np
      spec:
        podSelector:
          matchExpressions:
            - key: app
              operator: Exists
              values: [web]
    `,
    line: 10,
    path: "spec.podSelector.matchExpressions[0].values",
    message: "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
  },
  {
    name: "unknown selector operator",
    text: yaml`
      apiVersion: networking.k8s.io/v1
      kind: NetworkPolicy
      metadata:
        name: np
      spec:
        podSelector:
          matchExpressions:
            - key: app
              operator: Equals
              values: [web]
    `,
    line: 9,
    path: "spec.podSelector.matchExpressions[0].operator",
    message: 'unsupported value "Equals": supported values: "DoesNotExist", "Exists", "In", "NotIn"',
  },
  // --- Service ports ---
  {
    name: "port 0",
    text: svc(`  ports:\n    - port: 0\n`),
    line: 7,
    path: "spec.ports[0].port",
    message: "must be between 1 and 65535, inclusive",
  },
  {
    name: "port above 65535",
    text: svc(`  ports:\n    - port: 65536\n`),
    line: 7,
    path: "spec.ports[0].port",
    message: "must be between 1 and 65535, inclusive",
  },
  {
    name: "port as a quoted string (type error)",
    text: svc(`  ports:\n    - port: "80"\n`),
    line: 7,
    path: "spec.ports[0].port",
    message: 'expected an integer, found a string ("80")',
    hint: "write the number without quotes: 80",
  },
  {
    name: "protocol is case-sensitive",
    text: svc(`  ports:\n    - port: 80\n      protocol: tcp\n`),
    line: 8,
    path: "spec.ports[0].protocol",
    message: 'unsupported value "tcp": supported values: "SCTP", "TCP", "UDP"',
    hint: 'use "TCP"',
  },
  {
    name: "unknown protocol",
    text: svc(`  ports:\n    - port: 80\n      protocol: HTTP\n`),
    line: 8,
    path: "spec.ports[0].protocol",
    message: 'unsupported value "HTTP"',
  },
  {
    name: "targetPort name with an underscore",
    text: svc(`  ports:\n    - port: 80\n      targetPort: http_port\n`),
    line: 8,
    path: "spec.ports[0].targetPort",
    message: "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
  },
  {
    name: "targetPort name longer than 15",
    text: svc(`  ports:\n    - port: 80\n      targetPort: metrics-endpoint\n`),
    line: 8,
    path: "spec.ports[0].targetPort",
    message: "must be no more than 15 characters",
  },
  {
    name: "targetPort quoted number",
    text: svc(`  ports:\n    - port: 80\n      targetPort: "8080"\n`),
    line: 8,
    path: "spec.ports[0].targetPort",
    message: "must contain at least one letter (a-z)",
    hint: "without quotes",
  },
  {
    name: "targetPort with consecutive hyphens",
    text: svc(`  ports:\n    - port: 80\n      targetPort: web--http\n`),
    line: 8,
    path: "spec.ports[0].targetPort",
    message: "must not contain consecutive hyphens",
  },
  {
    name: "targetPort starting with a hyphen",
    text: svc(`  ports:\n    - port: 80\n      targetPort: -http\n`),
    line: 8,
    path: "spec.ports[0].targetPort",
    message: "must not begin or end with a hyphen",
  },
  {
    name: "targetPort out of range",
    text: svc(`  ports:\n    - port: 80\n      targetPort: 70000\n`),
    line: 8,
    path: "spec.ports[0].targetPort",
    message: "must be between 1 and 65535",
  },
  {
    name: "port names required with several ports (line of the port entry)",
    text: svc(`  ports:\n    - name: http\n      port: 80\n    - port: 443\n`),
    line: 9,
    path: "spec.ports[1].name",
    message: "Required value",
  },
  {
    name: "duplicate port names",
    text: svc(`  ports:\n    - name: http\n      port: 80\n    - name: http\n      port: 443\n`),
    line: 9,
    path: "spec.ports[1].name",
    message: 'Duplicate value: "http"',
  },
  {
    name: "duplicate port and protocol",
    text: svc(`  ports:\n    - name: a\n      port: 80\n    - name: b\n      port: 80\n`),
    line: 9,
    path: "spec.ports[1]",
    message: "Duplicate value: port 80/TCP is already defined by spec.ports[0]",
  },
  {
    name: "nodePort on a ClusterIP Service",
    text: svc(`  ports:\n    - port: 80\n      nodePort: 30080\n`),
    line: 8,
    path: "spec.ports[0].nodePort",
    message: "may not be used when `type` is 'ClusterIP'",
  },
  {
    name: "nodePort out of range",
    text: svc(`  type: NodePort\n  ports:\n    - port: 80\n      nodePort: 8080\n`),
    line: 9,
    path: "spec.ports[0].nodePort",
    message: "The range of valid ports is 30000-32767",
  },
  {
    name: "Service type values",
    text: svc(`  type: Nodeport\n  ports:\n    - port: 80\n`),
    line: 6,
    path: "spec.type",
    message: 'unsupported value "Nodeport"',
    hint: 'use "NodePort"',
  },
  {
    name: "ports are required",
    text: svc(`  selector:\n    app: web\n`),
    line: 1,
    path: "spec.ports",
    message: "Required value",
  },
  {
    name: "ports must be a list (type error)",
    text: svc(`  ports:\n    port: 80\n`),
    line: 6,
    path: "spec.ports",
    message: "expected a list, found a map",
  },
  {
    name: "clusterIP syntax",
    text: svc(`  clusterIP: 10.96.0.300\n  ports:\n    - port: 80\n`),
    line: 6,
    path: "spec.clusterIP",
    message: '"10.96.0.300" is not a valid IP address: octet 300 is greater than 255',
  },
  {
    name: "clusterIP outside the service CIDR",
    text: svc(`  clusterIP: 10.0.0.5\n  ports:\n    - port: 80\n`),
    line: 6,
    path: "spec.clusterIP",
    message: "provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12",
  },
  {
    name: "clusterIP taken by the cluster DNS",
    text: svc(`  clusterIP: 10.96.0.10\n  ports:\n    - port: 80\n`),
    line: 6,
    path: "spec.clusterIP",
    message: "already allocated to the cluster DNS",
  },
  {
    name: "headless NodePort",
    text: svc(`  type: NodePort\n  clusterIP: None\n  ports:\n    - port: 80\n`),
    line: 7,
    path: "spec.clusterIP",
    message: "may not be set to 'None' for NodePort services",
  },
  {
    name: "clusterIPs[0] must match clusterIP",
    text: svc(`  clusterIP: 10.96.0.20\n  clusterIPs: [10.96.0.21]\n  ports:\n    - port: 80\n`),
    line: 7,
    path: "spec.clusterIPs[0]",
    message: "must match `clusterIP`",
  },
  {
    name: "ipFamilies values",
    text: svc(`  ipFamilies: [IPv7]\n  ports:\n    - port: 80\n`),
    line: 6,
    path: "spec.ipFamilies[0]",
    message: 'unsupported value "IPv7"',
  },
  {
    name: "RequireDualStack on a single-stack cluster",
    text: svc(`  ipFamilyPolicy: RequireDualStack\n  ports:\n    - port: 80\n`),
    line: 6,
    path: "spec.ipFamilyPolicy",
    message: "not configured for dual-stack services",
  },
  {
    name: "ExternalName needs externalName",
    text: svc(`  type: ExternalName\n`),
    line: 1,
    path: "spec.externalName",
    message: "externalName is required for ExternalName services",
  },
  {
    name: "externalName must be a DNS subdomain",
    text: svc(`  type: ExternalName\n  externalName: db_server.example.com\n`),
    line: 7,
    path: "spec.externalName",
    message: "a lowercase RFC 1123 subdomain",
  },
  {
    name: "sessionAffinity values",
    text: svc(`  sessionAffinity: Sticky\n  ports:\n    - port: 80\n`),
    line: 6,
    path: "spec.sessionAffinity",
    message: 'unsupported value "Sticky": supported values: "ClientIP", "None"',
  },
  {
    name: "session affinity timeout range",
    text: svc(
      `  sessionAffinity: ClientIP\n  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: 90000\n  ports:\n    - port: 80\n`,
    ),
    line: 9,
    path: "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
    message: "must be greater than 0 and less than 86400",
  },
  {
    name: "externalTrafficPolicy on a ClusterIP Service",
    text: svc(`  externalTrafficPolicy: Local\n  ports:\n    - port: 80\n`),
    line: 6,
    path: "spec.externalTrafficPolicy",
    message: "may only be set when `type` is 'NodePort' or 'LoadBalancer'",
  },
  {
    name: "loadBalancerSourceRanges with host bits",
    text: svc(
      `  type: LoadBalancer\n  loadBalancerSourceRanges:\n    - 10.0.0.1/8\n  ports:\n    - port: 80\n`,
    ),
    line: 8,
    path: "spec.loadBalancerSourceRanges[0]",
    message: '"10.0.0.1/8" has host bits set; did you mean 10.0.0.0/8?',
    hint: "write 10.0.0.0/8",
  },
  {
    name: "loadBalancerSourceRanges on a ClusterIP Service",
    text: svc(`  loadBalancerSourceRanges: [10.0.0.0/8]\n  ports:\n    - port: 80\n`),
    line: 6,
    path: "spec.loadBalancerSourceRanges",
    message: "may only be used when `type` is 'LoadBalancer'",
  },
  {
    name: "selector label values are validated",
    text: svc(`  selector:\n    app: web app\n  ports:\n    - port: 80\n`),
    line: 7,
    path: "spec.selector[app]",
    message: 'invalid label value "web app"',
  },
  {
    name: "externalIPs may not be loopback",
    text: svc(`  externalIPs: [127.0.0.1]\n  ports:\n    - port: 80\n`),
    line: 6,
    path: "spec.externalIPs[0]",
    message: "may not be in the loopback range",
  },
  // --- Deployments and StatefulSets ---
  {
    name: "selector does not match template labels",
    text: yaml`
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        selector:
          matchLabels:
            app: web
        template:
          metadata:
            labels:
              app: webapp
          spec:
            containers:
              - name: web
    `,
    line: 11,
    path: "spec.template.metadata.labels",
    message: "`selector` does not match template `labels`",
    hint: "app: web",
  },
  {
    name: "negative replicas",
    text: yaml`
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        replicas: -1
        selector: {matchLabels: {app: web}}
        template:
          metadata: {labels: {app: web}}
          spec: {containers: [{name: web}]}
    `,
    line: 6,
    path: "spec.replicas",
    message: "must be greater than or equal to 0",
  },
  {
    name: "replicas as a string (type error)",
    text: yaml`
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        replicas: "3"
        selector: {matchLabels: {app: web}}
        template:
          metadata: {labels: {app: web}}
          spec: {containers: [{name: web}]}
    `,
    line: 6,
    path: "spec.replicas",
    message: 'expected an integer, found a string ("3")',
  },
  {
    name: "Deployment needs a selector",
    text: yaml`
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        template:
          metadata: {labels: {app: web}}
          spec: {containers: [{name: web}]}
    `,
    line: 1,
    path: "spec.selector",
    message: "Required value",
  },
  {
    name: "empty Deployment selector",
    text: yaml`
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        selector: {}
        template:
          metadata: {labels: {app: web}}
          spec: {containers: [{name: web}]}
    `,
    line: 6,
    path: "spec.selector",
    message: "empty selector is invalid for deployment",
  },
  {
    name: "StatefulSet name with a dot cannot be a hostname",
    text: yaml`
      apiVersion: apps/v1
      kind: StatefulSet
      metadata:
        name: db.main
      spec:
        serviceName: db
        selector: {matchLabels: {app: db}}
        template:
          metadata: {labels: {app: db}}
          spec: {containers: [{name: db}]}
    `,
    line: 4,
    path: "metadata.name",
    message: "StatefulSet pod names are their hostnames",
  },
  // --- Pods and containers ---
  {
    name: "duplicate container port names in a pod",
    text: yaml`
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
      spec:
        containers:
          - name: web
            ports:
              - name: http
                containerPort: 80
          - name: sidecar
            ports:
              - name: http
                containerPort: 8080
    `,
    line: 13,
    path: "spec.containers[1].ports[0].name",
    message: 'Duplicate value: "http"',
  },
  {
    name: "container port needs containerPort (line of the port entry)",
    text: yaml`
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
      spec:
        containers:
          - name: web
            ports:
              - name: http
    `,
    line: 9,
    path: "spec.containers[0].ports[0].containerPort",
    message: "Required value",
  },
  {
    name: "invalid container port name",
    text: yaml`
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
      spec:
        containers:
          - name: web
            ports:
              - name: "8080"
                containerPort: 8080
    `,
    line: 9,
    path: "spec.containers[0].ports[0].name",
    message: "must contain at least one letter (a-z)",
  },
  {
    name: "pod needs containers",
    text: yaml`
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
      spec:
        hostNetwork: true
    `,
    line: 1,
    path: "spec.containers",
    message: "Required value",
  },
  {
    name: "duplicate container names",
    text: yaml`
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
      spec:
        containers:
          - name: web
          - name: web
    `,
    line: 8,
    path: "spec.containers[1].name",
    message: 'Duplicate value: "web"',
  },
  {
    name: "hostPort must equal containerPort with hostNetwork",
    text: yaml`
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
      spec:
        hostNetwork: true
        containers:
          - name: web
            ports:
              - containerPort: 80
                hostPort: 8080
    `,
    line: 11,
    path: "spec.containers[0].ports[0].hostPort",
    message: "must match `containerPort` when `hostNetwork` is true",
  },
  {
    name: "hostNetwork must be a boolean (type error)",
    text: yaml`
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
      spec:
        hostNetwork: "true"
        containers:
          - name: web
    `,
    line: 6,
    path: "spec.hostNetwork",
    message: 'expected true or false, found a string ("true")',
  },
  {
    name: "dangling nodeName",
    text: yaml`
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
      spec:
        nodeName: node-7
        containers:
          - name: web
    `,
    line: 6,
    path: "spec.nodeName",
    message: 'node "node-7" does not exist',
  },
  // --- NetworkPolicy ---
  {
    name: "NetworkPolicy needs podSelector",
    text: yaml`
      apiVersion: networking.k8s.io/v1
      kind: NetworkPolicy
      metadata:
        name: np
      spec:
        policyTypes: [Ingress]
    `,
    line: 1,
    path: "spec.podSelector",
    message: "Required value",
    hint: "podSelector: {}",
  },
  {
    name: "policyTypes values",
    text: yaml`
      apiVersion: networking.k8s.io/v1
      kind: NetworkPolicy
      metadata:
        name: np
      spec:
        podSelector: {}
        policyTypes:
          - ingress
    `,
    line: 8,
    path: "spec.policyTypes[0]",
    message: 'unsupported value "ingress"',
    hint: 'use "Ingress"',
  },
  {
    name: "ipBlock cidr with host bits",
    text: yaml`
      apiVersion: networking.k8s.io/v1
      kind: NetworkPolicy
      metadata:
        name: np
      spec:
        podSelector: {}
        ingress:
          - from:
              - ipBlock:
                  cidr: 10.96.0.1/12
    `,
    line: 10,
    path: "spec.ingress[0].from[0].ipBlock.cidr",
    message: '"10.96.0.1/12" has host bits set; did you mean 10.96.0.0/12?',
  },
  {
    name: "except must be inside cidr",
    text: yaml`
      apiVersion: networking.k8s.io/v1
      kind: NetworkPolicy
      metadata:
        name: np
      spec:
        podSelector: {}
        egress:
          - to:
              - ipBlock:
                  cidr: 10.0.0.0/16
                  except:
                    - 10.0.5.0/24
                    - 192.168.0.0/24
    `,
    line: 13,
    path: "spec.egress[0].to[0].ipBlock.except[1]",
    message: "must be a strict subset of `cidr`",
  },
  {
    name: "ipBlock with a selector in the same peer",
    text: yaml`
      apiVersion: networking.k8s.io/v1
      kind: NetworkPolicy
      metadata:
        name: np
      spec:
        podSelector: {}
        ingress:
          - from:
              - namespaceSelector: {}
                ipBlock:
                  cidr: 10.0.0.0/8
    `,
    line: 10,
    path: "spec.ingress[0].from[0].ipBlock",
    message: "may not specify both ipBlock and another peer",
  },
  {
    name: "empty peer",
    text: yaml`
      apiVersion: networking.k8s.io/v1
      kind: NetworkPolicy
      metadata:
        name: np
      spec:
        podSelector: {}
        ingress:
          - from:
              - {}
    `,
    line: 9,
    path: "spec.ingress[0].from[0]",
    message: "must specify a peer",
  },
  {
    name: "endPort without port",
    text: yaml`
      apiVersion: networking.k8s.io/v1
      kind: NetworkPolicy
      metadata:
        name: np
      spec:
        podSelector: {}
        ingress:
          - ports:
              - endPort: 8090
    `,
    line: 9,
    path: "spec.ingress[0].ports[0].endPort",
    message: "may not be specified when `port` is not specified",
  },
  {
    name: "endPort below port",
    text: yaml`
      apiVersion: networking.k8s.io/v1
      kind: NetworkPolicy
      metadata:
        name: np
      spec:
        podSelector: {}
        ingress:
          - ports:
              - port: 8080
                endPort: 8000
    `,
    line: 10,
    path: "spec.ingress[0].ports[0].endPort",
    message: "must be greater than or equal to `port`",
  },
  {
    name: "endPort with a named port",
    text: yaml`
      apiVersion: networking.k8s.io/v1
      kind: NetworkPolicy
      metadata:
        name: np
      spec:
        podSelector: {}
        ingress:
          - ports:
              - port: http
                endPort: 8000
    `,
    line: 10,
    path: "spec.ingress[0].ports[0].endPort",
    message: "may not be specified when `port` is non-numeric",
  },
  {
    name: "policy port protocol",
    text: yaml`
      apiVersion: networking.k8s.io/v1
      kind: NetworkPolicy
      metadata:
        name: np
      spec:
        podSelector: {}
        egress:
          - ports:
              - port: 53
                protocol: udp
    `,
    line: 10,
    path: "spec.egress[0].ports[0].protocol",
    message: 'unsupported value "udp"',
    hint: 'use "UDP"',
  },
  // --- EndpointSlice, Node ---
  {
    name: "EndpointSlice addressType is required",
    text: yaml`
      apiVersion: discovery.k8s.io/v1
      kind: EndpointSlice
      metadata:
        name: web-1
      endpoints:
        - addresses: [10.244.1.5]
    `,
    line: 1,
    path: "addressType",
    message: "Required value",
  },
  {
    name: "EndpointSlice address of the wrong family",
    text: yaml`
      apiVersion: discovery.k8s.io/v1
      kind: EndpointSlice
      metadata:
        name: web-1
      addressType: IPv4
      endpoints:
        - addresses:
            - fd00::5
    `,
    line: 8,
    path: "endpoints[0].addresses[0]",
    message: "must be a valid IPv4 address",
  },
  {
    name: "Node podCIDR with host bits",
    text: yaml`
      apiVersion: v1
      kind: Node
      metadata:
        name: node-a
      spec:
        podCIDR: 10.244.1.1/24
    `,
    line: 6,
    path: "spec.podCIDR",
    message: "did you mean 10.244.1.0/24?",
  },
  {
    name: "Node podCIDRs: one per family",
    text: yaml`
      apiVersion: v1
      kind: Node
      metadata:
        name: node-a
      spec:
        podCIDRs:
          - 10.244.1.0/24
          - 10.244.2.0/24
    `,
    line: 8,
    path: "spec.podCIDRs[1]",
    message: "may specify no more than one CIDR for each IP family",
  },
  // --- Cluster, ExternalHost ---
  {
    name: "Cluster: podCIDR and podCIDRs together",
    text: yaml`
      apiVersion: podnet.dev/v1alpha1
      kind: Cluster
      metadata:
        name: east
      spec:
        podCIDR: 10.244.0.0/16
        podCIDRs: [10.244.0.0/16]
    `,
    line: 6,
    path: "spec.podCIDR",
    message: "give either spec.podCIDR or spec.podCIDRs, not both",
  },
  {
    name: "Cluster: two IPv4 service CIDRs",
    text: yaml`
      apiVersion: podnet.dev/v1alpha1
      kind: Cluster
      metadata:
        name: east
      spec:
        serviceCIDRs:
          - 10.96.0.0/12
          - 10.112.0.0/12
    `,
    line: 8,
    path: "spec.serviceCIDRs[1]",
    message: "may specify no more than one CIDR for each IP family",
  },
  {
    name: "Cluster: service CIDR too large",
    text: yaml`
      apiVersion: podnet.dev/v1alpha1
      kind: Cluster
      metadata:
        name: east
      spec:
        serviceCIDR: 10.0.0.0/8
    `,
    line: 6,
    path: "spec.serviceCIDR",
    message: "the prefix length must be >= 12",
  },
  {
    name: "Cluster: unknown field with a did-you-mean",
    text: yaml`
      apiVersion: podnet.dev/v1alpha1
      kind: Cluster
      metadata:
        name: east
      spec:
        podCIDRS: [10.244.0.0/16]
    `,
    line: 6,
    path: "spec.podCIDRS",
    message: 'unknown field "podCIDRS"',
    hint: 'did you mean "podCIDRs"?',
  },
  {
    name: "Cluster: VNI range",
    text: yaml`
      apiVersion: podnet.dev/v1alpha1
      kind: Cluster
      metadata:
        name: east
      spec:
        fabric:
          mode: vxlan
          vni: 0
    `,
    line: 8,
    path: "spec.fabric.vni",
    message: "must be between 1 and 16777215",
  },
  {
    name: "Cluster: MTU range",
    text: yaml`
      apiVersion: podnet.dev/v1alpha1
      kind: Cluster
      metadata:
        name: east
      spec:
        fabric:
          mtu: 9216
    `,
    line: 7,
    path: "spec.fabric.mtu",
    message: "must be between 1280 and 9000",
  },
  {
    name: "Cluster: IPv6 pods over VXLAN need MTU >= 1330",
    text: yaml`
      apiVersion: podnet.dev/v1alpha1
      kind: Cluster
      metadata:
        name: east
      spec:
        podCIDRs: [10.244.0.0/16, fd00:10:244::/56]
        serviceCIDRs: [10.96.0.0/12, fd00:10:96::/112]
        fabric:
          mode: vxlan
          mtu: 1300
    `,
    line: 10,
    path: "spec.fabric.mtu",
    message: "is below 1280, the IPv6 minimum",
    hint: "at least 1330",
  },
  {
    name: "Cluster: fabric mode values",
    text: yaml`
      apiVersion: podnet.dev/v1alpha1
      kind: Cluster
      metadata:
        name: east
      spec:
        fabric:
          mode: overlay
    `,
    line: 7,
    path: "spec.fabric.mode",
    message: 'unsupported value "overlay": supported values: "routed", "vxlan"',
  },
  {
    name: "Cluster: node mask shorter than the pod CIDR",
    text: yaml`
      apiVersion: podnet.dev/v1alpha1
      kind: Cluster
      metadata:
        name: east
      spec:
        podCIDRs: [10.244.0.0/16]
        nodeCIDRMaskSize: 12
    `,
    line: 7,
    path: "spec.nodeCIDRMaskSize",
    message: "node mask size /12 is shorter than the pod CIDR 10.244.0.0/16",
  },
  {
    name: "Cluster: dns.podRecords values",
    text: yaml`
      apiVersion: podnet.dev/v1alpha1
      kind: Cluster
      metadata:
        name: east
      spec:
        dns:
          podRecords: on
    `,
    line: 7,
    path: "spec.dns.podRecords",
    message: 'unsupported value "on"',
  },
  {
    name: "Cluster: dns.serviceIP outside the service CIDRs",
    text: yaml`
      apiVersion: podnet.dev/v1alpha1
      kind: Cluster
      metadata:
        name: east
      spec:
        dns:
          serviceIP: 10.0.0.10
    `,
    line: 7,
    path: "spec.dns.serviceIP",
    message: "is outside the service CIDRs (10.96.0.0/12)",
  },
  {
    name: "Cluster: forward server syntax",
    text: yaml`
      apiVersion: podnet.dev/v1alpha1
      kind: Cluster
      metadata:
        name: east
      spec:
        dns:
          forward:
            - zone: west.svc.cluster.local
              servers: ["10.112.0.10:99999"]
    `,
    line: 9,
    path: "spec.dns.forward[0].servers[0]",
    message: "invalid port 99999",
  },
  {
    name: "Cluster: nodeCIDRMaskSize as a string (type error)",
    text: yaml`
      apiVersion: podnet.dev/v1alpha1
      kind: Cluster
      metadata:
        name: east
      spec:
        nodeCIDRMaskSize: "24"
    `,
    line: 6,
    path: "spec.nodeCIDRMaskSize",
    message: "expected a map, found a string",
  },
  {
    name: "ExternalHost address syntax",
    text: yaml`
      apiVersion: podnet.dev/v1alpha1
      kind: ExternalHost
      metadata:
        name: db
      spec:
        address: 192.0.2.010
    `,
    line: 6,
    path: "spec.address",
    message: '"192.0.2.010" is not a valid IP address',
  },
  {
    name: "two ExternalHosts of a cluster with one address (written differently)",
    text: yaml`
      apiVersion: podnet.dev/v1alpha1
      kind: ExternalHost
      metadata:
        name: db
      spec:
        address: fd00:203::10
      ---
      apiVersion: podnet.dev/v1alpha1
      kind: ExternalHost
      metadata:
        name: cache
      spec:
        address: FD00:203:0::0010
    `,
    line: 13,
    path: "spec.address",
    message:
      'Duplicate value: "FD00:203:0::0010": ExternalHost db (t.yaml:1) already has address fd00:203::10',
    hint: "give each external host of a cluster its own address",
    object: "ExternalHost cache",
  },
  // --- documents ---
  {
    name: "YAML syntax: tab indentation",
    text: "apiVersion: v1\nkind: Pod\nmetadata:\n\tname: web\n",
    line: 4,
    path: undefined,
    message: "YAML syntax error: Tabs are not allowed as indentation",
  },
  {
    name: "YAML syntax: duplicate key",
    text: yaml`
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
        name: web2
    `,
    line: 5,
    path: undefined,
    message: "Map keys must be unique",
  },
  {
    name: "a document that is not a map",
    text: yaml`
      - apiVersion: v1
        kind: Pod
    `,
    line: 1,
    path: undefined,
    message: "a manifest document must be a map",
  },
  {
    name: "unknown cluster in the annotation",
    text: yaml`
      apiVersion: v1
      kind: Pod
      metadata:
        name: web
        annotations:
          podnet.dev/cluster: west
      spec:
        containers: [{name: web}]
    `,
    line: 6,
    path: "metadata.annotations[podnet.dev/cluster]",
    message: 'unknown cluster "west"',
  },
];

test(`the error table has at least 40 rows (${rows.length})`, () => {
  assert.ok(rows.length >= 40);
});

for (const row of rows) {
  test(`error: ${row.name}`, () => {
    const { diagnostics } = loadManifestText(row.text, "t.yaml");
    const errors = errorsOf(diagnostics);
    const found = errors.find((d) => d.path === row.path && d.message.includes(row.message));
    assert.ok(
      found,
      `no error at ${row.path ?? "(object)"} containing ${JSON.stringify(row.message)}; got:\n${show(diagnostics)}`,
    );
    assert.equal(found.source?.file, "t.yaml");
    assert.equal(found.source?.line, row.line, `line of ${formatDiagnostic(found)}`);
    if (row.hint)
      assert.ok(
        found.hint?.includes(row.hint),
        `hint ${JSON.stringify(found.hint)} lacks ${JSON.stringify(row.hint)}`,
      );
    if (row.object) assert.equal(found.object, row.object);
    assert.ok(formatDiagnostic(found).startsWith(`t.yaml:${row.line}: error: `));
  });
}

test("all errors are reported at once, with file, line, object, path and hint", () => {
  const text = yaml`
    apiVersion: v1
    kind: Service
    metadata:
      name: web
      namespace: shop
    spec:
      type: NodePort
      ports:
        - name: http
          port: 80
          protocol: tcp
          nodePort: 80
        - name: http
          port: 443
          targetPort: https_port
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      namespace: shop
    spec:
      replicas: -2
      selector:
        matchLabels: {app: web}
      template:
        metadata:
          labels: {app: web}
        spec:
          containers:
            - name: web
              ports:
                - containerPort: 0
  `;
  const { diagnostics } = loadManifestText(text, "shop.yaml");
  const errors = errorsOf(diagnostics);
  assert.deepEqual(
    errors.map((d) => `${d.source?.line} ${d.object} ${d.path}`),
    [
      "11 Service shop/web spec.ports[0].protocol",
      "12 Service shop/web spec.ports[0].nodePort",
      "13 Service shop/web spec.ports[1].name",
      "15 Service shop/web spec.ports[1].targetPort",
      "23 Deployment shop/web spec.replicas",
      "33 Deployment shop/web spec.template.spec.containers[0].ports[0].containerPort",
    ],
    show(diagnostics),
  );
  for (const d of errors) {
    assert.equal(d.source?.file, "shop.yaml");
    assert.ok(d.message.length > 0);
  }
  assert.ok(errors.some((d) => d.hint === 'use "TCP"'));
});

test("five different errors give five diagnostics", () => {
  const text = yaml`
    apiVersion: v1
    kind: Pod
    metadata:
      name: Web
      labels:
        app: "web app"
    spec:
      hostNetwork: yes
      containers:
        - name: web
          ports:
            - containerPort: 99999
              protocol: icmp
  `;
  const errors = errorsOf(loadManifestText(text, "p.yaml").diagnostics);
  assert.equal(errors.length, 5, show(errors));
  assert.deepEqual(
    errors.map((d) => d.path),
    [
      "metadata.name",
      "metadata.labels[app]",
      "spec.hostNetwork",
      "spec.containers[0].ports[0].containerPort",
      "spec.containers[0].ports[0].protocol",
    ],
  );
});

test("duplicate objects point at the second with the line of the first", () => {
  const text = yaml`
    apiVersion: v1
    kind: Namespace
    metadata:
      name: shop
    ---
    apiVersion: v1
    kind: Namespace
    metadata:
      name: shop
  `;
  const errors = errorsOf(loadManifestText(text, "ns.yaml").diagnostics);
  assert.equal(errors.length, 1, show(errors));
  assert.equal(errors[0]?.source?.line, 9);
  assert.equal(errors[0]?.path, "metadata.name");
  assert.match(errors[0]?.message ?? "", /duplicate Namespace shop: first declared at ns\.yaml:1/);
});

test("loading never throws on hostile input", () => {
  const inputs = [
    "",
    "---\n---\n",
    "null",
    "42",
    "[1, 2",
    "kind: [Pod]",
    "apiVersion: v1\nkind: Pod\nmetadata: 7\nspec: []\n",
    "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [7, null, {port: {}}], selector: [1]}\n",
    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {replicas: 1e9999, template: 3, selector: {matchExpressions: [1]}}\n",
    "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: a}\nspec: {podSelector: [], ingress: {}, egress: [[]]}\n",
    "apiVersion: podnet.dev/v1alpha1\nkind: Cluster\nmetadata: {name: a}\nspec: {fabric: 1, dns: {forward: [1, {zone: 3}]}, nodeCIDRMaskSize: {ipv4: x}}\n",
    "a: &a [*a]\n",
    '{"kind": "List", "apiVersion": "v1", "items": [1, {"kind": "Pod"}]}',
  ];
  for (const text of inputs) {
    const r = loadManifestText(text, "h.yaml");
    assert.ok(Array.isArray(r.diagnostics));
  }
});
