#!/usr/bin/env bash
# Builds podnet's N-API addons with plain gcc into dist/native/: netns.node (native/netns.c: setns and
# sockets inside network namespaces) and netlink.node (native/netlink.c: rtnetlink requests inside a
# namespace, for the CNI plugin) and dnsfast.node (native/dnsfast.c: the DNS server's UDP fast path). One C file each needs no node-gyp (and no Python, no downloads).
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
for addon in netns netlink; do
  gcc -O2 -Wall -Wextra -shared -fPIC -I"$include" "native/$addon.c" -o "dist/native/$addon.node"
done
# dnsfast.node (native/dnsfast.c): the DNS server's UDP fast path for cache hits, a thread per listener.
gcc -O2 -Wall -Wextra -shared -fPIC -pthread -I"$include" native/dnsfast.c -o dist/native/dnsfast.node -lpthread
