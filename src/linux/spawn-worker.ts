// The worker of spawn-pool.ts: runs one command at a time with posix_spawn, inside the asked namespace.
import { parentPort } from "node:worker_threads";
import { spawnSyncLight, withNetns } from "./netns-native.js";
import type { PoolRequest } from "./spawn-pool.js";

parentPort?.on("message", (m: PoolRequest & { id: number }) => {
  try {
    const run = () =>
      spawnSyncLight(m.command, m.args, { env: m.env, input: m.input, timeoutMs: m.timeoutMs });
    const result = m.netns ? withNetns(m.netns, run) : run();
    parentPort?.postMessage({ id: m.id, result });
  } catch (e) {
    parentPort?.postMessage({
      id: m.id,
      error: { message: (e as Error).message, code: (e as { code?: string }).code },
    });
  }
});
