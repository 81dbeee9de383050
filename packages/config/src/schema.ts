import type { JSONSchemaType } from "ajv";
import { APP_NAME_PATTERN } from "@knockport/protocol";
import { WAF_TRUSTED_IPS_MAX } from "./waf.js";
import { AUTH_CHECK_LISTEN_HINT } from "./auth-check.js";
import { CLUSTER_HINT, clusterSchema } from "./cluster.js";
import {
  FIREWALL_APP_PROPERTIES as FA,
  FIREWALL_GLOBAL_PROPERTIES as FG,
  HTTP_POST_PATH_MAX_LENGTH,
  HTTPS_CONNECTION_LIMIT_MAX,
  MAX_DURATION_SECONDS,
  MAX_LEASES_LIMIT,
  MAX_STEP2_DURATION_SECONDS,
  POST_PATH_PATTERN,
} from "./firewall-schema.js";
import { HOOK_MAX_ARGS } from "./hooks.js";
import type { RawApp, RawGlobal } from "./types.js";

export const ACCESS_KEY_MIN_LENGTH = 10;
export const ACCESS_KEY_MAX_LENGTH = 128;
export const HTTPS_POST_PATH_MAX_LENGTH = 1024;
/** URL-unreserved characters: sent as-is in the form (no percent-encoding), so a knock with a
 * 128-character key still fits the stealth port's single 500-byte packet. */
export const ACCESS_KEY_PATTERN = "^[A-Za-z0-9._~-]+$";
export const DEFAULT_RATE_LIMIT_PER_MINUTE = 5;
/** One IPv6 subscriber usually holds a whole /64: keyed per address, it would have 2^64 rate limits. */
export const DEFAULT_RATE_LIMIT_IPV6_PREFIX = 64;
/** Shorter prefixes would let one busy network throttle unrelated subscribers. */
export const RATE_LIMIT_IPV6_PREFIX_MIN = 32;
export const DEFAULT_2FA_SKEW_PERIODS = 1;

const keyList = {
  type: "array",
  minItems: 1,
  maxItems: 1000,
  items: {
    type: "string",
    minLength: ACCESS_KEY_MIN_LENGTH,
    maxLength: ACCESS_KEY_MAX_LENGTH,
    pattern: ACCESS_KEY_PATTERN,
  },
} as const;

/**
 * The whole file as the server reads it: the firewall's keys (firewall-schema.ts, the helper's
 * view) are the very same objects, composed here with the keys only the server reads.
 */
export const globalSchema: JSONSchemaType<RawGlobal> = {
  type: "object",
  additionalProperties: false,
  required: ["http_post_path", "https_post_path", "interface_ext"],
  properties: {
    http_post_path: FG.http_post_path,
    https_post_path: {
      type: "string",
      minLength: 2,
      maxLength: HTTPS_POST_PATH_MAX_LENGTH,
      pattern: POST_PATH_PATTERN,
    },
    step1_2_rate_limit_per_minute: { type: "integer", minimum: 1, maximum: 100000, nullable: true },
    rate_limit_ipv6_prefix: { type: "integer", minimum: RATE_LIMIT_IPV6_PREFIX_MIN, maximum: 128, nullable: true },
    https_connection_limit_per_minute: FG.https_connection_limit_per_minute,
    https_connection_limit_burst: FG.https_connection_limit_burst,
    interface_ext: FG.interface_ext,
    interface_int: FG.interface_int,
    allow_missing_interfaces: FG.allow_missing_interfaces,
    "2fa_config_folder": { type: "string", minLength: 1, maxLength: 4096, nullable: true },
    "2fa_skew_periods": { type: "integer", minimum: 0, maximum: 2, nullable: true },
    healthcheck_app_name: { type: "string", pattern: APP_NAME_PATTERN, nullable: true },
    http_port: FG.http_port,
    https_port: FG.https_port,
    waf_http_port: FG.waf_http_port,
    waf_https_port: FG.waf_https_port,
    waf_trusted_ips: {
      type: "array",
      maxItems: WAF_TRUSTED_IPS_MAX,
      items: { type: "string", minLength: 1, maxLength: 49 },
      nullable: true,
    },
    cluster: clusterSchema,
    auth_check_listen: { type: "string", minLength: 1, maxLength: 200, nullable: true },
  },
};

export const appSchema: JSONSchemaType<RawApp> = {
  type: "object",
  additionalProperties: false,
  required: ["port", "access_key_http", "access_key_https", "duration"],
  properties: {
    port: FA.port,
    access_key_http: keyList,
    access_key_https: keyList,
    destination: FA.destination,
    protocol: FA.protocol,
    duration: FA.duration,
    step2_https_duration: FA.step2_https_duration,
    max_leases: FA.max_leases,
    interface_ext: FA.interface_ext,
    interface_int: FA.interface_int,
    masquerade: FA.masquerade,
    close_established: FA.close_established,
    on_open: FA.on_open,
    on_close: FA.on_close,
  },
};

/** How to fix each schema keyword, in words an admin can act on. */
export const KEY_HINTS: Record<string, string> = {
  http_post_path: `a path such as /k-7Hq2x starting with "/", 2-${HTTP_POST_PATH_MAX_LENGTH} characters of A-Z a-z 0-9 . _ ~ / -`,
  https_post_path: `a path starting with "/", up to ${HTTPS_POST_PATH_MAX_LENGTH} characters of A-Z a-z 0-9 . _ ~ / -`,
  step1_2_rate_limit_per_minute: "an integer 1-100000 (requests per minute per client address and step)",
  rate_limit_ipv6_prefix: `an integer ${RATE_LIMIT_IPV6_PREFIX_MIN}-128 (IPv6 clients share one rate limit per prefix of this length; 128: per address)`,
  https_connection_limit_per_minute: `an integer 0-${HTTPS_CONNECTION_LIMIT_MAX} (new connections per minute per client address to the HTTPS knock port; 0 turns the limit off)`,
  https_connection_limit_burst: `an integer 1-${HTTPS_CONNECTION_LIMIT_MAX} (new connections one address may open at once before https_connection_limit_per_minute applies)`,
  interface_ext: "a network interface name such as eth0 (1-15 characters of A-Z a-z 0-9 _ . -)",
  interface_int: "a network interface name such as eth1 (1-15 characters of A-Z a-z 0-9 _ . -)",
  allow_missing_interfaces: "a list of interface names used as interface_ext / interface_int that may be missing at start, such as [ppp0, wg0]",
  "2fa_config_folder": "a folder path (relative paths are taken from the config file's folder)",
  "2fa_skew_periods": "0, 1 or 2 (TOTP periods before and after now whose token is still accepted)",
  healthcheck_app_name: "a name of 1-32 characters A-Z a-z 0-9 _ - that is not an app",
  http_port: "an integer 1-65535",
  https_port: "an integer 1-65535",
  waf_http_port: "an integer 1-65535 (the public HTTP port nginx listens on)",
  waf_https_port: "an integer 1-65535 (the public HTTPS port nginx listens on)",
  waf_trusted_ips: `a list of at most ${WAF_TRUSTED_IPS_MAX} addresses or networks such as [127.0.0.1, "::1"]`,
  cluster: CLUSTER_HINT,
  auth_check_listen: AUTH_CHECK_LISTEN_HINT,
  port: "an integer 1-65535",
  access_key_http: `a list of keys, each ${ACCESS_KEY_MIN_LENGTH}-${ACCESS_KEY_MAX_LENGTH} characters of A-Z a-z 0-9 . _ ~ -`,
  access_key_https: `a list of keys, each ${ACCESS_KEY_MIN_LENGTH}-${ACCESS_KEY_MAX_LENGTH} characters of A-Z a-z 0-9 . _ ~ -`,
  /** One entry of access_key_http / access_key_https (messages never show the key itself). */
  access_key_item: `a key of ${ACCESS_KEY_MIN_LENGTH}-${ACCESS_KEY_MAX_LENGTH} characters of A-Z a-z 0-9 . _ ~ -`,
  destination: 'either "local" or the LAN host as IPv4, IPv4:PORT, IPv6, [IPv6] or [IPv6]:PORT (a unicast address)',
  protocol: 'either "tcp" or "udp"',
  masquerade: "true or false (only used with destination: IP[:PORT])",
  close_established: "true or false (delete the client's conntrack entries for this app when its lease ends)",
  on_open: `a command as a list of 1-${HOOK_MAX_ARGS} arguments, the first an absolute program path, e.g. ["/usr/local/bin/sg-open", "{ip}", "{port}"]`,
  on_close: `a command as a list of 1-${HOOK_MAX_ARGS} arguments, the first an absolute program path, e.g. ["/usr/local/bin/sg-close", "{ip}", "{port}"]`,
  duration: `an integer number of seconds 1-${MAX_DURATION_SECONDS}`,
  step2_https_duration: `an integer number of seconds 1-${MAX_STEP2_DURATION_SECONDS}`,
  max_leases: `an integer 1-${MAX_LEASES_LIMIT} (live leases per step and address family)`,
};
