#!/usr/bin/env bash
# Builds dist/knockport-client-<version>.tgz: an npm package holding only the knock client,
# `knockport-knock`, bundled with esbuild into one file without dependencies (Node >= 20).
# Install: npm i -g ./dist/knockport-client-<version>.tgz
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd -P)

die() { printf 'package-client: %s\n' "$*" >&2; exit 1; }

VERSION=$(node -p 'require("./package.json").version')
[ -x node_modules/.bin/esbuild ] || die "esbuild is missing; run: pnpm install"

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/knockport-client.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
PKG=$STAGE/package
mkdir -p "$PKG/bin"

# From the TypeScript sources (the "source" export condition), so no workspace build is needed.
node_modules/.bin/esbuild apps/cli/src/knock-main.ts --bundle --platform=node --target=node20 --format=cjs \
  --conditions=source --legal-comments=none --log-level=warning \
  --banner:js='#!/usr/bin/env node' --outfile="$PKG/bin/knockport-knock.cjs"
chmod 0755 "$PKG/bin/knockport-knock.cjs"

node -e '
  const [version, out] = process.argv.slice(1);
  const pkg = {
    name: "knockport-client",
    version,
    description: "KnockPort knock client: step 1 (stealth HTTP), step 2 (HTTPS), then the service port is open for you.",
    license: "CC0-1.0",
    bin: { "knockport-knock": "bin/knockport-knock.cjs" },
    files: ["bin"],
    engines: { node: ">=20" },
  };
  require("node:fs").writeFileSync(out, JSON.stringify(pkg, null, 2) + "\n");
' "$VERSION" "$PKG/package.json"
cat >"$PKG/README.md" <<EOT
# knockport-client

\`knockport-knock\`: knocks a KnockPort gateway (step 1, stealth HTTP; step 2, HTTPS), then the
service port is open for this machine's address. Run \`knockport-knock --help\` for the flags,
settings (environment or a --config file) and exit codes.
EOT

mkdir -p "$ROOT/dist"
(cd "$PKG" && npm pack --silent --pack-destination "$ROOT/dist" >/dev/null)
printf 'package-client: wrote %s (%s)\n' "$ROOT/dist/knockport-client-$VERSION.tgz" "$(du -h "$ROOT/dist/knockport-client-$VERSION.tgz" | cut -f1)"
