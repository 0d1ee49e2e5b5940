/** The CNI runtime client: load a network configuration, run its plugin chain for attachments. */
export { type CachedAttachment, DEFAULT_CACHE_DIR, ResultCache } from "./cache.js";
export {
  type Attachment,
  CniRuntime,
  type CniRuntimeOptions,
  checkAttachment,
  type GcReport,
  type Outcome,
  type ValidAttachment,
} from "./client.js";
export { loadConfList, NETWORK_NAME, parseConfList, validateConfList } from "./conflist.js";
export { ConfigError, GcError, PluginError, type PluginErrorOrigin } from "./errors.js";
export {
  buildPluginConfig,
  defaultExecPlugin,
  type ExecOutput,
  type ExecPlugin,
  type ExecRequest,
  findPlugin,
  formatCniArgs,
  type InvokeEvent,
  type InvokeOptions,
  inNetns,
  invokePlugin,
} from "./invoke.js";
export { atLeast, selectVersion } from "./negotiate.js";
export { convertResult } from "./result.js";
