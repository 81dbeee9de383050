#!/bin/sh
# Tunnelblick (macOS): put this file into the configuration's .tblk folder next to the .ovpn file;
# Tunnelblick runs pre-connect.sh before every connection attempt, so the port is open when OpenVPN
# connects. The settings file must be readable by root (Tunnelblick runs it as root).
#
#   MyVPN.tblk/Contents/Resources/config.ovpn
#   MyVPN.tblk/Contents/Resources/pre-connect.sh     (this file, chmod 755)
#   MyVPN.tblk/Contents/Resources/knock-curl.sh      (copy of ../knock-curl.sh)
#   MyVPN.tblk/Contents/Resources/knockport.env      (from knock.env.example, chmod 600)
#
# Uses the curl script (curl ships with macOS, Node may not be installed). For a 2FA key, Tunnelblick
# has no prompt here: use a key without 2FA for this device or knock by hand first.
HERE=$(cd "$(dirname "$0")" && pwd)
sh "$HERE/knock-curl.sh" "$HERE/knockport.env"
rc=$?
[ $rc -eq 0 ] || echo "pre-connect.sh: knock failed (exit $rc)" >&2
exit 0
