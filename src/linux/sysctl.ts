// sysctl through /proc/sys, which shows the values of the calling process's network namespace.
import { readFileSync, writeFileSync } from "node:fs";
import { inContextNetns } from "./netns-context.js";

function path(key: string): string {
  return `/proc/sys/${key.replaceAll(".", "/")}`;
}

export function readSysctl(key: string): string {
  return inContextNetns(() => readFileSync(path(key), "utf8").trim());
}

/** Writes `value` unless it is already set; returns true when it wrote. */
export function ensureSysctl(key: string, value: string): boolean {
  if (readSysctl(key) === value) return false;
  inContextNetns(() => writeFileSync(path(key), value));
  return true;
}
