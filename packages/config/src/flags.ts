/** A bad command line: the message names the flag and the fix; the process exits 2. */
export class UsageError extends Error {
  readonly code = "USAGE";
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Parse a port given as a flag (`--http-port 80`); undefined when the flag is absent. */
export function parsePortFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d{1,5}$/.test(value) || n < 1 || n > 65535) {
    throw new UsageError(`${flag}: must be an integer 1-65535 (got "${value}")`);
  }
  return n;
}

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function parseLogLevel(value: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new UsageError(`--log-level: must be one of ${LOG_LEVELS.join(", ")} (got "${value}")`);
  }
  return value as LogLevel;
}

export const DEFAULT_HELPER_SOCKET = "/run/knockport/helper.sock";

/** Flags the helper, the server and `knockport run` share, spelled once (node:util parseArgs options). */
export const SHARED_FLAGS = {
  config: { type: "string", short: "c" },
  "http-port": { type: "string" },
  "https-port": { type: "string" },
  socket: { type: "string", default: DEFAULT_HELPER_SOCKET },
  "log-level": { type: "string", default: "info" },
} as const;

/** Run a node:util parseArgs call; its errors become usage errors (exit 2, no stack trace). */
export function withUsageErrors<R>(parse: () => R): R {
  try {
    return parse();
  } catch (err) {
    throw new UsageError(`${(err as Error).message}; see --help`);
  }
}
