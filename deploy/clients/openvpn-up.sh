#!/bin/sh
# OpenVPN `up` hook: knocks again once the tunnel is up, so the lease (the app's `duration`) starts
# from the connection and a later reconnect within it still finds the port open. It cannot open the
# port for the first connection (that needs openvpn-knock-wrapper.sh or Tunnelblick's pre-connect.sh).
# Not for 2FA keys (no one to type the code).
#
# client.ovpn:
#   script-security 2
#   up "/etc/openvpn/client/openvpn-up.sh /etc/openvpn/client/knockport.env"
#
# OpenVPN appends its own arguments (device, MTU, ...); only the first one, the settings file, is used.
SETTINGS=$1
# never fail the tunnel because of the knock: report and go on
knockport knock --config "$SETTINGS" --step2-timeout 3000 >/dev/null 2>&1 ||
  echo "openvpn-up.sh: knockport knock failed (exit $?); the lease was not refreshed" >&2
exit 0
