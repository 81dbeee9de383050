import { parseArgs } from "node:util";
import { SHARED_FLAGS, adminSocketBeside, eventsSocketBeside, withUsageErrors, UsageError, parseLogLevel, parsePortFlag, parseWafPortFlags } from "@knockport/config/flags";
import { BACKEND_FLAGS, parseBackendFlags } from "@knockport/firewall";

export type HelperOptions = Exclude<ReturnType<typeof parseHelperArgs>, "help">;

/** The helper's flags: it only runs (dry-run, print-sudoers and uninstall-firewall are knockport CLI commands). */
export function parseHelperArgs(argv: string[]) {
  const parsed = withUsageErrors(() =>
    parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        ...SHARED_FLAGS,
        ...BACKEND_FLAGS,
        "socket-group": { type: "string" },
        "admin-socket": { type: "string" },
        "admin-socket-group": { type: "string" },
        "events-socket": { type: "string" },
        "events-socket-group": { type: "string" },
        "state-dir": { type: "string", default: "/var/lib/knockport" },
        "service-rule-cleanup-on-shutdown": { type: "boolean", default: false },
        "use-sudo": { type: "boolean", default: false },
        "sudo-path": { type: "string", default: "/usr/bin/sudo" },
        help: { type: "boolean", short: "h", default: false },
      },
    }),
  );
  const v = parsed.values;
  if (v.help) return "help";
  if (!v.config) throw new UsageError("-c/--config is required (e.g. -c /etc/knockport/config.yaml)");
  const backend = parseBackendFlags(v);
  const sudoPath = v["sudo-path"];
  if (!/^\/[A-Za-z0-9._/-]+$/.test(sudoPath) || sudoPath.includes("..")) {
    throw new UsageError(`--sudo-path: must be an absolute path such as /usr/bin/sudo (got "${sudoPath.slice(0, 80)}")`);
  }
  const adminSocketPath = v["admin-socket"] ?? adminSocketBeside(v.socket);
  if (adminSocketPath === v.socket) throw new UsageError(`--admin-socket: must differ from --socket (both ${v.socket})`);
  const adminSocketGroup = v["admin-socket-group"];
  if (adminSocketGroup !== undefined && adminSocketGroup === v["socket-group"]) {
    throw new UsageError(`--admin-socket-group: must differ from --socket-group (${adminSocketGroup}): the server's group would get the admin methods`);
  }
  const eventsSocketPath = v["events-socket"] ?? eventsSocketBeside(v.socket);
  if (eventsSocketPath === v.socket || eventsSocketPath === adminSocketPath) {
    throw new UsageError(`--events-socket: must differ from --socket and --admin-socket (${eventsSocketPath})`);
  }
  const eventsSocketGroup = v["events-socket-group"];
  if (eventsSocketGroup !== undefined && eventsSocketGroup === v["socket-group"]) {
    throw new UsageError(`--events-socket-group: must differ from --socket-group (${eventsSocketGroup})`);
  }
  return {
    /** nftables: the admin's table and base chains instead of our own table inet knockport. */
    customChains: backend.customChains,
    firewallType: backend.type,
    vbash: backend.vbash,
    iptablesBinary: backend.iptablesBinary,
    configFile: v.config,
    /** Firewall binaries through `sudo -n` (the helper as an ordinary user). */
    useSudo: v["use-sudo"],
    sudoPath,
    eventsSocketPath,
    eventsSocketGroup,
    socketPath: v.socket,
    socketGroup: v["socket-group"],
    adminSocketPath,
    adminSocketGroup,
    stateDir: v["state-dir"],
    httpPort: parsePortFlag("--http-port", v["http-port"]),
    httpsPort: parsePortFlag("--https-port", v["https-port"]),
    /** --waf-http-port, --waf-https-port (the config loader merges them with global.waf_*). */
    waf: parseWafPortFlags(v),
    /** On SIGTERM/SIGINT, revoke live grants (the table and its drops stay). */
    serviceRuleCleanupOnShutdown: v["service-rule-cleanup-on-shutdown"],
    logLevel: parseLogLevel(v["log-level"]),
  };
}
