#!/bin/sh
# KnockPort knock with plain curl (no 2FA), the original's two curl commands with the paths and keys
# read from a settings file (see knock.env.example), so none of them appears on a command line.
#
#   sh knock-curl.sh ~/.config/knockport/openvpn.env
#
# Exit: 0 opened; 1 bad settings; 3 step 1 not sent; 4 HTTPS port stayed closed; 5 step 2 refused;
# 7 other answer (same meaning as `knockport knock`).
set -u
SETTINGS=${1:-${KNOCKPORT_CONFIG:-}}
[ -n "$SETTINGS" ] || { echo "usage: $0 SETTINGS_FILE (see knock.env.example)" >&2; exit 1; }
[ -r "$SETTINGS" ] || { echo "$0: cannot read $SETTINGS" >&2; exit 1; }
# shellcheck disable=SC1090
. "$SETTINGS"
: "${KNOCKPORT_HOST:?missing in $SETTINGS}" "${KNOCKPORT_APP:?}" "${KNOCKPORT_HTTP_KEY:?}" "${KNOCKPORT_HTTPS_KEY:?}"
: "${KNOCKPORT_HTTP_PATH:?}" "${KNOCKPORT_HTTPS_PATH:?}"
HTTP_PORT=${KNOCKPORT_HTTP_PORT:-8080}
HTTPS_PORT=${KNOCKPORT_HTTPS_PORT:-8443}
TOKEN_FIELD=${KNOCKPORT_TOKEN:+&token=$KNOCKPORT_TOKEN}

if [ -n "${KNOCKPORT_CA:-}" ]; then TLS="--cacert $KNOCKPORT_CA"
elif [ "${KNOCKPORT_INSECURE:-0}" = 1 ]; then TLS="-k"
else TLS=""; fi
# An IPv6 address goes into URLs in brackets.
case $KNOCKPORT_HOST in *:*) HOST="[$KNOCKPORT_HOST]" ;; *) HOST=$KNOCKPORT_HOST ;; esac
# Step 2 names the host the certificate carries (KNOCKPORT_TLS_NAME) and connects to KNOCKPORT_HOST.
HTTPS_HOST=$HOST
if [ -n "${KNOCKPORT_TLS_NAME:-}" ]; then
  HTTPS_HOST=$KNOCKPORT_TLS_NAME
  TLS="$TLS --connect-to $KNOCKPORT_TLS_NAME:$HTTPS_PORT:$HOST:$HTTPS_PORT"
fi

# Step 1: one small packet (no User-Agent/Accept headers); the firewall drops every answer, so curl
# gives up after 1 s with exit 28 — that is the expected outcome. The body comes from stdin (-d @-).
printf 'app=%s&access_key=%s%s' "$KNOCKPORT_APP" "$KNOCKPORT_HTTP_KEY" "$TOKEN_FIELD" |
  curl -s -g -o /dev/null -m 1 -H 'User-Agent:' -H 'Accept:' -d @- "http://$HOST:$HTTP_PORT$KNOCKPORT_HTTP_PATH"
rc=$?
case $rc in
  28) ;;                                   # no answer, as designed
  0) echo "step 1: the server answered (no stealth firewall in front of it?)" >&2 ;;
  *) echo "step 1: curl exit $rc: could not send the knock to $KNOCKPORT_HOST:$HTTP_PORT" >&2; exit 3 ;;
esac

# Step 2: HTTPS, within step2_https_duration. A few tries: the HTTPS port opens once step 1 was handled.
i=0
while [ $i -lt 3 ]; do
  # shellcheck disable=SC2086
  status=$(printf 'app=%s&access_key=%s' "$KNOCKPORT_APP" "$KNOCKPORT_HTTPS_KEY" |
    curl -s -g -o /dev/null -w '%{http_code}' -m 3 $TLS -d @- "https://$HTTPS_HOST:$HTTPS_PORT$KNOCKPORT_HTTPS_PATH")
  rc=$?
  [ "$rc" -eq 0 ] && break
  i=$((i + 1))
done
case "$rc:$status" in
  0:200) echo "$KNOCKPORT_APP opened for this address"; exit 0 ;;
  0:403|0:404) echo "step 2: refused ($status): check KNOCKPORT_APP, KNOCKPORT_HTTPS_KEY (same position as the HTTP key) and KNOCKPORT_HTTPS_PATH" >&2; exit 5 ;;
  0:*) echo "step 2: answered $status" >&2; exit 7 ;;
  60:*|35:*) echo "step 2: TLS failed (curl $rc): set KNOCKPORT_CA to the server's certificate" >&2; exit 6 ;;
  *) echo "step 2: HTTPS port stayed closed (curl $rc): step 1 was refused (key, path, app or 2FA token) or came too late" >&2; exit 4 ;;
esac
