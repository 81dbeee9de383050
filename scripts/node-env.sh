# Sourced by scripts/bootstrap.sh, test.sh, demo.sh, package-deb.sh and .ci/run: the pinned Node 20
# and pnpm, and where bootstrap puts them on a machine without Node 20 (Debian 12's nodejs is 18).
# Both come from the npm registry as tarballs, checked against these SHA-512 sums (the registry's
# dist.integrity of each version) before anything is unpacked.
# shellcheck shell=bash
KNOCKPORT_NODE_VERSION=20.20.2
KNOCKPORT_NODE_SHA512=3de1d033cc007661ed640d66068732819c6ce4b8945adb097b3413901774898f7cecaa46ac3d4edad544c9dbcc662b9771e45a9f1b7bae34e70c407038fba3a1
KNOCKPORT_PNPM_VERSION=10.34.8
KNOCKPORT_PNPM_SHA512=f627a8e971343afe49dfd0f63d028234201dfa831d5cb588733e1e5f8db26bf16989a32161ab5c1b4db3b1fdbc373160606b5b89e002df6dd19a85adf91fc5a8
KNOCKPORT_NODE_DIR=/opt/knockport-node
# Downloaded tarballs (also the .deb's Node binary, scripts/package-deb.sh).
KNOCKPORT_CACHE=${KNOCKPORT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/knockport}

# What bootstrap installed comes first on PATH: node (only where the machine had no Node 20) and pnpm.
knockport_use_node_dir() {
  if [ -d "$KNOCKPORT_NODE_DIR/bin" ]; then
    case ":$PATH:" in *":$KNOCKPORT_NODE_DIR/bin:"*) ;; *) PATH=$KNOCKPORT_NODE_DIR/bin:$PATH; export PATH ;; esac
  fi
}

# Prints the path of <name>-<version>.tgz from the npm registry, kept in $KNOCKPORT_CACHE; downloads it
# when absent and fails (nothing printed) unless its SHA-512 is <sha512>.
knockport_fetch_tarball() {
  local name=$1 version=$2 sum=$3
  local file=$KNOCKPORT_CACHE/$name-$version.tgz
  if [ -s "$file" ] && printf '%s  %s\n' "$sum" "$file" | sha512sum -c --status; then
    printf '%s\n' "$file"
    return 0
  fi
  command -v curl >/dev/null 2>&1 || { echo "knockport: curl is needed to fetch $name@$version (apt-get install curl ca-certificates)" >&2; return 1; }
  mkdir -p "$KNOCKPORT_CACHE"
  if ! curl -fsSL --retry 3 --connect-timeout 20 --max-time 600 -o "$file.part" "https://registry.npmjs.org/$name/-/$name-$version.tgz"; then
    rm -f "$file.part"
    echo "knockport: could not download $name@$version from registry.npmjs.org" >&2
    return 1
  fi
  if ! printf '%s  %s\n' "$sum" "$file.part" | sha512sum -c --status; then
    rm -f "$file.part"
    echo "knockport: $name-$version.tgz from the registry does not have the pinned SHA-512; not used" >&2
    return 1
  fi
  mv "$file.part" "$file"
  printf '%s\n' "$file"
}

knockport_use_node_dir
