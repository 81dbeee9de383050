import { randomBytes, randomInt } from "node:crypto";

// The KnockPort config of a test stack: its apps and keys, rendered as the YAML the daemons read.

export interface AppSpec {
  readonly name: string;
  readonly port: number;
  readonly protocol: "tcp" | "udp";
  /** access_key_http[i] pairs with access_key_https[i]. */
  readonly accessKeysHttp: readonly string[];
  readonly accessKeysHttps: readonly string[];
  readonly duration: number;
  readonly step2HttpsDuration: number;
  /** Default "local". */
  readonly destination?: string;
  /** Forwarded apps: masquerade towards interface_int (KnockPort's default: true). */
  readonly masquerade?: boolean;
  /** close_established (KnockPort's default: false). */
  readonly closeEstablished?: boolean;
  /** Command hooks (argument lists), written as on_open / on_close. */
  readonly onOpen?: readonly string[];
  readonly onClose?: readonly string[];
}

export interface ConfigSpec {
  readonly httpPostPath: string;
  readonly httpsPostPath: string;
  readonly rateLimitPerMinute: number;
  /** global.https_connection_limit_per_minute / _burst (not written when absent: KnockPort's defaults, 60 / 20). */
  readonly httpsConnectionLimit?: { readonly perMinute: number; readonly burst: number };
  readonly interfaceExt: string;
  /** global.interface_int (default: not written, so interface_ext). */
  readonly interfaceInt?: string;
  /** global.allow_missing_interfaces (default: not written). */
  readonly allowMissingInterfaces?: readonly string[];
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly apps: readonly AppSpec[];
  /** global.cluster (url, key_prefix); not written when absent. */
  readonly cluster?: { readonly url: string; readonly keyPrefix: string };
}

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** A random string of `length` characters from `alphabet` (crypto-strong). */
export function randomSecret(length: number, alphabet = ALNUM): string {
  let out = "";
  for (let i = 0; i < length; i++) out += alphabet[randomInt(alphabet.length)] ?? "x";
  return out;
}

/** A random knock path of exactly `length` characters, starting with `prefix` (e.g. "/k-"). */
export function randomPath(prefix: string, length: number): string {
  if (!prefix.startsWith("/") || prefix.length >= length) throw new Error(`randomPath: bad prefix "${prefix}" for length ${length}`);
  return prefix + randomSecret(length - prefix.length);
}

/** YAML double-quoted scalar (JSON strings are valid YAML). */
const q = (s: string): string => JSON.stringify(s);

/** Renders the original's YAML layout: `global` plus one key per app. */
export function renderConfigYaml(spec: ConfigSpec): string {
  const lines = [
    "# Written by @knockport/testbed for an end-to-end run; secrets are random per run.",
    "global:",
    `  http_post_path: ${q(spec.httpPostPath)}`,
    `  https_post_path: ${q(spec.httpsPostPath)}`,
    `  step1_2_rate_limit_per_minute: ${spec.rateLimitPerMinute}`,
    ...(spec.httpsConnectionLimit !== undefined
      ? [
          `  https_connection_limit_per_minute: ${spec.httpsConnectionLimit.perMinute}`,
          `  https_connection_limit_burst: ${spec.httpsConnectionLimit.burst}`,
        ]
      : []),
    `  interface_ext: ${q(spec.interfaceExt)}`,
    ...(spec.interfaceInt !== undefined ? [`  interface_int: ${q(spec.interfaceInt)}`] : []),
    ...(spec.allowMissingInterfaces !== undefined ? [`  allow_missing_interfaces: ${JSON.stringify(spec.allowMissingInterfaces)}`] : []),
    `  http_port: ${spec.httpPort}`,
    `  https_port: ${spec.httpsPort}`,
    ...(spec.cluster !== undefined ? ["  cluster:", `    url: ${q(spec.cluster.url)}`, `    key_prefix: ${q(spec.cluster.keyPrefix)}`] : []),
  ];
  for (const app of spec.apps) {
    lines.push(
      "",
      `${app.name}:`,
      `  port: ${app.port}`,
      "  access_key_http:",
      ...app.accessKeysHttp.map((k) => `    - ${q(k)}`),
      "  access_key_https:",
      ...app.accessKeysHttps.map((k) => `    - ${q(k)}`),
      `  destination: ${q(app.destination ?? "local")}`,
      `  protocol: ${app.protocol}`,
      `  duration: ${app.duration}`,
      `  step2_https_duration: ${app.step2HttpsDuration}`,
      ...(app.masquerade !== undefined ? [`  masquerade: ${String(app.masquerade)}`] : []),
      ...(app.closeEstablished !== undefined ? [`  close_established: ${String(app.closeEstablished)}`] : []),
      // a JSON array is a YAML flow sequence
      ...(app.onOpen !== undefined ? [`  on_open: ${JSON.stringify(app.onOpen)}`] : []),
      ...(app.onClose !== undefined ? [`  on_close: ${JSON.stringify(app.onClose)}`] : []),
    );
  }
  return `${lines.join("\n")}\n`;
}

export interface ExampleConfigOptions {
  interfaceExt: string;
  duration?: number;
  step2HttpsDuration?: number;
  /** Length of http_post_path (default 40; at most 64). */
  httpPathLength?: number;
  rateLimitPerMinute?: number;
  /** Default: not written (KnockPort's defaults). */
  httpsConnectionLimit?: { perMinute: number; burst: number };
  httpPort?: number;
  httpsPort?: number;
  /** Key pairs per app (default 2). */
  keyPairs?: number;
}

/** Apps `ssh` (tcp 2222) and `openvpn` (udp 1194) with random paths and key pairs. */
export function exampleConfig(opts: ExampleConfigOptions): ConfigSpec {
  const pairs = opts.keyPairs ?? 2;
  const keys = (tag: string): string[] => Array.from({ length: pairs }, (_, i) => `${tag}${i}-${randomSecret(24)}`);
  const app = (name: string, port: number, protocol: "tcp" | "udp"): AppSpec => ({
    name,
    port,
    protocol,
    accessKeysHttp: keys(`${name}-h`),
    accessKeysHttps: keys(`${name}-s`),
    duration: opts.duration ?? 5,
    step2HttpsDuration: opts.step2HttpsDuration ?? 5,
  });
  return {
    httpPostPath: randomPath("/k1-", opts.httpPathLength ?? 40),
    httpsPostPath: randomPath("/k2-", 32),
    rateLimitPerMinute: opts.rateLimitPerMinute ?? 1000,
    ...(opts.httpsConnectionLimit !== undefined ? { httpsConnectionLimit: opts.httpsConnectionLimit } : {}),
    interfaceExt: opts.interfaceExt,
    httpPort: opts.httpPort ?? 8080,
    httpsPort: opts.httpsPort ?? 8443,
    apps: [app("ssh", 2222, "tcp"), app("openvpn", 1194, "udp")],
  };
}

/** A random token, e.g. for unique labels. */
export function randomTag(bytes = 3): string {
  return randomBytes(bytes).toString("hex");
}
