import type { IpAddress, Port, TransportProtocol } from "@knockport/protocol";
import type { TrustedProxy } from "./waf.js";
import type { ClusterConfig } from "./cluster.js";
import type { AuthCheckListen } from "./auth-check.js";

export type Destination =
  | { readonly kind: "local" }
  | { readonly kind: "forward"; readonly ip: IpAddress; readonly port: Port };

export interface AppConfig {
  readonly name: string;
  readonly port: Port;
  readonly protocol: TransportProtocol;
  /** access_key_http[i] pairs with access_key_https[i]. */
  readonly accessKeysHttp: readonly string[];
  readonly accessKeysHttps: readonly string[];
  readonly destination: Destination;
  readonly durationSeconds: number;
  readonly step2HttpsDurationSeconds: number;
  /** Live leases at most per step and address family (`max_leases`); one more is refused with TOO_MANY_LEASES. */
  readonly maxLeases: number;
  readonly interfaceExt: string;
  readonly interfaceInt: string;
  /**
   * Forwarded apps only: rewrite the client's source address to interface_int's address on the
   * way to the LAN host (`masquerade: true`, the default), or keep it (the LAN host must then
   * route its replies back through this host).
   */
  readonly masquerade: boolean;
  /**
   * When a service lease ends (expiry, revoke, --service-rule-cleanup-on-shutdown), the helper also
   * deletes the client's conntrack entries for this app (`close_established: true`; default false).
   */
  readonly closeEstablished: boolean;
  /**
   * Commands the helper runs (no shell) after a service lease opens / when it ends (expiry,
   * revoke, or expired while the helper was down). Placeholders {ip} {port} {protocol}
   * {duration} {app} are replaced inside each argument. Undefined when not configured.
   */
  readonly onOpen: readonly string[] | undefined;
  readonly onClose: readonly string[] | undefined;
}

export interface GlobalConfig {
  readonly httpPostPath: string;
  readonly httpsPostPath: string;
  readonly rateLimitPerMinute: number;
  /** IPv6 clients are rate limited per prefix of this length (IPv4: per address). */
  readonly rateLimitIpv6Prefix: number;
  /**
   * Firewall limit of NEW TCP connections per source address to the (public) HTTPS knock port, for
   * addresses that passed step 1; over it the SYN is dropped before any TLS work. Undefined: off
   * (`https_connection_limit_per_minute: 0`).
   */
  readonly httpsConnectionLimit: HttpsConnectionLimit | undefined;
  readonly interfaceExt: string;
  readonly interfaceInt: string;
  /**
   * Interfaces that may be missing (ppp, VPN): the helper starts without them and drops their apps'
   * ports on every interface until they appear. Any other missing interface is refused at start.
   */
  readonly allowMissingInterfaces?: readonly string[];
  /** Absolute path. */
  readonly twoFactorFolder: string;
  /** TOTP tokens of this many periods before and after the current one are accepted too. */
  readonly twoFactorSkewPeriods: number;
  readonly healthcheckAppName: string | undefined;
  /** Several gateways sharing state through Valkey/Redis (`global.cluster`); undefined: this gateway alone. */
  readonly cluster: ClusterConfig | undefined;
  /** The server's auth-check listener for reverse proxies (`auth_check_listen`); undefined: off. */
  readonly authCheckListen?: AuthCheckListen | undefined;
}

export interface HttpsConnectionLimit {
  readonly perMinute: number;
  readonly burst: number;
}

export interface KnockportConfig {
  /** The file as the admin named it, for messages. */
  readonly file: string;
  readonly global: GlobalConfig;
  /** Knock ports after flags (which win) and global keys. */
  readonly httpPort: Port;
  readonly httpsPort: Port;
  readonly apps: readonly AppConfig[];
  /** WAF mode (nginx in front on public ports); absent when KnockPort faces clients itself. */
  readonly waf?: WafConfig | undefined;
}

export interface WafConfig {
  /** The public ports nginx listens on: the firewall's stealth and HTTPS-set rules guard these. */
  readonly httpPort: Port;
  readonly httpsPort: Port;
  /** Peers whose X-Real-IP / X-Forwarded-For the server believes (deduplicated, in the order given). */
  readonly trustedProxies: readonly TrustedProxy[];
  /** True when nobody named a proxy and the loopback default applies. */
  readonly trustedProxiesDefault: boolean;
}

export interface PortOverrides {
  httpPort?: number | undefined;
  httpsPort?: number | undefined;
  /** --waf-http-port / --waf-https-port: win over global.waf_http_port / global.waf_https_port. */
  wafHttpPort?: number | undefined;
  wafHttpsPort?: number | undefined;
  /** --waf-trusted-ips entries: added to global.waf_trusted_ips, never replacing it. */
  wafTrustedIps?: readonly string[] | undefined;
}

export const DEFAULT_HTTP_PORT = 8080;
export const DEFAULT_HTTPS_PORT = 8443;
export const DEFAULT_RATE_LIMIT_PER_MINUTE = 5;
/** One IPv6 subscriber usually holds a whole /64: keyed per address, it would have 2^64 rate limits. */
export const DEFAULT_RATE_LIMIT_IPV6_PREFIX = 64;
/** Shorter prefixes would let one busy network throttle unrelated subscribers. */
export const RATE_LIMIT_IPV6_PREFIX_MIN = 32;
export const DEFAULT_HTTPS_CONNECTION_LIMIT_PER_MINUTE = 60;
export const DEFAULT_HTTPS_CONNECTION_LIMIT_BURST = 20;
export const DEFAULT_STEP2_HTTPS_DURATION = 5;
/** Default max_leases: live leases per app, step and address family. */
export const DEFAULT_MAX_LEASES = 100_000;
export const DEFAULT_2FA_SKEW_PERIODS = 1;
export const DEFAULT_MASQUERADE = true;
export const DEFAULT_CLOSE_ESTABLISHED = false;
