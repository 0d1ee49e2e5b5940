/**
 * What every tour shares: narration (steps, lines, checks that count), a probe shown as a check, a command
 * run inside a lab namespace, and building then always tearing down a lab. A tour prints only what a probe
 * or a kernel listing just showed; every claim is a check, and the caller gets the failed ones.
 */
import { spawnSync } from "node:child_process";
import type { Source } from "../api/source.js";
import type { Progress } from "./converge.js";
import { listNamespaces } from "./kernel.js";
import { labDown, labUp } from "./lab.js";
import { labPrefix } from "./names.js";
import { type ProbeResult, probe } from "./probe.js";
import { objectsOf, readLabState } from "./store.js";

export interface TourOptions {
  lab: string;
  sources: Source[];
  write: (text: string) => void;
}

export interface TourResult {
  checks: number;
  failed: string[];
}

/** Runs a command inside a lab namespace (`ip netns exec` also mounts the pod's /etc/netns resolv.conf). */
export function inNs(ns: string, cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync("ip", ["netns", "exec", ns, cmd, ...args], { encoding: "utf8", timeout: 10_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ""}${r.stderr ?? ""}`.trim() };
}

export class TourNarrator {
  checks = 0;
  readonly failed: string[] = [];

  constructor(private readonly write: (text: string) => void) {}

  say(text: string): void {
    this.write(`${text}\n`);
  }

  step(title: string): void {
    this.say(`\n── ${title}`);
  }

  readonly progress: Progress = (phase, detail, ms) =>
    this.say(`   ✓ ${phase.padEnd(11)} ${detail} (${ms.toFixed(0)} ms)`);

  expect(what: string, ok: boolean, detail: string): boolean {
    this.checks++;
    if (!ok) this.failed.push(what);
    this.say(`   ${ok ? "✔" : "✘"} ${what}${detail ? `: ${detail}` : ""}`);
    return ok;
  }

  /** A TCP probe from a lab namespace, shown as a check that it connected or was blocked. */
  async probeShow(
    what: string,
    fromNs: string,
    fromLabel: string,
    ip: string,
    port: number,
    want: "connected" | "blocked",
  ): Promise<ProbeResult> {
    const r = await probe({
      fromNetns: `/run/netns/${fromNs}`,
      host: ip,
      port,
      protocol: "TCP",
      // A SYN lost to a busy machine is retried after 1 s: give it that one retry.
      timeoutMs: 2000,
    });
    const seen = r.answer ? `answer "${r.answer}"` : (r.reason ?? "");
    this.expect(
      what,
      r.outcome === want,
      `${fromLabel} → ${ip}:${port} ${r.outcome} in ${r.latencyMs.toFixed(2)} ms${seen ? `, ${seen}` : ""}`,
    );
    return r;
  }

  /** Brings a lab up, runs `body`, and tears the lab down also when `body` threw: a tour leaves nothing. */
  async withLab(
    lab: string,
    sources: Source[],
    body: (up: Awaited<ReturnType<typeof labUp>>) => Promise<void>,
  ): Promise<void> {
    try {
      await body(await labUp({ lab, progress: this.progress }, sources));
    } finally {
      if (readLabState(lab)) {
        this.step("Tear down (podnet lab down)");
        const down = await labDown({ lab });
        const left = listNamespaces(labPrefix(lab));
        this.expect(
          "nothing left behind",
          left.length === 0,
          `${down.namespaces} namespaces deleted, ${left.length} left`,
        );
      }
    }
  }

  summary(): TourResult {
    this.say(
      `\n${this.checks - this.failed.length}/${this.checks} checks passed${this.failed.length ? `; failed: ${this.failed.join("; ")}` : ""}`,
    );
    return { checks: this.checks, failed: this.failed };
  }
}

/** The sources with the fabric of every Cluster (or only of `cluster`) replaced: a tour's variants. */
export function withFabric(sources: Source[], fabric: Record<string, unknown>, cluster?: string): Source[] {
  const objects = objectsOf(sources, []);
  const items = objects.map((o) => {
    const meta = o.value.metadata as { name?: string } | undefined;
    if (o.value.kind !== "Cluster" || (cluster !== undefined && meta?.name !== cluster)) return o.value;
    const v = structuredClone(o.value) as { spec?: Record<string, unknown> };
    v.spec = { ...(v.spec ?? {}), fabric };
    return v;
  });
  return [
    {
      file: `${sources[0]?.file ?? "tour"} (${cluster ? `${cluster}: ` : ""}fabric ${String(fabric.mode)})`,
      text: JSON.stringify({ apiVersion: "v1", kind: "List", items }),
    },
  ];
}
