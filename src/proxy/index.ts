/** The service proxy (kube-proxy's job) as pure planners: endpoints, the nftables tables of a node, updates. */
export {
  conntrackDeleteArgs,
  type ProxyUpdate,
  type ProxyUpdateSummary,
  planFragmentUpdate,
  planProxyUpdate,
  type StaleUdpFlow,
} from "./diff.js";
export {
  deriveEndpoints,
  deriveHostPorts,
  type HostPortMapping,
  type ProxyEndpoint,
  type ServiceEndpoints,
  servicePortKey,
} from "./endpoints.js";
export type { NftChain, NftElement, NftSet, NftTable } from "./nft-model.js";
export {
  clusterEndpoints,
  describeProxyRuleset,
  type EntryKind,
  MASQUERADE_MARK,
  PROXY_TABLE,
  type ProxyChange,
  type ProxyEntry,
  type ProxyInput,
  ProxyPlanner,
  type ProxyRuleset,
  planProxyRules,
  proxyInputFor,
  proxySyncScript,
} from "./plan.js";
