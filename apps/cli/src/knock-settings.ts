/** `knockport knock`'s settings: flags, environment and settings file, checked before anything is sent. */
import { readFileSync, statSync } from "node:fs";
import { isIP } from "node:net";
import { parseArgs } from "node:util";
import { UsageError, parsePortFlag } from "@knockport/config";

/** Step 1 must fit one packet of at most 500 bytes with IPv6 (40) and TCP headers with options (≤ 60). */
export const MAX_STEP1_REQUEST_BYTES = 400;

const ENV_NAMES = [
  "KNOCKPORT_HOST",
  "KNOCKPORT_APP",
  "KNOCKPORT_HTTP_KEY",
  "KNOCKPORT_HTTPS_KEY",
  "KNOCKPORT_HTTP_PATH",
  "KNOCKPORT_HTTPS_PATH",
  "KNOCKPORT_HTTP_PORT",
  "KNOCKPORT_HTTPS_PORT",
  "KNOCKPORT_CA",
  "KNOCKPORT_TLS_NAME",
  "KNOCKPORT_INSECURE",
  "KNOCKPORT_CHECK_PORT",
] as const;
type SettingName = (typeof ENV_NAMES)[number];

export interface KnockSettings {
  host: string;
  app: string;
  httpKey: string;
  httpsKey: string;
  httpPath: string;
  httpsPath: string;
  httpPort: number;
  httpsPort: number;
  token: string | undefined;
  totpPrompt: boolean;
  ca: string | undefined;
  tlsName: string | undefined;
  insecure: boolean;
  check: { port: number; protocol: "tcp" | "udp" } | undefined;
  family: 0 | 4 | 6;
  step1WaitMs: number;
  step2TimeoutMs: number;
  /** --keep: re-knock before the lease ends until stopped. */
  keep: boolean;
  /** --revoke: close the lease (with --keep: when stopped). */
  revoke: boolean;
  /** --probe-interval: with --keep behind a NAT, how often the --check-port TCP service is tried (0: never). */
  probeIntervalMs: number;
}

/** Parses `KEY=VALUE` lines (`#` comments, optional `export `, optional single or double quotes), as sh would source them. */
export function parseSettingsFile(text: string, file: string): Partial<Record<SettingName, string>> {
  const out: Partial<Record<SettingName, string>> = {};
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const m = /^(?:export\s+)?([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!m) throw new UsageError(`${file}:${i + 1}: expected NAME=VALUE (names: ${ENV_NAMES.join(", ")})`);
    const [, name = "", rawValue = ""] = m;
    if (!(ENV_NAMES as readonly string[]).includes(name)) {
      throw new UsageError(`${file}:${i + 1}: unknown setting ${name}; known: ${ENV_NAMES.join(", ")}`);
    }
    let value = rawValue.trim();
    const q = value[0];
    if ((q === '"' || q === "'") && value.length >= 2 && value.endsWith(q)) value = value.slice(1, -1);
    out[name as SettingName] = value;
  });
  return out;
}

function parseMs(flag: string, value: string | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d{1,6}$/.test(value) || n < 0 || n > max) throw new UsageError(`${flag}: must be milliseconds 0-${max} (got "${value}")`);
  return n;
}

/** Default --probe-interval: how often `--keep` tries the service behind a NAT. */
export const DEFAULT_PROBE_INTERVAL_S = 10;

function parseProbeInterval(value: string | undefined): number {
  if (value === undefined) return DEFAULT_PROBE_INTERVAL_S * 1000;
  const n = Number(value);
  if (!/^\d{1,4}$/.test(value) || (n !== 0 && (n < 2 || n > 3600))) throw new UsageError(`--probe-interval: must be seconds 2-3600, or 0 for no probe (got "${value}")`);
  return n * 1000;
}

function parseCheck(value: string | undefined): KnockSettings["check"] {
  if (value === undefined || value === "") return undefined;
  const m = /^(\d{1,5})(?:\/(tcp|udp))?$/.exec(value);
  const port = m ? parsePortFlag("--check-port", m[1]) : undefined;
  if (!m || port === undefined) throw new UsageError(`--check-port: must be PORT, PORT/tcp or PORT/udp, e.g. 1194/udp (got "${value}")`);
  return { port, protocol: (m[2] as "tcp" | "udp" | undefined) ?? "tcp" };
}

const PATH = /^\/[A-Za-z0-9._~/-]+$/;
const KEY = /^[A-Za-z0-9._~-]{10,128}$/;
const APP = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;

export interface SettingsSources {
  argv: string[];
  env: NodeJS.ProcessEnv;
  readFile?: (file: string) => string;
  warn?: (line: string) => void;
}

/** Flags win over the environment, which wins over the settings file. Throws UsageError naming the flag and the fix. */
export function resolveKnockSettings(src: SettingsSources): KnockSettings | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args: src.argv,
      strict: true,
      allowPositionals: false,
      options: {
        host: { type: "string" },
        app: { type: "string" },
        "http-key": { type: "string" },
        "https-key": { type: "string" },
        "http-path": { type: "string" },
        "https-path": { type: "string" },
        "http-port": { type: "string" },
        "https-port": { type: "string" },
        token: { type: "string" },
        "totp-prompt": { type: "boolean", default: false },
        ca: { type: "string" },
        "tls-name": { type: "string" },
        insecure: { type: "boolean", default: false },
        "check-port": { type: "string" },
        config: { type: "string" },
        "step1-wait": { type: "string" },
        "step2-timeout": { type: "string" },
        keep: { type: "boolean", default: false },
        revoke: { type: "boolean", default: false },
        "probe-interval": { type: "string" },
        ipv4: { type: "boolean", short: "4", default: false },
        ipv6: { type: "boolean", short: "6", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}; see knockport knock --help`);
  }
  const v = parsed.values;
  if (v.help) return "help";

  const configFile = v.config ?? src.env.KNOCKPORT_CONFIG;
  let fromFile: Partial<Record<SettingName, string>> = {};
  if (configFile !== undefined && configFile !== "") {
    const read = src.readFile ?? ((f: string) => readFileSync(f, "utf8"));
    let text: string;
    try {
      text = read(configFile);
    } catch (err) {
      throw new UsageError(`--config ${configFile}: cannot read (${(err as NodeJS.ErrnoException).code ?? "error"}); check the path`);
    }
    fromFile = parseSettingsFile(text, configFile);
    if (src.readFile === undefined) {
      try {
        if ((statSync(configFile).mode & 0o077) !== 0) src.warn?.(`warning: ${configFile} holds keys and is readable by other users; chmod 600 ${configFile}`);
      } catch {
        /* read above worked; a stat failure is not worth stopping for */
      }
    }
  }
  const setting = (flag: string | undefined, name: SettingName): string | undefined => {
    const fromEnv = src.env[name];
    return flag ?? (fromEnv !== undefined && fromEnv !== "" ? fromEnv : undefined) ?? fromFile[name];
  };
  const required = (flag: string, given: string | undefined, name: SettingName, hint: string): string => {
    const value = setting(given, name);
    if (value === undefined || value === "") throw new UsageError(`--${flag} (or ${name}) is required: ${hint}`);
    return value;
  };

  const host = required("host", v.host, "KNOCKPORT_HOST", "the KnockPort server's name or address");
  const app = required("app", v.app, "KNOCKPORT_APP", "the app name as in the server's config");
  if (!APP.test(app)) throw new UsageError(`--app: 1-32 characters A-Z a-z 0-9 _ - starting with a letter or digit (got ${JSON.stringify(app)})`);
  const httpKey = required("http-key", v["http-key"], "KNOCKPORT_HTTP_KEY", "the app's access_key_http");
  const httpsKey = required("https-key", v["https-key"], "KNOCKPORT_HTTPS_KEY", "the app's access_key_https (same position as the HTTP key)");
  for (const [flag, key] of [["--http-key", httpKey], ["--https-key", httpsKey]] as const) {
    if (!KEY.test(key)) throw new UsageError(`${flag}: must be 10-128 characters A-Z a-z 0-9 . _ ~ - (the key is not shown)`);
  }
  const httpPath = required("http-path", v["http-path"], "KNOCKPORT_HTTP_PATH", "global.http_post_path of the server");
  const httpsPath = required("https-path", v["https-path"], "KNOCKPORT_HTTPS_PATH", "global.https_post_path of the server");
  for (const [flag, path, max] of [["--http-path", httpPath, 64], ["--https-path", httpsPath, 1024]] as const) {
    if (!PATH.test(path) || path.length > max) throw new UsageError(`${flag}: must start with "/" and have up to ${max} characters A-Z a-z 0-9 . _ ~ / -`);
  }
  const httpPort = parsePortFlag("--http-port", setting(v["http-port"], "KNOCKPORT_HTTP_PORT")) ?? 8080;
  const httpsPort = parsePortFlag("--https-port", setting(v["https-port"], "KNOCKPORT_HTTPS_PORT")) ?? 8443;

  if (v.token !== undefined && v["totp-prompt"]) throw new UsageError("--token and --totp-prompt: give one of them, not both");
  if (v.token !== undefined && !/^\d{6}$/.test(v.token)) throw new UsageError("--token: must be the 6-digit code of your authenticator app");
  const insecureSetting = setting(undefined, "KNOCKPORT_INSECURE");
  const insecure = v.insecure || insecureSetting === "1" || insecureSetting === "true";
  const ca = setting(v.ca, "KNOCKPORT_CA");
  if (insecure && ca !== undefined) throw new UsageError("--insecure and --ca: give one of them; --ca verifies, --insecure does not");
  const tlsName = setting(v["tls-name"], "KNOCKPORT_TLS_NAME");
  if (tlsName !== undefined && !/^[A-Za-z0-9.-]{1,253}$/.test(tlsName)) throw new UsageError(`--tls-name: must be a host name (got ${JSON.stringify(tlsName)})`);
  if (v.ipv4 && v.ipv6) throw new UsageError("-4 and -6: give at most one");
  if (v.keep && (v.token !== undefined || v["totp-prompt"])) {
    throw new UsageError("--keep cannot re-knock with a 2FA key: each code works once; use a key without 2FA for a kept-open lease");
  }

  const requestBytes = step1Request(hostHeader(host, httpPort), httpPath, step1Body(app, httpKey, v.token ?? "000000")).length;
  if (requestBytes > MAX_STEP1_REQUEST_BYTES) {
    throw new UsageError(
      `step 1 would be ${requestBytes} bytes, more than the ${MAX_STEP1_REQUEST_BYTES} that fit the stealth port's single 500-byte packet; use a shorter --host name (or the address), app name or key`,
    );
  }
  return {
    host,
    app,
    httpKey,
    httpsKey,
    httpPath,
    httpsPath,
    httpPort,
    httpsPort,
    token: v.token,
    totpPrompt: v["totp-prompt"],
    ca,
    tlsName,
    insecure,
    check: parseCheck(setting(v["check-port"], "KNOCKPORT_CHECK_PORT")),
    family: v.ipv4 ? 4 : v.ipv6 ? 6 : 0,
    step1WaitMs: parseMs("--step1-wait", v["step1-wait"], 1000, 10_000),
    step2TimeoutMs: parseMs("--step2-timeout", v["step2-timeout"], 5000, 120_000),
    keep: v.keep,
    revoke: v.revoke,
    probeIntervalMs: parseProbeInterval(v["probe-interval"]),
  };
}

export function step1Body(app: string, key: string, token: string | undefined): string {
  const fields: Record<string, string> = { app, access_key: key };
  if (token !== undefined) fields.token = token;
  return new URLSearchParams(fields).toString();
}

/** `host:port`, an IPv6 address in brackets (`[2001:db8::1]:8080`): for Host headers and messages. */
export function hostHeader(host: string, port: number): string {
  return `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

/** The whole step-1 request: minimal headers (no User-Agent, no Accept), one write, one packet. */
export function step1Request(host: string, path: string, body: string): string {
  return (
    `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}

