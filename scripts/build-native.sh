#!/usr/bin/env bash
# Builds podnet's N-API addon (native/netns.c: setns and sockets inside network namespaces) into
# dist/native/netns.node with plain gcc: one C file needs no node-gyp (and no Python, no downloads).
# Runs as part of `npm run build`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v gcc >/dev/null 2>&1; then
  echo "build-native: gcc is missing; install it (apt-get install gcc, or run scripts/setup.sh as root)" >&2
  exit 1
fi
include=""
for dir in /usr/include/node "$(dirname "$(dirname "$(command -v node)")")/include/node"; do
  if [ -f "$dir/node_api.h" ]; then
    include=$dir
    break
  fi
done
if [ -z "$include" ]; then
  echo "build-native: Node's C headers (node_api.h) are missing: looked in /usr/include/node and" \
    "$(dirname "$(dirname "$(command -v node)")")/include/node; install them (NodeSource's nodejs package" \
    "ships them; Debian's own nodejs needs libnode-dev; a nodejs.org tarball has them in include/node)" >&2
  exit 1
fi

mkdir -p dist/native
gcc -O2 -Wall -Wextra -shared -fPIC -I"$include" native/netns.c -o dist/native/netns.node
