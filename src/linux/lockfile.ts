// A mutual-exclusion lock between processes: a file created with O_CREAT|O_EXCL that holds the owner's
// PID. A lock whose owner no longer exists (killed) is broken by the next process that wants it.
import { closeSync, mkdirSync, openSync, readFileSync, rmdirSync, unlinkSync, writeSync } from "node:fs";
import { dirname } from "node:path";

export class LockTimeoutError extends Error {
  constructor(
    readonly path: string,
    readonly holder: number | undefined,
    waitedMs: number,
  ) {
    super(`lock ${path} is held${holder ? ` by process ${holder}` : ""}; gave up after ${waitedMs} ms`);
    this.name = "LockTimeoutError";
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function tryAcquire(path: string): boolean {
  try {
    const fd = openSync(path, "wx", 0o644);
    try {
      writeSync(fd, String(process.pid));
    } finally {
      closeSync(fd);
    }
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    if ((e as NodeJS.ErrnoException).code === "ENOENT") {
      mkdirSync(dirname(path), { recursive: true });
      return tryAcquire(path);
    }
    throw e;
  }
}

function holderOf(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Runs `fn` while holding the lock at `path` (created, with its directory, as needed). */
export async function withLock<T>(path: string, fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const started = Date.now();
  let delay = 1;
  for (;;) {
    if (tryAcquire(path)) break;
    const holder = holderOf(path);
    if (holder !== undefined && !alive(holder)) {
      // The owner was killed while holding the lock. Only remove the file if it still names that owner.
      if (holderOf(path) === holder) {
        try {
          unlinkSync(path);
        } catch {
          // Someone else broke it first.
        }
      }
      continue;
    }
    const waited = Date.now() - started;
    if (waited > timeoutMs) throw new LockTimeoutError(path, holder, waited);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 20);
  }
  try {
    return await fn();
  } finally {
    try {
      unlinkSync(path);
    } catch {
      // Already removed.
    }
    // Leave nothing behind: the directory goes with its last lock (it is not empty while others hold
    // locks; one that races with this recreates it in tryAcquire).
    try {
      rmdirSync(dirname(path));
    } catch {
      // Not empty, or already gone.
    }
  }
}
