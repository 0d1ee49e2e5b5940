/**
 * Cached results, one file per attachment (network name, container ID, interface name), in libcni's
 * format and place: `<cacheDir>/results/<network>-<containerID>-<ifname>`, a JSON object of kind
 * `cniCacheV1` with the configuration used (base64, as Go encodes bytes), the netns, CNI_ARGS, the
 * capability arguments and the ADD result. cnitool, containerd and CRI-O read the same files.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { NetworkConfigList, Result } from "../spec.js";

export const DEFAULT_CACHE_DIR = "/var/lib/cni";
const KIND = "cniCacheV1";

/** One cached attachment, decoded. */
export interface CachedAttachment {
  network: string;
  containerID: string;
  ifname: string;
  netns?: string;
  args?: Record<string, string>;
  capabilityArgs?: Record<string, unknown>;
  /** The configuration the attachment was made with (undefined when the cached bytes are not JSON). */
  config?: NetworkConfigList;
  result?: Result;
  /** The cache file. */
  file: string;
}

/** libcni's on-disk shape. */
interface CacheFile {
  kind: string;
  containerId: string;
  config: string;
  ifName: string;
  networkName: string;
  netns?: string;
  cniArgs?: [string, string][];
  capabilityArgs?: Record<string, unknown>;
  result?: Result;
}

export class ResultCache {
  constructor(readonly dir: string = DEFAULT_CACHE_DIR) {}

  get resultsDir(): string {
    return join(this.dir, "results");
  }

  file(network: string, containerID: string, ifname: string): string {
    return join(this.resultsDir, `${network}-${containerID}-${ifname}`);
  }

  /** The cached attachment, or undefined when there is none (or the file is not a libcni cache entry). */
  get(network: string, containerID: string, ifname: string): CachedAttachment | undefined {
    return this.read(this.file(network, containerID, ifname));
  }

  put(
    entry: Omit<CachedAttachment, "file" | "config" | "result"> & {
      config: NetworkConfigList;
      result: Result;
    },
  ): string {
    const data: CacheFile = {
      kind: KIND,
      containerId: entry.containerID,
      config: Buffer.from(JSON.stringify(entry.config)).toString("base64"),
      ifName: entry.ifname,
      networkName: entry.network,
      ...(entry.netns ? { netns: entry.netns } : {}),
      ...(entry.args && Object.keys(entry.args).length > 0 ? { cniArgs: Object.entries(entry.args) } : {}),
      ...(entry.capabilityArgs && Object.keys(entry.capabilityArgs).length > 0
        ? { capabilityArgs: entry.capabilityArgs }
        : {}),
      result: entry.result,
    };
    const file = this.file(entry.network, entry.containerID, entry.ifname);
    mkdirSync(this.resultsDir, { recursive: true, mode: 0o700 });
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(data), { mode: 0o600 });
    renameSync(tmp, file);
    return file;
  }

  delete(network: string, containerID: string, ifname: string): void {
    rmSync(this.file(network, containerID, ifname), { force: true });
  }

  /** Every cached attachment (of one network when given), sorted by file name. */
  list(network?: string): CachedAttachment[] {
    let names: string[];
    try {
      names = readdirSync(this.resultsDir).sort();
    } catch {
      return [];
    }
    const out: CachedAttachment[] = [];
    for (const name of names) {
      if (network !== undefined && !name.startsWith(`${network}-`)) continue;
      const entry = this.read(join(this.resultsDir, name));
      if (entry && (network === undefined || entry.network === network)) out.push(entry);
    }
    return out;
  }

  private read(file: string): CachedAttachment | undefined {
    let data: CacheFile;
    try {
      data = JSON.parse(readFileSync(file, "utf8")) as CacheFile;
    } catch {
      return undefined;
    }
    if (data?.kind !== KIND || !data.networkName || !data.containerId || !data.ifName) return undefined;
    let config: NetworkConfigList | undefined;
    try {
      config = JSON.parse(Buffer.from(data.config ?? "", "base64").toString("utf8")) as NetworkConfigList;
    } catch {}
    return {
      network: data.networkName,
      containerID: data.containerId,
      ifname: data.ifName,
      ...(data.netns ? { netns: data.netns } : {}),
      ...(data.cniArgs ? { args: Object.fromEntries(data.cniArgs) } : {}),
      ...(data.capabilityArgs ? { capabilityArgs: data.capabilityArgs } : {}),
      ...(config ? { config } : {}),
      ...(data.result ? { result: data.result } : {}),
      file,
    };
  }
}
