#!/usr/bin/env bash
# All checks and tests (the CI command, `pnpm test:all`): lint, typecheck, unit tests, the end-to-end suite
# on the real kernel (network namespaces, nftables, the real helper and server), then the fault suite
# (test/faults). Needs root. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "scripts/test.sh: run as root (the end-to-end suite builds network namespaces)" >&2; exit 1; }
bash scripts/bootstrap.sh
# shellcheck source=node-env.sh
. scripts/node-env.sh # Node 20 and pnpm where bootstrap put them

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
status=0
# Lint and typecheck failures fail the run, but the tests still run so one run reports everything.
checks=()
pnpm lint || { status=1; checks+=(lint); }
pnpm typecheck || { status=1; checks+=(typecheck); }
pnpm test:unit --reporter=default --reporter=json --outputFile.json="$results/unit.json" || status=$?
# The packages (dist/): test/e2e/systemd.test.ts installs the .deb under a real systemd.
pnpm package || status=$?
pnpm test:e2e --reporter=default --reporter=json --outputFile.json="$results/e2e.json" || status=$?
# Hostile input (property-based fuzzing of server and helper socket) and slow-loris (test/faults; ~30 s).
pnpm test:faults --reporter=default --reporter=json --outputFile.json="$results/faults.json" || status=$?

# One plain closing line over all three runs.
node -e '
  const fs = require("node:fs");
  let passed = 0, failed = 0, skipped = 0;
  for (const f of process.argv.slice(1)) {
    if (!fs.existsSync(f)) { failed += 1; continue; }
    const r = JSON.parse(fs.readFileSync(f, "utf8"));
    passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests;
  }
  console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
' "$results/unit.json" "$results/e2e.json" "$results/faults.json"
[ ${#checks[@]} -eq 0 ] || echo "failed checks: ${checks[*]}"
exit "$status"
