#!/bin/sh
# KnockPort knock with curl for a step-1 key that has 2FA (knockport setup-2fa): asks for the current
# code of your authenticator app (or takes it as the 2nd argument) and runs knock-curl.sh with it.
# Each code works once: if step 2 fails, wait for the next code.
#
#   sh knock-curl-2fa.sh ~/.config/knockport/openvpn.env [CODE]
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
CODE=${2:-}
if [ -z "$CODE" ]; then
  printf '2FA token: ' >&2
  read -r CODE
fi
case "$CODE" in
  [0-9][0-9][0-9][0-9][0-9][0-9]) ;;
  *) echo "$0: the token must be the 6-digit code of your authenticator app" >&2; exit 1 ;;
esac
KNOCKPORT_TOKEN=$CODE exec sh "$HERE/knock-curl.sh" "${1:-${KNOCKPORT_CONFIG:-}}"
