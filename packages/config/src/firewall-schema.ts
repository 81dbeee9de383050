/** Longest step-1 path: the firewall matches `POST <path> ` in chained 16-byte payload compares. */
export const HTTP_POST_PATH_MAX_LENGTH = 64;
export const MAX_DURATION_SECONDS = 366 * 24 * 3600;
export const MAX_STEP2_DURATION_SECONDS = 3600;
/** Largest max_leases (per app, step and address family). */
export const MAX_LEASES_LIMIT = 1_000_000;
/** Upper bound of both HTTPS connection limit keys: iptables' hashlimit refuses a burst above 10000. */
export const HTTPS_CONNECTION_LIMIT_MAX = 10000;
export const DEFAULT_HTTP_PORT = 8080;
export const DEFAULT_HTTPS_PORT = 8443;
export const DEFAULT_HTTPS_CONNECTION_LIMIT_PER_MINUTE = 60;
export const DEFAULT_HTTPS_CONNECTION_LIMIT_BURST = 20;
export const DEFAULT_STEP2_HTTPS_DURATION = 5;
/** Default max_leases: live leases per app, step and address family. */
export const DEFAULT_MAX_LEASES = 100_000;
export const DEFAULT_MASQUERADE = true;
export const DEFAULT_CLOSE_ESTABLISHED = false;
export const HOOK_MAX_ARGS = 64;
export const HOOK_MAX_ARG_LENGTH = 4096;
/** Characters a knock path may hold: unreserved URL characters and "/", so no encoding ambiguity. */
export const POST_PATH_PATTERN = "^/[A-Za-z0-9._~/-]+$";
/**
 * A Linux interface name (1-15 characters, not "." or ".."), limited to characters every backend
 * takes literally: no ":" (alias labels are not interfaces), no "@" (`ip link` decoration), no "+"
 * (an iptables wildcard) and nothing that needs quoting.
 */
export const INTERFACE_PATTERN = "^(?!\\.{1,2}$)[A-Za-z0-9_.-]{1,15}$";

const port = { type: "integer", minimum: 1, maximum: 65535 } as const;
const optionalPort = { ...port, nullable: true } as const;
const iface = { type: "string", pattern: INTERFACE_PATTERN } as const;
const optionalIface = { ...iface, nullable: true } as const;
const optionalBoolean = { type: "boolean", nullable: true } as const;
/** A hook command as an argument list (no shell); checkHookArgv checks program and placeholders. */
const hookArgv = { type: "array", minItems: 1, maxItems: HOOK_MAX_ARGS, items: { type: "string", minLength: 1, maxLength: HOOK_MAX_ARG_LENGTH }, nullable: true } as const;

/**
 * The keys of `global` the firewall uses, as the helper reads them: the full schema (schema.ts)
 * composes these same objects with the server's keys, so both processes read them alike.
 */
export const FIREWALL_GLOBAL_PROPERTIES = {
  http_post_path: { type: "string", minLength: 2, maxLength: HTTP_POST_PATH_MAX_LENGTH, pattern: POST_PATH_PATTERN },
  https_connection_limit_per_minute: { type: "integer", minimum: 0, maximum: HTTPS_CONNECTION_LIMIT_MAX, nullable: true },
  https_connection_limit_burst: { type: "integer", minimum: 1, maximum: HTTPS_CONNECTION_LIMIT_MAX, nullable: true },
  interface_ext: iface,
  interface_int: optionalIface,
  allow_missing_interfaces: { type: "array", maxItems: 64, uniqueItems: true, items: iface, nullable: true },
  http_port: optionalPort,
  https_port: optionalPort,
  waf_http_port: optionalPort,
  waf_https_port: optionalPort,
} as const;

/** The keys of an app the firewall uses (see FIREWALL_GLOBAL_PROPERTIES). */
export const FIREWALL_APP_PROPERTIES = {
  port,
  destination: { type: "string", minLength: 1, maxLength: 64, nullable: true },
  // ajv: a nullable enum must list null itself, or `protocol:` left empty would be refused
  protocol: { type: "string", enum: ["tcp", "udp", null], nullable: true },
  duration: { type: "integer", minimum: 1, maximum: MAX_DURATION_SECONDS },
  step2_https_duration: { type: "integer", minimum: 1, maximum: MAX_STEP2_DURATION_SECONDS, nullable: true },
  max_leases: { type: "integer", minimum: 1, maximum: MAX_LEASES_LIMIT, nullable: true },
  interface_ext: optionalIface,
  interface_int: optionalIface,
  masquerade: optionalBoolean,
  close_established: optionalBoolean,
  on_open: hookArgv,
  on_close: hookArgv,
} as const;

/** Keys only the server reads: the helper's view takes any value there (see docs/design.md, trust boundary). */
export const SERVER_GLOBAL_KEYS = ["https_post_path", "step1_2_rate_limit_per_minute", "rate_limit_ipv6_prefix", "2fa_config_folder", "2fa_skew_periods", "healthcheck_app_name", "waf_trusted_ips", "cluster", "auth_check_listen"] as const;
export const SERVER_APP_KEYS = ["access_key_http", "access_key_https"] as const;

/** The example config's knock paths: refused by every reader, so an unedited config starts nothing. */
export const PUBLISHED_SAMPLE_PATHS: readonly string[] = ["/1-SECRET", "/2-SECRET", "/CHANGE-ME-1", "/CHANGE-ME-2"];
