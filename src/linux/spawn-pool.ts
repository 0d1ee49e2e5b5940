/**
 * A few worker threads that run short commands with posix_spawn (netns-native.ts's spawnSyncLight),
 * each blocking in its own thread: the main thread stays free, commands run in parallel, and no call
 * pays for Node forking a big process. Each worker enters the asked namespace for the spawn only (the
 * namespace of a thread is its own). Used by the lab's node agent for the ip/nft commands of CNI calls.
 */
import { Worker } from "node:worker_threads";
import type { SpawnRequest } from "./exec.js";
import type { LightSpawnResult } from "./netns-native.js";

export type PoolRequest = SpawnRequest;

type Reply = { id: number; result?: LightSpawnResult; error?: { message: string; code?: string } };

export class SpawnPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<
    number,
    { resolve: (r: LightSpawnResult) => void; reject: (e: Error) => void }
  >();
  private readonly load: number[] = [];
  private nextId = 1;

  constructor(size = 2) {
    const script = new URL("./spawn-worker.js", import.meta.url);
    for (let i = 0; i < size; i++) {
      const w = new Worker(script);
      w.unref();
      w.on("message", (m: Reply) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        this.load[i] = (this.load[i] ?? 1) - 1;
        if (m.result) p.resolve(m.result);
        else p.reject(Object.assign(new Error(m.error?.message ?? "spawn failed"), { code: m.error?.code }));
      });
      this.workers.push(w);
      this.load.push(0);
    }
  }

  run(request: PoolRequest): Promise<LightSpawnResult> {
    // The least busy worker: a slow command does not hold up the others' queue.
    let best = 0;
    for (let i = 1; i < this.workers.length; i++) if ((this.load[i] ?? 0) < (this.load[best] ?? 0)) best = i;
    this.load[best] = (this.load[best] ?? 0) + 1;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const env = request.env
        ? Object.fromEntries(Object.entries(request.env).filter(([, v]) => v !== undefined))
        : undefined;
      this.workers[best]?.postMessage({ id, ...request, args: [...request.args], env });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
