#!/usr/bin/env node
// The `podnet` CNI plugin executable (type "podnet"): bridge + veth + addresses + routes (+ masquerade).
// No top-level await, so the launcher can load it with require() (synchronous, faster start-up).
import { podnetHandlers } from "../bridge/plugin.js";
import { pluginMain } from "../skel.js";

void pluginMain(podnetHandlers);
