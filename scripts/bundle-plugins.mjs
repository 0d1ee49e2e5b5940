// Bundles each CNI plugin (dist/src/cni/bin/NAME.js and everything it imports, packages included) into
// one CommonJS file, dist/plugins/NAME.cjs. A CNI plugin is a new process per call and Node
// spends more time loading ~20 modules than running the plugin: one file starts much sooner.
// Runs after tsc as part of `npm run build`; `podnet cni install` copies these files.
import { chmodSync, mkdirSync } from "node:fs";
import { build } from "esbuild";

mkdirSync("dist/plugins", { recursive: true });
for (const name of ["podnet", "podnet-ipam"]) {
  const outfile = `dist/plugins/${name}.cjs`;
  await build({
    entryPoints: [`dist/src/cni/bin/${name}.js`],
    outfile,
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    // import.meta.url is the bundle's own URL (src/linux/netlink.ts finds its addon next to it).
    banner: { js: '"use strict"; const __bundleUrl = require("node:url").pathToFileURL(__filename).href;' },
    define: { "import.meta.url": "__bundleUrl" },
    logLevel: "warning",
  });
  chmodSync(outfile, 0o755);
}
