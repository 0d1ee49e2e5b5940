#!/usr/bin/env bash
# npm run demo [-- MANIFESTS]: set up, build, and run the narrated lab tour (default: the quick-start;
# examples/two-clusters.yaml runs the two-cluster tour).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run build
exec node dist/src/cli/main.js lab tour "${1:-examples/quickstart.yaml}"
