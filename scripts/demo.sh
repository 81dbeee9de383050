#!/usr/bin/env bash
# One-command demo: builds throwaway network namespaces (a server, a knocker, a bystander),
# starts the helper and the server inside, knocks, and shows the service port opening for the
# knocker only and closing again. Needs root. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "scripts/demo.sh: run as root (the demo builds network namespaces)" >&2; exit 1; }
bash scripts/bootstrap.sh >&2
# shellcheck source=node-env.sh
. scripts/node-env.sh # Node 20 where bootstrap put it
exec node packages/testbed/dist/demo-main.js
