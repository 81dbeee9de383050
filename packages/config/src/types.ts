import type { IpAddress, Port, TransportProtocol } from "@knockport/protocol";
import type { TrustedProxy } from "./waf.js";
import type { ClusterConfig } from "./cluster.js";
import type { AuthCheckListen } from "./auth-check.js";
import type { RawCluster } from "./cluster.js";

export type Destination =
  | { readonly kind: "local" }
  | { readonly kind: "forward"; readonly ip: IpAddress; readonly port: Port };

/** An app as the root helper reads it (loadFirewallConfig): what its rules and leases need. */
export interface FirewallApp {
  readonly name: string;
  readonly port: Port;
  readonly protocol: TransportProtocol;
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
   * Commands knockport-hooks runs (no shell) after a service lease opens / when it ends (expiry,
   * revoke, or expired while the helper was down). Placeholders {ip} {port} {protocol}
   * {duration} {app} are replaced inside each argument. Undefined when not configured.
   */
  readonly onOpen: readonly string[] | undefined;
  readonly onClose: readonly string[] | undefined;
}

/** An app as the server reads it (loadConfig): the firewall's view plus the access keys. */
export interface AppConfig extends FirewallApp {
  /** access_key_http[i] pairs with access_key_https[i]. */
  readonly accessKeysHttp: readonly string[];
  readonly accessKeysHttps: readonly string[];
}

export interface FirewallGlobal {
  readonly httpPostPath: string;
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
}

export interface GlobalConfig extends FirewallGlobal {
  readonly httpsPostPath: string;
  readonly rateLimitPerMinute: number;
  /** IPv6 clients are rate limited per prefix of this length (IPv4: per address). */
  readonly rateLimitIpv6Prefix: number;
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

/** The config as the root helper reads it: every key its rules, leases and hook events use. */
export interface FirewallConfig {
  /** The file as the admin named it, for messages. */
  readonly file: string;
  readonly global: FirewallGlobal;
  /** Knock ports after flags (which win) and global keys. */
  readonly httpPort: Port;
  readonly httpsPort: Port;
  readonly apps: readonly FirewallApp[];
  /** WAF mode (nginx in front on public ports); absent when KnockPort faces clients itself. */
  readonly waf?: FirewallWaf | undefined;
}

/** The whole config, as the server and `knockport check-config` read it. */
export interface KnockportConfig extends FirewallConfig {
  readonly global: GlobalConfig;
  readonly apps: readonly AppConfig[];
  readonly waf?: WafConfig | undefined;
}

export interface FirewallWaf {
  /** The public ports nginx listens on: the firewall's stealth and HTTPS-set rules guard these. */
  readonly httpPort: Port;
  readonly httpsPort: Port;
}

export interface WafConfig extends FirewallWaf {
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
  /** --waf-trusted-ips entries: added to global.waf_trusted_ips, never replacing it (the server's only). */
  wafTrustedIps?: readonly string[] | undefined;
}

/** The YAML file as written: snake_case keys exactly as the original tool used them. */
export interface RawFirewallGlobal {
  http_post_path: string;
  https_connection_limit_per_minute?: number;
  https_connection_limit_burst?: number;
  interface_ext: string;
  interface_int?: string;
  allow_missing_interfaces?: string[];
  http_port?: number;
  https_port?: number;
  waf_http_port?: number;
  waf_https_port?: number;
}
export interface RawGlobal extends RawFirewallGlobal {
  https_post_path: string;
  step1_2_rate_limit_per_minute?: number;
  rate_limit_ipv6_prefix?: number;
  "2fa_config_folder"?: string;
  "2fa_skew_periods"?: number;
  healthcheck_app_name?: string;
  waf_trusted_ips?: string[];
  cluster?: RawCluster;
  auth_check_listen?: string;
}
export interface RawFirewallApp {
  port: number;
  destination?: string;
  protocol?: "tcp" | "udp";
  duration: number;
  step2_https_duration?: number;
  max_leases?: number;
  interface_ext?: string;
  interface_int?: string;
  masquerade?: boolean;
  close_established?: boolean;
  on_open?: string[];
  on_close?: string[];
}
export interface RawApp extends RawFirewallApp {
  access_key_http: string[];
  access_key_https: string[];
}

/** checkInterfaces: the config's interfaces this host lacks. */
export interface InterfaceCheck {
  /** Missing and listed in global.allow_missing_interfaces: the firewall fails closed on them until they appear. */
  readonly waiting: string[];
  /** One line per missing interface that is not allowed to be missing. */
  readonly problems: string[];
  /** The names of those (missing, not in global.allow_missing_interfaces). */
  readonly unlisted: string[];
}

/** What the WAF flags say; undefined fields leave the config keys (or WAF mode off) in place. */
export interface WafFlags {
  wafHttpPort: number | undefined;
  wafHttpsPort: number | undefined;
  /** Every entry of every --waf-trusted-ips, in order (each flag is a comma-separated list); only the server reads them. */
  wafTrustedIps?: string[] | undefined;
}
