#!/usr/bin/env bash
# All tests: unit tests, then the end-to-end suite on the real kernel (network namespaces,
# nftables, the real helper and server). Needs root. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "scripts/test.sh: run as root (the end-to-end suite builds network namespaces)" >&2; exit 1; }
bash scripts/bootstrap.sh
pnpm test:unit
pnpm test:e2e
