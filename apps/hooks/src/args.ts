import { parseArgs } from "node:util";
import { UsageError, parseLogLevel, withUsageErrors, type LogLevel } from "@knockport/config";

export interface HooksOptions {
  eventsSocket: string;
  stateDir: string;
  metricsFile: string | undefined;
  concurrency: number;
  timeoutMs: number;
  logLevel: LogLevel;
}

export const DEFAULT_WATCH_SOCKET = "/run/knockport/events.sock";

export const HOOKS_USAGE = `Usage: knockport-hooks [options]

Runs the apps' on_open / on_close commands (config keys of each app) as an unprivileged user, from
the lease events of knockport-helper. A failed on_close is retried with backoff until it succeeds,
also across restarts (the state dir keeps what is still open).

      --events-socket PATH  the helper's events socket to subscribe on (default ${DEFAULT_WATCH_SOCKET})
      --state-dir DIR       where the addresses still to be closed are kept (default
                            /var/lib/knockport-hooks)
      --metrics-file FILE   write Prometheus metrics there (node_exporter textfile collector)
      --concurrency N       commands running at once, 1-64 (default 4)
      --timeout-seconds N   per command, then it is killed, 1-600 (default 10)
      --log-level LEVEL     fatal, error, warn, info (default), debug
  -h, --help                show this help`;

function intFlag(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d{1,6}$/.test(value) || n < min || n > max) throw new UsageError(`${flag}: must be an integer ${min}-${max} (got "${value}")`);
  return n;
}

/** Undefined for --help. */
export function parseHooksArgs(argv: readonly string[]): HooksOptions | undefined {
  const { values } = withUsageErrors(() =>
    parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        "events-socket": { type: "string", default: DEFAULT_WATCH_SOCKET },
        "state-dir": { type: "string", default: "/var/lib/knockport-hooks" },
        "metrics-file": { type: "string" },
        concurrency: { type: "string", default: "4" },
        "timeout-seconds": { type: "string", default: "10" },
        "log-level": { type: "string", default: "info" },
        help: { type: "boolean", short: "h" },
      },
    }),
  );
  if (values.help) return undefined;
  for (const flag of ["events-socket", "state-dir", "metrics-file"] as const) {
    const v = values[flag];
    if (v !== undefined && !v.startsWith("/")) throw new UsageError(`--${flag}: must be an absolute path (got "${v}")`);
  }
  return {
    eventsSocket: values["events-socket"],
    stateDir: values["state-dir"],
    metricsFile: values["metrics-file"],
    concurrency: intFlag("--concurrency", values.concurrency, 1, 64),
    timeoutMs: intFlag("--timeout-seconds", values["timeout-seconds"], 1, 600) * 1000,
    logLevel: parseLogLevel(values["log-level"]),
  };
}
