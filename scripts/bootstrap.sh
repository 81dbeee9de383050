#!/usr/bin/env bash
# Installs what KnockPort needs on a Debian machine, then builds it. Safe to run again:
# it only installs what is missing. Used by scripts/demo.sh, scripts/test.sh and CI.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=10.34.8
say() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: %s\n' "$*" >&2; exit 1; }

# Node.js 20 or newer is the runtime; Debian 12's own nodejs is 18, so it is not installed here.
command -v node >/dev/null 2>&1 || die "Node.js 20+ is required (node not found); install Node.js 20 first"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node.js 20+ is required (found $(node --version))"

# binary -> Debian package; the end-to-end tests and the demo need all of them
declare -A needed=(
  [nft]=nftables [ip]=iproute2 [curl]=curl [openssl]=openssl [conntrack]=conntrack [setpriv]=util-linux
  [ipset]=ipset [iptables-nft]=iptables [iptables-legacy]=iptables [ip6tables-nft]=iptables [ip6tables-legacy]=iptables
  [systemd-analyze]=systemd # deploy/test: verify the units and measure their exposure (nothing is started)
  [nginx]=nginx # test/e2e/waf.test.ts starts its own nginx inside a test namespace (WAF mode)
  # test/e2e/docker.test.ts starts its own dockerd inside a test namespace; the container image is a
  # tar of busybox-static's /bin/busybox (no registry)
  [dockerd]=docker.io [busybox]=busybox-static
  # cluster mode's tests start their own redis-server (loopback / Unix socket, no persistence)
  [redis-server]=redis-server
  # pnpm package, and test/e2e/systemd.test.ts (the .deb in a Debian container under systemd-nspawn)
  [fakeroot]=fakeroot [mmdebstrap]=mmdebstrap [systemd-nspawn]=systemd-container
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

if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  say "installing pnpm $PNPM_VERSION"
  npm install -g --silent "pnpm@$PNPM_VERSION" >/dev/null
fi

say "installing node modules"
pnpm install --frozen-lockfile --reporter=silent
say "building"
pnpm build
