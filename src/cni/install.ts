// Installs podnet's CNI plugins into a CNI bin directory, as a runtime expects them: executables named
// `podnet` and `podnet-ipam`. Each is a two-line launcher that runs the plugin's bundle
// (dist/plugins/NAME.cjs, made by `npm run build` with esbuild: one file loads much faster than the
// ~20 modules behind it, and start-up is most of a CNI call). `podnet cni install --dir DIR` calls this.
import { chmodSync, existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const PLUGIN_NAMES = ["podnet", "podnet-ipam"] as const;
export type PluginName = (typeof PLUGIN_NAMES)[number];

/** Absolute path of a plugin's bundle (dist/plugins/NAME.cjs). */
export function pluginBundlePath(name: PluginName): string {
  return fileURLToPath(new URL(`../../plugins/${name}.cjs`, import.meta.url));
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The launcher: the Node binary that runs podnet now, and the bundle, by absolute path. */
export function launcherScript(name: PluginName): string {
  return [
    "#!/bin/sh",
    `# podnet CNI plugin "${name}", installed by \`podnet cni install\`; run \`npm run build\` to update it.`,
    `exec ${shellQuote(process.execPath)} ${shellQuote(pluginBundlePath(name))} "$@"`,
    "",
  ].join("\n");
}

/**
 * Writes executable launchers `podnet` and `podnet-ipam` into `dir` (created when missing), replacing
 * existing files atomically. Returns their paths. Throws when the plugins are not built.
 */
export function installPlugins(dir: string): string[] {
  for (const name of PLUGIN_NAMES) {
    const bundle = pluginBundlePath(name);
    if (!existsSync(bundle)) throw new Error(`${bundle} does not exist; build podnet first (npm run build)`);
  }
  mkdirSync(dir, { recursive: true });
  return PLUGIN_NAMES.map((name) => {
    const target = join(dir, name);
    const temp = join(dir, `.${name}.tmp-${process.pid}`);
    writeFileSync(temp, launcherScript(name), { mode: 0o755 });
    chmodSync(temp, 0o755);
    renameSync(temp, target);
    return target;
  });
}
