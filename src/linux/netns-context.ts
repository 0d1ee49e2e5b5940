// The network namespace a piece of async work runs "in", for processes that serve several namespaces at
// once (the lab agent answers the CNI calls of every node). Node cannot change the namespace of a whole
// process, but a switcher (netns-native.ts: setns on the main thread, synchronously) can run one
// synchronous step — starting a child process, reading a /proc/sys file — inside another namespace.
// exec.ts and sysctl.ts wrap those steps in `inContextNetns`, so plugin code runs unchanged: outside a
// context (the plugin executables, the CLI) it does exactly what it did before.
import { AsyncLocalStorage } from "node:async_hooks";

export type NetnsSwitcher = <T>(netnsPath: string, fn: () => T) => T;

const context = new AsyncLocalStorage<string>();
let switcher: NetnsSwitcher | undefined;

/** Installs the switcher (once, by a process that loaded the native addon). */
export function useNetnsSwitcher(fn: NetnsSwitcher): void {
  switcher = fn;
}

/** Runs `fn` (and everything async it starts) with `netnsPath` as its namespace. */
export function runInNetnsContext<T>(netnsPath: string, fn: () => T): T {
  if (!switcher) throw new Error("runInNetnsContext: no namespace switcher installed (useNetnsSwitcher)");
  return context.run(netnsPath, fn);
}

/** The namespace of the current context, if any. */
export function contextNetns(): string | undefined {
  return context.getStore();
}

/** Runs the synchronous step `fn` inside the current context's namespace (or here, outside a context). */
export function inContextNetns<T>(fn: () => T): T {
  const netns = context.getStore();
  return netns !== undefined && switcher ? switcher(netns, fn) : fn();
}

/** Whether a switcher is installed (then a command can start directly inside any namespace). */
export function hasNetnsSwitcher(): boolean {
  return switcher !== undefined;
}

/**
 * Runs the synchronous step `fn` inside `netnsPath` when given (the switcher must be installed), else in
 * the current context's namespace. Starting `ip` this way costs no `ip -n` (which copies the mount table:
 * ~13 ms a call with 1,000 namespaces here) and no nsenter.
 */
export function inNetns<T>(netnsPath: string | undefined, fn: () => T): T {
  if (netnsPath === undefined) return inContextNetns(fn);
  if (!switcher) throw new Error("inNetns: no namespace switcher installed (useNetnsSwitcher)");
  return switcher(netnsPath, fn);
}
