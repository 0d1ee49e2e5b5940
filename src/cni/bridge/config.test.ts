import assert from "node:assert/strict";
import { test } from "node:test";
import type { CniError, PluginConfig } from "../spec.js";
import { parseBridgeConfig } from "./config.js";

const base = {
  cniVersion: "1.1.0",
  name: "pods",
  type: "podnet",
  ipam: { type: "podnet-ipam" },
} as PluginConfig;

test("defaults", () => {
  assert.deepEqual(parseBridgeConfig(base), {
    network: "pods",
    bridge: "cbr0",
    mtu: 1500,
    hairpinMode: true,
    ipMasq: false,
    isGateway: true,
    isDefaultGateway: true,
    ipam: { type: "podnet-ipam" },
  });
});

test("isGateway false turns the default route off unless it is asked for", () => {
  const c = parseBridgeConfig({ ...base, isGateway: false });
  assert.equal(c.isDefaultGateway, false);
  assert.throws(
    () => parseBridgeConfig({ ...base, isGateway: false, isDefaultGateway: true }),
    (e: CniError) => e.code === 7 && /set isGateway to true/.test(e.msg),
  );
});

test("errors name the field and the fix", () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [
      { mtu: "1500" },
      /mtu must be a whole number from 68 to 65535, got "1500" \(write 1500 without quotes\)/,
    ],
    [{ mtu: 10 }, /mtu must be a whole number/],
    [
      { bridge: "a-bridge-name-too-long" },
      /bridge "a-bridge-name-too-long" is not a valid interface name: it is 22 bytes long/,
    ],
    [{ ipMasq: "true" }, /ipMasq must be true or false, got "true" \(write true without quotes\)/],
    [{ ipam: undefined }, /ipam is required/],
    [{ ipam: { type: "../x" } }, /ipam\.type must name an IPAM plugin executable/],
    [{ dns: { nameservers: "10.0.0.1" } }, /dns\.nameservers: expected a list of strings/],
  ];
  for (const [over, pattern] of bad) {
    assert.throws(
      () => parseBridgeConfig({ ...base, ...over } as PluginConfig),
      (e: CniError) => e.code === 7 && pattern.test(e.msg),
      JSON.stringify(over),
    );
  }
});
