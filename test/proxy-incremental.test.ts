/**
 * ProxyPlanner's incremental transactions in the kernel: a namespace of our own gets the first ruleset,
 * then one transaction per random change (planner.change(...).update, as the node agent applies them);
 * nft must accept every one, and at the end the tables listed from the kernel must equal those of a second
 * namespace loaded with planProxyRules of the final input in one go. No packets: the rules' behaviour is
 * test/proxy.test.ts's; this checks that the incremental path writes the same tables.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { after, test } from "node:test";
import { nftApply, nftJson } from "../src/linux/nft.js";
import { ProxyPlanner, planProxyRules, proxySyncScript } from "../src/proxy/plan.js";
import { random, World } from "../src/proxy/random-world.js";

const PREFIX = `pxi${randomBytes(3).toString("hex")}`;
const STEPS = 60;
const made: string[] = [];
const path = (name: string) => `/run/netns/${name}`;

function netns(name: string): string {
  const r = spawnSync("ip", ["netns", "add", name], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  made.push(name);
  return path(name);
}

after(() => {
  for (const name of made) spawnSync("ip", ["netns", "del", name]);
});

/** The tables as the kernel lists them, without handles, set elements sorted; rules in chain order. */
async function listed(ns: string): Promise<string[]> {
  const out: string[] = [];
  for (const family of ["ip", "ip6"]) {
    const objects = await nftJson(["list", "table", family, "podnet-proxy"], { netns: ns });
    const position = new Map<string, number>();
    for (const o of objects) {
      const strip = (v: unknown): unknown =>
        Array.isArray(v)
          ? v.map(strip)
          : v && typeof v === "object"
            ? Object.fromEntries(
                Object.entries(v)
                  .filter(([k]) => k !== "handle")
                  .map(([k, x]) => [k, strip(x)]),
              )
            : v;
      const plain = strip(o) as Record<string, Record<string, unknown>>;
      const kind = Object.keys(plain)[0] as string;
      const body = plain[kind] as Record<string, unknown>;
      if (Array.isArray(body.elem)) body.elem = body.elem.map((e) => JSON.stringify(e)).sort();
      if (kind === "rule") {
        const chain = `${family} ${body.chain}`;
        const i = position.get(chain) ?? 0;
        position.set(chain, i + 1);
        out.push(`${chain} #${i} ${JSON.stringify(body)}`);
      } else if (kind !== "metainfo") out.push(`${family} ${kind} ${JSON.stringify(body)}`);
    }
  }
  return out.sort();
}

test("incremental transactions, applied one by one in the kernel, give the tables of a fresh plan", async () => {
  const world = new World(random(11));
  for (let i = 0; i < 8; i++) world.services.push(world.newService());
  const planner = new ProxyPlanner();
  const stepwise = netns(`${PREFIX}-a`);
  const first = planner.change(world.input());
  await nftApply(proxySyncScript(first.ruleset), { netns: stepwise });
  let incremental = 0;
  let input = world.input();
  for (let step = 0; step < STEPS; step++) {
    const what = world.mutate();
    input = world.input();
    const change = planner.change(input);
    if (planner.lastPath === "incremental") incremental++;
    const text = change.update?.text ?? "";
    await assert.doesNotReject(async () => {
      if (text) await nftApply(text, { netns: stepwise });
    }, `step ${step} (${what}): nft refused\n${text}`);
  }
  assert.ok(incremental > STEPS / 2, `incremental steps: ${incremental} of ${STEPS}`);
  const fresh = netns(`${PREFIX}-b`);
  await nftApply(proxySyncScript(planProxyRules(input)), { netns: fresh });
  assert.deepEqual(await listed(stepwise), await listed(fresh));
});
