// Installs podnet's CNI plugins into a CNI bin directory, as a runtime expects them: executables named
// `podnet` and `podnet-ipam`. Each is a two-line launcher that runs the plugin's bundle
// (dist/plugins/NAME.cjs, made by `npm run build` with esbuild: one file loads much faster than the
// ~20 modules behind it, and start-up is most of a CNI call). `podnet cni install --dir DIR` calls this.
import { chmodSync, existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CNI_SERVER_SOCKET } from "./spec.js";

export const PLUGIN_NAMES = ["podnet", "podnet-ipam"] as const;
export type PluginName = (typeof PLUGIN_NAMES)[number];

/** Absolute path of a plugin's bundle (dist/plugins/NAME.cjs). */
export function pluginBundlePath(name: PluginName): string {
  return fileURLToPath(new URL(`../../plugins/${name}.cjs`, import.meta.url));
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The launcher. Fast path: this network namespace's podnet CNI server (`podnet cni serve`, see
 * server.ts), reached through socat on its abstract socket. Otherwise (no server, no socat) it runs the
 * plugin itself: the Node binary that runs podnet now, with the bundle, by absolute path.
 */
export function launcherScript(name: PluginName): string {
  const node = `${shellQuote(process.execPath)} ${shellQuote(pluginBundlePath(name))}`;
  return `#!/bin/sh
# podnet CNI plugin "${name}", installed by \`podnet cni install\`; run \`npm run build\` to update it.
nl='
'
input=$(cat; printf x)
input=\${input%x}
if command -v socat >/dev/null 2>&1; then
  # Node listens on the full-length abstract address (sun_path padded with NULs): unix-tightsocklen=0.
  # The CNI variables that are set, with shell builtins only (every process started here costs time).
  reply=$( { printf 'podnet-cni/1 ${name}\\n'
    [ -n "\${CNI_COMMAND+x}" ] && printf 'CNI_COMMAND=%s\\n' "$CNI_COMMAND"
    [ -n "\${CNI_CONTAINERID+x}" ] && printf 'CNI_CONTAINERID=%s\\n' "$CNI_CONTAINERID"
    [ -n "\${CNI_NETNS+x}" ] && printf 'CNI_NETNS=%s\\n' "$CNI_NETNS"
    [ -n "\${CNI_IFNAME+x}" ] && printf 'CNI_IFNAME=%s\\n' "$CNI_IFNAME"
    [ -n "\${CNI_ARGS+x}" ] && printf 'CNI_ARGS=%s\\n' "$CNI_ARGS"
    [ -n "\${CNI_PATH+x}" ] && printf 'CNI_PATH=%s\\n' "$CNI_PATH"
    printf '\\n%s' "$input"; } |
    socat -t 60 - ABSTRACT-CONNECT:${CNI_SERVER_SOCKET},unix-tightsocklen=0 2>/dev/null )
  if [ $? -eq 0 ] && [ -n "$reply" ]; then
    case $reply in *"$nl"*) printf '%s\\n' "\${reply#*"$nl"}" ;; esac
    exit "\${reply%%"$nl"*}"
  fi
fi
printf '%s' "$input" | ${node} "$@"
`;
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
