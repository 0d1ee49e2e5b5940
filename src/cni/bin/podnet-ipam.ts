#!/usr/bin/env node
// The `podnet-ipam` CNI IPAM plugin executable (ipam type "podnet-ipam"), usable by any main plugin.
// No top-level await, so the launcher can load it with require() (synchronous, faster start-up).
import { ipamHandlers } from "../ipam/plugin.js";
import { pluginMain } from "../skel.js";

void pluginMain(ipamHandlers);
