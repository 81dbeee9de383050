#!/bin/sh
# Knock, then start OpenVPN: the service port is closed until the knock, so the knock has to come
# BEFORE OpenVPN connects (an OpenVPN `up` script runs only after the tunnel exists; see openvpn-up.sh).
#
#   sh openvpn-knock-wrapper.sh ~/.config/knockport/openvpn.env client.ovpn [more openvpn options]
#
# With a 2FA key, add --totp-prompt after the settings file's knock (edit KNOCK_ARGS below).
set -eu
SETTINGS=$1; shift
KNOCK_ARGS=${KNOCK_ARGS:-}
# shellcheck disable=SC2086
knockport knock --config "$SETTINGS" $KNOCK_ARGS
exec openvpn --config "$@"
