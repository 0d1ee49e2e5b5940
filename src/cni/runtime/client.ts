/**
 * The runtime client: runs a network configuration list's plugin chain for an attachment as the spec
 * (1.1.0) and libcni do. ADD in order passing each result on as prevResult, cached per attachment; a
 * failed ADD is undone (DEL of the plugins that ran, best effort); DEL in reverse order with the cached
 * result; CHECK (>= 0.4.0, unless disableCheck) with the cached result; STATUS (>= 1.1.0); GC (unless
 * disableGC): DEL of cached attachments not in the valid set, then the GC verb (>= 1.1.0).
 */
import { CniError, ErrorCode, type NetworkConfigList, type Result, SUPPORTED_VERSIONS } from "../spec.js";
import { type CachedAttachment, DEFAULT_CACHE_DIR, ResultCache } from "./cache.js";
import { validateConfList } from "./conflist.js";
import { GcError, PluginError } from "./errors.js";
import {
  buildPluginConfig,
  formatCniArgs,
  type InvokeOptions,
  invokePlugin,
  parseAddOutput,
} from "./invoke.js";
import { atLeast, selectVersion } from "./negotiate.js";
import { convertResult } from "./result.js";

export interface CniRuntimeOptions extends InvokeOptions {
  /** Where results are cached (`<cacheDir>/results/...`). Default /var/lib/cni, as libcni. */
  cacheDir?: string;
  /** Versions this runtime speaks (default: all of SUPPORTED_VERSIONS). */
  supportedVersions?: readonly string[];
}

/** One attachment of a container to a network: the key (network, containerID, ifname) and its inputs. */
export interface Attachment {
  containerID: string;
  /** Path of the container's network namespace. Required for ADD and CHECK; DEL works without it. */
  netns?: string;
  /** Name of the interface inside the container, e.g. eth0. */
  ifname: string;
  /** CNI_ARGS as key/value pairs. When given, IgnoreUnknown=1 is added (unless set), as kubelet and
   * containerd do, so plugins ignore the keys they do not know. */
  args?: Record<string, string>;
  /** Capability arguments (portMappings, bandwidth, ips, mac, ...); each plugin gets those it enables. */
  capabilityArgs?: Record<string, unknown>;
}

export interface ValidAttachment {
  containerID: string;
  ifname: string;
}

/** What CHECK or STATUS did: `performed` false with the reason when the spec says not to call it. */
export interface Outcome {
  performed: boolean;
  skipped?: string;
}

export interface GcReport {
  /** Cached attachments that were not in the valid set and were deleted. */
  deleted: ValidAttachment[];
  /** Whether the GC verb was sent to the plugins (1.1.0 and later). */
  pluginsCollected: boolean;
  /** Set when nothing was done (disableGC). */
  skipped?: string;
}

const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export class CniRuntime {
  readonly cache: ResultCache;
  readonly supportedVersions: readonly string[];
  private readonly invokeOptions: InvokeOptions;
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(options: CniRuntimeOptions) {
    const { cacheDir, supportedVersions, ...invokeOptions } = options;
    this.cache = new ResultCache(cacheDir ?? DEFAULT_CACHE_DIR);
    this.supportedVersions = supportedVersions ?? SUPPORTED_VERSIONS;
    this.invokeOptions = invokeOptions;
  }

  /** The version this runtime uses for the list (highest of cniVersions it supports, else cniVersion). */
  version(list: NetworkConfigList): string {
    return selectVersion(list, this.supportedVersions);
  }

  /** ADD: runs the chain in order, each plugin getting the previous result; caches and returns the last. */
  async add(listIn: NetworkConfigList, att: Attachment): Promise<Result> {
    const list = validateConfList(listIn);
    const version = this.version(list);
    checkAttachment(att, "ADD");
    return this.locked(list.name, att, async () => {
      let result: Result | undefined;
      for (let i = 0; i < list.plugins.length; i++) {
        const plugin = list.plugins[i]?.type ?? "";
        try {
          const config = buildPluginConfig(list, i, version, {
            ...(result ? { prevResult: result } : {}),
            ...(att.capabilityArgs ? { capabilityArgs: att.capabilityArgs } : {}),
          });
          const stdout = await invokePlugin(
            { command: "ADD", plugin, config, ...this.params(att) },
            this.invokeOptions,
          );
          result = parseAddOutput(stdout, plugin, version);
        } catch (error) {
          // A plugin the runtime could not run changed nothing: DEL from the one before it.
          const ran = !(
            error instanceof PluginError &&
            error.origin === "runtime" &&
            error.code === ErrorCode.InvalidEnvironment
          );
          let cleanupErrors = await this.undoAdd(list, version, att, ran ? i : i - 1, result);
          // The failed plugin refusing the version again on DEL is no news.
          if (error instanceof PluginError && error.code === ErrorCode.IncompatibleVersion)
            cleanupErrors = cleanupErrors.filter(
              (e) =>
                !(
                  e instanceof PluginError &&
                  e.plugin === plugin &&
                  e.code === ErrorCode.IncompatibleVersion
                ),
            );
          if (error instanceof PluginError) error.cleanupErrors = cleanupErrors;
          throw error;
        }
      }
      if (!result) throw new CniError(ErrorCode.InvalidConfig, `network "${list.name}" has no plugins`);
      try {
        this.cache.put({
          network: list.name,
          containerID: att.containerID,
          ifname: att.ifname,
          ...(att.netns ? { netns: att.netns } : {}),
          ...(att.args ? { args: att.args } : {}),
          ...(att.capabilityArgs ? { capabilityArgs: att.capabilityArgs } : {}),
          config: list,
          result,
        });
      } catch (cause) {
        await this.undoAdd(list, version, att, list.plugins.length - 1, result);
        throw new CniError(
          ErrorCode.IoFailure,
          `cannot cache the result in ${this.cache.resultsDir}: ${(cause as Error).message} (the ADD was undone)`,
          "fix: make the cache directory writable or choose another (--cache-dir)",
        );
      }
      return result;
    });
  }

  /** DEL: runs the chain in reverse with the cached result as prevResult (>= 0.4.0), then forgets it.
   * Missing args/capabilityArgs are taken from the cache. Idempotent: a second DEL succeeds. */
  async del(listIn: NetworkConfigList, att: Attachment): Promise<void> {
    const list = validateConfList(listIn);
    const version = this.version(list);
    checkAttachment(att, "DEL");
    await this.locked(list.name, att, async () => {
      const cached = this.cache.get(list.name, att.containerID, att.ifname);
      const prevResult = atLeast(version, "0.4.0") ? cached?.result : undefined;
      const merged: Attachment = {
        ...att,
        ...(att.args === undefined && cached?.args ? { args: cached.args } : {}),
        ...(att.capabilityArgs === undefined && cached?.capabilityArgs
          ? { capabilityArgs: cached.capabilityArgs }
          : {}),
      };
      for (let i = list.plugins.length - 1; i >= 0; i--)
        await this.delOne(list, version, merged, i, prevResult);
      this.cache.delete(list.name, att.containerID, att.ifname);
    });
  }

  /** CHECK: each plugin in order with the cached ADD result; throws the first failure. Not called for
   * versions before 0.4.0 (an error) or when the list sets disableCheck (skipped). */
  async check(listIn: NetworkConfigList, att: Attachment): Promise<Outcome> {
    const list = validateConfList(listIn);
    const version = this.version(list);
    if (!atLeast(version, "0.4.0"))
      throw new CniError(
        ErrorCode.IncompatibleVersion,
        `network "${list.name}" uses version ${version}, which has no CHECK (0.4.0 and later)`,
        'fix: set "cniVersion" to 0.4.0 or later if all its plugins support it',
      );
    if (list.disableCheck) return { performed: false, skipped: "disableCheck is set" };
    checkAttachment(att, "CHECK");
    return this.locked(list.name, att, async () => {
      const cached = this.cache.get(list.name, att.containerID, att.ifname);
      if (!cached?.result)
        throw new CniError(
          ErrorCode.UnknownContainer,
          `no cached ADD result for network "${list.name}", container ${att.containerID}, interface ${att.ifname}`,
          `fix: CHECK only attachments ADDed through this runtime with the same cache directory (${this.cache.dir})`,
        );
      const merged: Attachment = {
        ...att,
        ...(att.args === undefined && cached.args ? { args: cached.args } : {}),
        ...(att.capabilityArgs === undefined && cached.capabilityArgs
          ? { capabilityArgs: cached.capabilityArgs }
          : {}),
      };
      for (let i = 0; i < list.plugins.length; i++) {
        const plugin = list.plugins[i]?.type ?? "";
        const config = buildPluginConfig(list, i, version, {
          prevResult: cached.result as Result,
          ...(merged.capabilityArgs ? { capabilityArgs: merged.capabilityArgs } : {}),
        });
        await invokePlugin({ command: "CHECK", plugin, config, ...this.params(merged) }, this.invokeOptions);
      }
      return { performed: true };
    });
  }

  /** STATUS (1.1.0 and later): asks each plugin in order whether it can ADD; throws the first failure
   * (code 50: not available; 51: not available and existing containers may be affected). */
  async status(listIn: NetworkConfigList): Promise<Outcome> {
    const list = validateConfList(listIn);
    const version = this.version(list);
    if (!atLeast(version, "1.1.0"))
      return { performed: false, skipped: `version ${version} has no STATUS (1.1.0 and later)` };
    for (let i = 0; i < list.plugins.length; i++) {
      const plugin = list.plugins[i]?.type ?? "";
      const config = buildPluginConfig(list, i, version);
      await invokePlugin({ command: "STATUS", plugin, config }, this.invokeOptions);
    }
    return { performed: true };
  }

  /**
   * GC, as libcni: unless the list sets disableGC, DEL every cached attachment of this network that is
   * not in `valid` (with its cached netns and arguments), then (1.1.0 and later) send GC with
   * `cni.dev/valid-attachments` to every plugin. All errors are collected and thrown together (GcError).
   */
  async gc(listIn: NetworkConfigList, valid: readonly ValidAttachment[]): Promise<GcReport> {
    const list = validateConfList(listIn);
    const version = this.version(list);
    if (list.disableGC) return { deleted: [], pluginsCollected: false, skipped: "disableGC is set" };
    const keep = new Set(valid.map((a) => `${a.containerID}\0${a.ifname}`));
    const errors: Error[] = [];
    const deleted: ValidAttachment[] = [];
    for (const stale of this.cache.list(list.name)) {
      if (keep.has(`${stale.containerID}\0${stale.ifname}`)) continue;
      try {
        await this.del(list, {
          containerID: stale.containerID,
          ifname: stale.ifname,
          ...(stale.netns ? { netns: stale.netns } : {}),
          ...(stale.args ? { args: stale.args } : {}),
          ...(stale.capabilityArgs ? { capabilityArgs: stale.capabilityArgs } : {}),
        });
        deleted.push({ containerID: stale.containerID, ifname: stale.ifname });
      } catch (error) {
        errors.push(
          prefixed(error as Error, `deleting stale attachment ${stale.containerID}/${stale.ifname}: `),
        );
      }
    }
    const pluginsCollected = atLeast(version, "1.1.0");
    if (pluginsCollected) {
      const validAttachments = valid.map((a) => ({ containerID: a.containerID, ifname: a.ifname }));
      for (let i = 0; i < list.plugins.length; i++) {
        const plugin = list.plugins[i]?.type ?? "";
        const config = buildPluginConfig(list, i, version, { validAttachments });
        try {
          await invokePlugin({ command: "GC", plugin, config }, this.invokeOptions);
        } catch (error) {
          errors.push(error as Error);
        }
      }
    }
    const report = { deleted, pluginsCollected };
    if (errors.length > 0) throw new GcError(errors, report);
    return report;
  }

  /** The cached ADD result of an attachment (as the list's version), if any. */
  cachedResult(list: NetworkConfigList, att: Pick<Attachment, "containerID" | "ifname">): Result | undefined {
    const cached = this.cache.get(list.name, att.containerID, att.ifname)?.result;
    return cached ? convertResult(cached, this.version(list)) : undefined;
  }

  /** Cached attachments (of one network when given). */
  cachedAttachments(network?: string): CachedAttachment[] {
    return this.cache.list(network);
  }

  /** VERSION of a plugin: the versions it supports. */
  async versionInfo(pluginType: string): Promise<{ cniVersion: string; supportedVersions: string[] }> {
    const stdout = await invokePlugin(
      { command: "VERSION", plugin: pluginType, config: { cniVersion: this.supportedVersions.at(-1) } },
      this.invokeOptions,
    );
    try {
      return JSON.parse(stdout) as { cniVersion: string; supportedVersions: string[] };
    } catch {
      throw new PluginError(
        ErrorCode.DecodeFailure,
        "VERSION printed no JSON",
        undefined,
        pluginType,
        "VERSION",
        "runtime",
      );
    }
  }

  private params(att: Attachment) {
    // As kubelet and containerd do: plugins that do not know an argument ignore it instead of failing.
    const given = att.args && Object.keys(att.args).length > 0 ? att.args : undefined;
    const args = formatCniArgs(
      given && !("IgnoreUnknown" in given) ? { IgnoreUnknown: "1", ...given } : given,
    );
    return {
      containerID: att.containerID,
      ifname: att.ifname,
      ...(att.netns ? { netns: att.netns } : {}),
      ...(args ? { args } : {}),
    };
  }

  private async delOne(
    list: NetworkConfigList,
    version: string,
    att: Attachment,
    index: number,
    prevResult: Result | undefined,
  ): Promise<void> {
    const plugin = list.plugins[index]?.type ?? "";
    const config = buildPluginConfig(list, index, version, {
      ...(prevResult ? { prevResult } : {}),
      ...(att.capabilityArgs ? { capabilityArgs: att.capabilityArgs } : {}),
    });
    await invokePlugin({ command: "DEL", plugin, config, ...this.params(att) }, this.invokeOptions);
  }

  /** After a failed ADD at plugin `failed`: DEL plugins failed..0 (best effort), forget any cached result. */
  private async undoAdd(
    list: NetworkConfigList,
    version: string,
    att: Attachment,
    failed: number,
    partial: Result | undefined,
  ): Promise<Error[]> {
    const errors: Error[] = [];
    const prevResult = atLeast(version, "0.4.0") ? partial : undefined;
    for (let i = failed; i >= 0; i--) {
      try {
        await this.delOne(list, version, att, i, prevResult);
      } catch (error) {
        errors.push(error as Error);
      }
    }
    this.cache.delete(list.name, att.containerID, att.ifname);
    return errors;
  }

  /** Operations on one attachment never overlap (the spec forbids parallel calls for a container). */
  private async locked<T>(network: string, att: Attachment, fn: () => Promise<T>): Promise<T> {
    const key = `${network}\0${att.containerID}\0${att.ifname}`;
    const previous = this.locks.get(key) ?? Promise.resolve();
    const run = previous.catch(() => {}).then(fn);
    const tail = run.catch(() => {});
    this.locks.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }
}

function prefixed(error: Error, prefix: string): Error {
  error.message = prefix + error.message;
  return error;
}

/** The attachment's parameters become CNI_* variables: invalid ones are code 4 errors. */
export function checkAttachment(att: Attachment, command: "ADD" | "DEL" | "CHECK"): void {
  const bad = (what: string, fix: string) => {
    throw new CniError(ErrorCode.InvalidEnvironment, what, `fix: ${fix}`);
  };
  if (typeof att.containerID !== "string" || !CONTAINER_ID.test(att.containerID))
    bad(
      `invalid container ID ${JSON.stringify(att.containerID)}`,
      "use letters, digits, '_', '.' and '-', starting with a letter or digit",
    );
  const ifname = att.ifname;
  if (
    typeof ifname !== "string" ||
    ifname === "" ||
    ifname === "." ||
    ifname === ".." ||
    Buffer.byteLength(ifname) > 15 ||
    /[/:\s]/.test(ifname)
  )
    bad(
      `invalid interface name ${JSON.stringify(ifname)}`,
      "use at most 15 bytes without '/', ':' or spaces, e.g. eth0",
    );
  if (command !== "DEL" && !att.netns)
    bad(`${command} needs the container's network namespace path`, "pass netns, e.g. /run/netns/pod-1");
  for (const [k, v] of Object.entries(att.args ?? {}))
    if (!/^[A-Za-z0-9_.-]+$/.test(k) || typeof v !== "string" || v.includes(";"))
      bad(
        `invalid CNI_ARGS pair ${JSON.stringify(`${k}=${v}`)}`,
        "keys are letters, digits, '_', '.', '-'; values have no ';'",
      );
}
