#!/usr/bin/env bash
# Installs what podnet needs on a fresh Debian machine: Debian packages when missing, npm dependencies.
# Safe to run again: it only installs what is not there.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v nsenter >/dev/null 2>&1 || need+=(util-linux)
command -v ping >/dev/null 2>&1 || need+=(iputils-ping)
# socat: the installed CNI plugins reach their node's podnet CNI server through it (fast path).
command -v socat >/dev/null 2>&1 || need+=(socat)
# gcc: builds podnet's N-API addon (native/netns.c, setns for the lab agent and probes) in `npm run build`.
command -v gcc >/dev/null 2>&1 || need+=(gcc)
# The reference CNI plugins (bridge, host-local, portmap, ...): peers in the CNI tests.
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
# conntrack: the service proxy flushes stale UDP flows when an endpoint goes away (as kube-proxy does).
command -v conntrack >/dev/null 2>&1 || need+=(conntrack)
# dig (dnsutils): the DNS tests query podnet's DNS server from inside lab pods with the real client.
command -v dig >/dev/null 2>&1 || need+=(dnsutils)
# dnsperf and dnsmasq (the -base package: the binary without a system service listening on port 53):
# the DNS benchmark's load generator and its peer.
command -v dnsperf >/dev/null 2>&1 || need+=(dnsperf)
command -v dnsmasq >/dev/null 2>&1 || need+=(dnsmasq-base)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "podnet setup: missing Debian packages: ${need[*]}; run as root (or: apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "podnet setup: installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# npm dependencies: install when missing or when the lockfile changed since the last install.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "podnet setup: installing npm dependencies"
  # npm install, not npm ci: npm ci rejects this lockfile for the optional per-platform biome binaries it
  # does not list (an npm quirk); install still honours the locked versions.
  npm install --no-audit --no-fund --loglevel=error
fi
