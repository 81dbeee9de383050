import { dirname, join } from "node:path";
import type { WafFlags } from "./types.js";

export type { WafFlags };

/** A bad command line: the message names the flag and the fix; the process exits 2. */
export class UsageError extends Error {
  readonly code = "USAGE";
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Parse a port given as a flag (`--http-port 80`); undefined when the flag is absent. */
export function parsePortFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d{1,5}$/.test(value) || n < 1 || n > 65535) throw new UsageError(`${flag}: must be an integer 1-65535 (got "${value}")`);
  return n;
}

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function parseLogLevel(value: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(value)) throw new UsageError(`--log-level: must be one of ${LOG_LEVELS.join(", ")} (got "${value}")`);
  return value as LogLevel;
}

/** The helper's knock socket (the server's: hello, open, counters). */
export const DEFAULT_HELPER_SOCKET = "/run/knockport/helper.sock";
/** The helper's admin socket (grant, close, list, stats): root only unless an admin group is given. */
export const DEFAULT_ADMIN_SOCKET = "/run/knockport/admin.sock";
/** The helper's events socket (watch). */
export const DEFAULT_EVENTS_SOCKET = "/run/knockport/events.sock";
/** The admin and events sockets that go with a knock socket when --admin-socket / --events-socket is not given. */
export const adminSocketBeside = (knockSocket: string): string => join(dirname(knockSocket), "admin.sock");
export const eventsSocketBeside = (knockSocket: string): string => join(dirname(knockSocket), "events.sock");

/** Flags the helper, the server and `knockport run` share, spelled once (node:util parseArgs options). */
export const SHARED_FLAGS = {
  config: { type: "string", short: "c" },
  "http-port": { type: "string" },
  "https-port": { type: "string" },
  socket: { type: "string", default: DEFAULT_HELPER_SOCKET },
  "log-level": { type: "string", default: "info" },
  "waf-http-port": { type: "string" },
  "waf-https-port": { type: "string" },
  "waf-trusted-ips": { type: "string", multiple: true },
} as const;

/** The WAF ports of the flags, each bad value naming its flag (the config loader cross-checks them); server-flags.ts adds the trusted list. */
export function parseWafPortFlags(values: { "waf-http-port"?: string | undefined; "waf-https-port"?: string | undefined }): WafFlags {
  return { wafHttpPort: parsePortFlag("--waf-http-port", values["waf-http-port"]), wafHttpsPort: parsePortFlag("--waf-https-port", values["waf-https-port"]) };
}

/** Run a node:util parseArgs call; its errors become usage errors (exit 2, no stack trace). */
export function withUsageErrors<R>(parse: () => R): R {
  try {
    return parse();
  } catch (err) {
    throw new UsageError(`${(err as Error).message}; see --help`);
  }
}
