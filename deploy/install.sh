#!/usr/bin/env bash
# Install a built KnockPort on a gateway, or remove it again.
#
#   deploy/install.sh [options]              install (or update) from this built workspace
#   deploy/install.sh --uninstall [--purge]  remove it (--purge also removes config, TLS and state)
#
# What it does (every step is idempotent; run it again to update):
#   /opt/knockport                      a copy of the built workspace (bin/, apps/*/dist, packages/*/dist,
#                                       node_modules, example config, README, docs/, deploy/), replaced as a whole
#   /etc/systemd/system/knockport-helper.service, knockport-server.service, knockport-hooks.service
#                                       (not enabled: enable it when an app has on_open/on_close), knockport.timer
#   /usr/lib/sysusers.d/knockport.conf  the knockport user and group, and the helper's own user
#                                       knockport-helper (systemd-sysusers, else useradd)
#   /usr/lib/tmpfiles.d/knockport.conf  /etc/knockport, /etc/knockport/tls, /etc/knockport/2fa, /run/knockport
#   /etc/knockport/config.yaml          copied from the example only if absent, never overwritten
#   /etc/knockport/tls/knockport.{pem,key}  a self-signed test certificate only if absent (knockport gen-cert)
#   systemctl daemon-reload; enable knockport-helper + knockport-server (or, with --vyos, only knockport.timer)
#
# Options:
#   --prefix DIR     install below DIR instead of / (packaging, tests). Implies --no-systemctl, and
#                    creates no user and changes no ownership outside DIR.
#   --no-systemctl   change no system state: no systemctl, no systemd-sysusers/useradd, no tmpfiles run
#   --source DIR     the built workspace to install (default: the repository this script is in)
#   --node PATH      the node binary the units start (default /usr/bin/node; absolute path)
#   --cert-cn NAME   host name for the test certificate (default: this host's name)
#   --vyos           enable knockport.timer (start 60 s after boot) instead of the two services
#   --start          (re)start the services after installing (the config must be edited first)
#   --uninstall      stop and disable the units, remove the firewall table, /opt/knockport and our units
#   --purge          with --uninstall: also remove /etc/knockport and /var/lib/knockport{,-server}
#   -h, --help
#
# No argument is ever evaluated by a shell: paths are checked against a strict pattern and passed
# as separate arguments.
set -euo pipefail
umask 022

die() { printf 'install.sh: %s\n' "$*" >&2; exit 2; }
say() { printf '%s\n' "$*"; }

# Paths we accept for --prefix/--source/--node: absolute, no whitespace, quotes or shell characters.
check_path() { # flag value
  [[ "$2" =~ ^/[A-Za-z0-9._/+-]*$ ]] || die "$1: must be an absolute path of A-Z a-z 0-9 . _ / + - (got \"$2\")"
  [[ "$2" != *..* ]] || die "$1: must not contain \"..\" (got \"$2\")"
}

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
PREFIX=/
SOURCE=$(dirname "$SCRIPT_DIR")
NODE=/usr/bin/node
CERT_CN=""
SYSTEMCTL=1
VYOS=0
START=0
UNINSTALL=0
PURGE=0

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX=$2; shift 2 ;;
    --source) [ $# -ge 2 ] || die "--source needs a directory"; SOURCE=$2; shift 2 ;;
    --node) [ $# -ge 2 ] || die "--node needs a path"; NODE=$2; shift 2 ;;
    --cert-cn) [ $# -ge 2 ] || die "--cert-cn needs a host name"; CERT_CN=$2; shift 2 ;;
    --no-systemctl) SYSTEMCTL=0; shift ;;
    --vyos) VYOS=1; shift ;;
    --start) START=1; shift ;;
    --uninstall) UNINSTALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option \"$1\"; see --help" ;;
  esac
done

check_path --prefix "$PREFIX"
check_path --source "$SOURCE"
check_path --node "$NODE"
if [ -n "$CERT_CN" ]; then
  [[ "$CERT_CN" =~ ^[A-Za-z0-9.-]{1,253}$ ]] || die "--cert-cn: must be a host name such as gw.example.com (got \"$CERT_CN\")"
fi
[ "$PURGE" -eq 0 ] || [ "$UNINSTALL" -eq 1 ] || die "--purge only goes with --uninstall"
PREFIX=${PREFIX%/}
if [ -n "$PREFIX" ]; then
  SYSTEMCTL=0 # a staging root: never touch the running system
  [ -d "$PREFIX" ] || die "--prefix $PREFIX: no such directory"
fi
if [ "$PREFIX" = "" ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root to install into / (or use --prefix DIR to stage into a directory)"
fi

OPT="$PREFIX/opt/knockport"
ETC="$PREFIX/etc/knockport"
UNITS="$PREFIX/etc/systemd/system"
SYSUSERS="$PREFIX/usr/lib/sysusers.d/knockport.conf"
TMPFILES="$PREFIX/usr/lib/tmpfiles.d/knockport.conf"
UNIT_FILES=(knockport-helper.service knockport-server.service knockport-hooks.service knockport-cluster-sync.service knockport.timer)

have() { command -v "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------------------------------------
uninstall() {
  if [ "$SYSTEMCTL" -eq 1 ] && have systemctl; then
    systemctl disable --now knockport.timer knockport-server.service knockport-helper.service 2>/dev/null || true
  fi
  if [ "$SYSTEMCTL" -eq 1 ] && [ -x "$NODE" ] && [ -f "$OPT/bin/knockport" ]; then
    # Without the helper our rules would keep the service ports closed: remove them (and the leases),
    # for whichever backend was in use (removing an absent one is a no-op).
    "$NODE" "$OPT/bin/knockport" uninstall-firewall --state-dir /var/lib/knockport >/dev/null ||
      say "warning: could not remove the nftables table; run: nft delete table inet knockport"
    if have iptables; then
      "$NODE" "$OPT/bin/knockport" uninstall-firewall --firewall-type iptables --state-dir /var/lib/knockport >/dev/null ||
        say "warning: could not remove the KNOCKPORT-* iptables chains"
    fi
  fi
  for u in "${UNIT_FILES[@]}"; do rm -f "$UNITS/$u"; done
  rm -f "$SYSUSERS" "$TMPFILES"
  rm -rf "$OPT" "$OPT.new" "$OPT.old"
  if [ "$PURGE" -eq 1 ]; then
    rm -rf "$ETC" "$PREFIX/var/lib/knockport" "$PREFIX/var/lib/knockport-server"
    say "removed /etc/knockport and the state directories"
  else
    say "kept $ETC (config, certificate) and the state directories; --purge removes them"
  fi
  if [ "$SYSTEMCTL" -eq 1 ] && have systemctl; then systemctl daemon-reload || true; fi
  say "KnockPort uninstalled. The knockport user and group stay (userdel knockport removes them)."
}

if [ "$UNINSTALL" -eq 1 ]; then
  uninstall
  exit 0
fi

# ---------------------------------------------------------------------------------------------
for built in apps/helper/dist/main.js apps/server/dist/main.js apps/cli/dist/main.js bin/knockport node_modules; do
  [ -e "$SOURCE/$built" ] || die "--source $SOURCE: $built is missing; build it first: pnpm install && pnpm build"
done
[ -x "$NODE" ] || [ -n "$PREFIX" ] || die "--node $NODE: not an executable; install Node.js 20 or pass --node /path/to/node"

# 1. /opt/knockport, replaced as a whole (staged next to it, then swapped).
say "installing KnockPort into $OPT"
rm -rf "$OPT.new" "$OPT.old"
mkdir -p "$OPT.new"
for f in package.json pnpm-workspace.yaml README.md LICENSE docs bin config deploy node_modules; do
  if [ -e "$SOURCE/$f" ]; then cp -a "$SOURCE/$f" "$OPT.new/"; fi
done
rm -rf "$OPT.new/node_modules/.vite" "$OPT.new/node_modules/.vite-temp" "$OPT.new/deploy/test"
for pkg in "$SOURCE"/apps/* "$SOURCE"/packages/*; do
  [ -f "$pkg/package.json" ] || continue
  rel=${pkg#"$SOURCE"/}
  mkdir -p "$OPT.new/$rel"
  cp -a "$pkg/package.json" "$OPT.new/$rel/"
  for part in dist node_modules; do
    if [ -e "$pkg/$part" ]; then cp -a "$pkg/$part" "$OPT.new/$rel/"; fi
  done
  rm -f "$OPT.new/$rel/dist/.tsbuildinfo"
done
if [ -z "$PREFIX" ]; then chown -R root:root "$OPT.new"; fi
chmod -R go-w "$OPT.new"
if [ -e "$OPT" ]; then mv "$OPT" "$OPT.old"; fi
mv "$OPT.new" "$OPT"
rm -rf "$OPT.old"

# 2. Units, sysusers.d, tmpfiles.d (ours: replaced on every install; customise with drop-ins).
mkdir -p "$UNITS" "$(dirname "$SYSUSERS")" "$(dirname "$TMPFILES")"
for u in "${UNIT_FILES[@]}"; do
  if [ "$NODE" = /usr/bin/node ]; then
    install -m 0644 "$SOURCE/deploy/systemd/$u" "$UNITS/$u"
  else
    # --node was checked against a strict path pattern, so it is safe inside the sed expression.
    sed "s|^ExecStart=/usr/bin/node |ExecStart=$NODE |" "$SOURCE/deploy/systemd/$u" > "$UNITS/$u.tmp"
    chmod 0644 "$UNITS/$u.tmp"
    mv "$UNITS/$u.tmp" "$UNITS/$u"
  fi
done
install -m 0644 "$SOURCE/deploy/sysusers.d/knockport.conf" "$SYSUSERS"
install -m 0644 "$SOURCE/deploy/tmpfiles.d/knockport.conf" "$TMPFILES"

# 3. The knockport user and group.
if [ "$SYSTEMCTL" -eq 1 ]; then
  if have systemd-sysusers; then
    systemd-sysusers "$SYSUSERS"
  elif ! getent group knockport >/dev/null; then
    groupadd --system knockport
  fi
  if ! getent passwd knockport >/dev/null; then
    useradd --system --gid knockport --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin knockport
  fi
  if ! getent passwd knockport-helper >/dev/null; then
    useradd --system --gid knockport --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin knockport-helper
  fi
  if ! getent passwd knockport-hooks >/dev/null; then
    getent group knockport-hooks >/dev/null || groupadd --system knockport-hooks
    useradd --system --gid knockport-hooks --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin knockport-hooks
  fi
  if ! getent passwd knockport-cluster >/dev/null; then
    getent group knockport-cluster >/dev/null || groupadd --system knockport-cluster
    useradd --system --gid knockport-cluster --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin knockport-cluster
  fi
fi
# Group of /etc/knockport: knockport when it exists on this system (not in a staging root).
GROUP=root
if [ -z "$PREFIX" ] && getent group knockport >/dev/null; then GROUP=knockport; fi

# 4. /etc/knockport: config from the example if absent (never overwritten), test certificate if absent.
# 2fa: TOTP secrets (knockport setup-2fa), root-owned so the server's group reads but never writes them.
mkdir -p "$ETC/tls" "$ETC/2fa"
chmod 0750 "$ETC" "$ETC/tls" "$ETC/2fa"
if [ -z "$PREFIX" ]; then chown root:"$GROUP" "$ETC" "$ETC/tls" "$ETC/2fa"; fi
if [ -e "$ETC/config.yaml" ]; then
  say "kept $ETC/config.yaml"
else
  install -m 0640 "$SOURCE/config/config.example.yaml" "$ETC/config.yaml"
  if [ -z "$PREFIX" ]; then chgrp "$GROUP" "$ETC/config.yaml"; fi
  say "wrote $ETC/config.yaml from the example: change the knock paths and every key before starting"
fi
if [ -e "$ETC/tls/knockport.pem" ] || [ -e "$ETC/tls/knockport.key" ]; then
  say "kept the certificate in $ETC/tls"
else
  cn=$CERT_CN
  if [ -z "$cn" ]; then
    cn=$(hostname 2>/dev/null || true)
    [[ "$cn" =~ ^[A-Za-z0-9.-]{1,253}$ ]] || cn=knockport.test
  fi
  gen_node=$NODE
  [ -x "$gen_node" ] || gen_node=$(command -v node) || die "no node binary to run knockport gen-cert"
  "$gen_node" "$OPT/bin/knockport" gen-cert --out-dir "$ETC/tls" --name knockport --cn "$cn" >/dev/null
  chmod 0644 "$ETC/tls/knockport.pem"
  chmod 0640 "$ETC/tls/knockport.key"
  if [ -z "$PREFIX" ]; then chgrp "$GROUP" "$ETC/tls/knockport.key"; fi
  say "wrote a self-signed test certificate for $cn to $ETC/tls (replace it with a real one)"
fi

# 5. systemd.
if [ "$SYSTEMCTL" -eq 1 ] && have systemctl; then
  if have systemd-tmpfiles; then systemd-tmpfiles --create "$TMPFILES" || true; fi
  systemctl daemon-reload
  if [ "$VYOS" -eq 1 ]; then
    systemctl disable knockport-helper.service knockport-server.service 2>/dev/null || true
    systemctl enable knockport.timer
    say "enabled knockport.timer: KnockPort starts 60 s after boot"
  else
    systemctl enable knockport-helper.service knockport-server.service
    say "enabled knockport-helper and knockport-server"
  fi
  if [ "$START" -eq 1 ]; then
    systemctl restart knockport-helper.service knockport-server.service
    say "started; check: systemctl status knockport-server; knockport status"
  fi
else
  say "skipped systemctl, user creation and tmpfiles (--prefix or --no-systemctl)"
fi
say "done. Next: edit $ETC/config.yaml, check it with: $NODE /opt/knockport/bin/knockport check-config -c /etc/knockport/config.yaml"
