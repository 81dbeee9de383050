import { parseArgs } from "node:util";
import { DEFAULT_ADMIN_SOCKET, DEFAULT_EVENTS_SOCKET, UsageError, parseLogLevel, withUsageErrors, type LogLevel } from "@knockport/config";

export interface SyncOptions {
  configFile: string;
  adminSocket: string;
  eventsSocket: string;
  logLevel: LogLevel;
}

export const SYNC_USAGE = `Usage: knockport-cluster-sync -c CONFIG [options]

Cluster mode's lease fan-out (docs/cluster.md): a knock on any gateway opens the service on every
gateway. Reads this helper's lease events, writes knocks and revokes to the store (global.cluster)
and grants or closes other gateways' leases here through the helper's admin socket. Unprivileged:
it needs the admin socket's group (--admin-socket-group of the helper) and the events socket's.

  -c, --config FILE        config file with global.cluster (required; the same as the helper's)
      --admin-socket PATH  helper admin socket: grant, close (default ${DEFAULT_ADMIN_SOCKET})
      --events-socket PATH helper events socket: watch (default ${DEFAULT_EVENTS_SOCKET})
      --log-level LEVEL    fatal, error, warn, info (default), debug
  -h, --help               show this help
`;

export function parseSyncArgs(argv: string[]): SyncOptions | "help" {
  const { values: v } = withUsageErrors(() =>
    parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: "string", short: "c" },
        "admin-socket": { type: "string", default: DEFAULT_ADMIN_SOCKET },
        "events-socket": { type: "string", default: DEFAULT_EVENTS_SOCKET },
        "log-level": { type: "string", default: "info" },
        help: { type: "boolean", short: "h", default: false },
      },
    }),
  );
  if (v.help) return "help";
  if (!v.config) throw new UsageError("-c/--config is required (e.g. -c /etc/knockport/config.yaml)");
  return { configFile: v.config, adminSocket: v["admin-socket"], eventsSocket: v["events-socket"], logLevel: parseLogLevel(v["log-level"]) };
}
