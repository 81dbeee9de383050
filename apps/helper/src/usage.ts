import { WAF_FLAGS_USAGE } from "@knockport/config/usage";
import { BACKEND_FLAGS_USAGE, CUSTOM_CHAINS_USAGE } from "@knockport/firewall/usage";

/** knockport-helper --help (a module of its own: the running helper never loads it). */
export const HELPER_USAGE = `Usage: knockport-helper -c CONFIG [options]

Root-owned firewall helper: applies KnockPort's firewall rules and opens ports on request of
knockport-server over a Unix socket. One-shot work is the knockport CLI's: knockport dry-run,
knockport print-sudoers, knockport uninstall-firewall.

  -c, --config FILE         config file (required)
${BACKEND_FLAGS_USAGE}      --socket PATH         knock socket, for knockport-server: hello, open, counters
                            (default /run/knockport/helper.sock)
      --socket-group GROUP  group allowed on the knock socket (mode 0660); without it 0600, root only
      --admin-socket PATH   admin socket: grant, close, list, stats (default admin.sock
                            beside --socket, /run/knockport/admin.sock)
      --admin-socket-group GROUP
                            group allowed on the admin socket (mode 0660); without it 0600, root
                            only; never the knock socket's group
      --events-socket PATH  events socket: watch, the lease events knockport-hooks runs on_open /
                            on_close from (default events.sock beside --socket)
      --events-socket-group GROUP
                            group allowed on the events socket (0660; knockport-hooks); without
                            it 0600, root only; never the knock socket's group
      --state-dir DIR       where leases are kept across restarts (default /var/lib/knockport)
      --http-port N         HTTP (step 1) knock port, overrides global.http_port (default 8080)
      --https-port N        HTTPS (step 2) knock port, overrides global.https_port (default 8443)
${WAF_FLAGS_USAGE}
      --service-rule-cleanup-on-shutdown
                            on SIGTERM/SIGINT revoke every live grant (as the original); the
                            table and its drop rules stay, so the ports stay closed
      --use-sudo            run the firewall binaries through "sudo -n" with absolute paths, so the
                            helper can run as an ordinary user (knockport print-sudoers writes the
                            sudoers file; the CAP_NET_ADMIN systemd unit is the safer choice)
      --sudo-path PATH      absolute path of sudo (default /usr/bin/sudo)
      --log-level LEVEL     fatal, error, warn, info (default), debug
  -h, --help                show this help

${CUSTOM_CHAINS_USAGE}`;
