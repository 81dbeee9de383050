import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import yaml from "js-yaml";
import { APP_NAME_PATTERN, parseIpAddress, parsePort, type Port } from "@knockport/protocol";
import { ConfigError } from "./errors.js";
import { AUTH_CHECK_LISTEN_HINT, parseAuthCheckListen } from "./auth-check.js";
import { appSchema, globalSchema, KEY_HINTS, type RawApp, type RawGlobal } from "./schema.js";
import { checkHookArgv } from "./hooks.js";
import { clusterFromRaw } from "./cluster.js";
import { DEFAULT_WAF_TRUSTED_IPS, WAF_TRUSTED_IP_HINT, WAF_TRUSTED_IPS_MAX, formatTrustedProxy, parseTrustedProxy, type TrustedProxy } from "./waf.js";
import {
  DEFAULT_HTTP_PORT,
  DEFAULT_HTTPS_PORT,
  DEFAULT_RATE_LIMIT_PER_MINUTE,
  DEFAULT_RATE_LIMIT_IPV6_PREFIX,
  DEFAULT_HTTPS_CONNECTION_LIMIT_BURST,
  DEFAULT_HTTPS_CONNECTION_LIMIT_PER_MINUTE,
  DEFAULT_STEP2_HTTPS_DURATION,
  DEFAULT_MAX_LEASES,
  DEFAULT_2FA_SKEW_PERIODS,
  DEFAULT_MASQUERADE,
  DEFAULT_CLOSE_ESTABLISHED,
  type AppConfig,
  type Destination,
  type KnockportConfig,
  type PortOverrides,
  type WafConfig,
} from "./types.js";

/**
 * Paths nobody may run with: the original's sample config (anyone who read its README knows them)
 * and the placeholders of config/config.example.yaml.
 */
export const PUBLISHED_SAMPLE_PATHS: readonly string[] = ["/1-SECRET", "/2-SECRET", "/CHANGE-ME-1", "/CHANGE-ME-2"];

const MAX_CONFIG_BYTES = 1024 * 1024;

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: false });
const validateGlobal: ValidateFunction<RawGlobal> = ajv.compile(globalSchema);
const validateApp: ValidateFunction<RawApp> = ajv.compile(appSchema);
const appNameRegex = new RegExp(APP_NAME_PATTERN);

/** One validator per key, so cross-checks can use every key that is valid on its own. */
function fieldValidators(properties: Record<string, object>): Map<string, ValidateFunction> {
  return new Map(Object.entries(properties).map(([key, schema]) => [key, ajv.compile(schema)]));
}
const globalFields = fieldValidators(globalSchema.properties as Record<string, object>);
const appFields = fieldValidators(appSchema.properties as Record<string, object>);

/** The keys of `raw` that are present, not null, and valid by themselves. */
function validFields<T>(raw: Record<string, unknown>, validators: Map<string, ValidateFunction>): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [key, validate] of validators) {
    const value = raw[key];
    if (value !== undefined && value !== null && validate(value)) out[key] = value;
  }
  return out as Partial<T>;
}

/** The string entries of a YAML list, by index (anything else as undefined). */
function stringItems(value: unknown): (string | undefined)[] {
  return Array.isArray(value) ? value.map((v) => (typeof v === "string" ? v : undefined)) : [];
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** A value as the admin wrote it, short; numbers as themselves (JSON would print NaN as null). */
function show(value: unknown): string {
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  if (typeof value === "string" && value.length > 50) {
    return `${JSON.stringify(value.slice(0, 40))}... (${value.length} characters)`;
  }
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** What a secret value is, without the value. */
function showSecret(value: unknown): string {
  if (Array.isArray(value)) return value.length === 0 ? "an empty list" : `a list of ${value.length}`;
  if (value === null) return "an empty value";
  if (typeof value === "string") return "a string; the value is not shown";
  if (typeof value === "number" || typeof value === "boolean") return `a YAML ${typeof value}; quote the key`;
  if (typeof value === "object") return "a mapping";
  return typeof value;
}

function valueAt(root: unknown, pointer: string): unknown {
  let node = root;
  for (const part of pointer.split("/").slice(1)) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string, unknown>)[part.replace(/~1/g, "/").replace(/~0/g, "~")];
  }
  return node;
}

const KEY_ITEM_HINT = KEY_HINTS.access_key_item ?? "a key";

/**
 * Turn one ajv error into "key.path: what is wrong (got X); how to fix". Values under access-key
 * lists are never echoed: they are secrets and messages end up in logs.
 */
function describe(section: string, root: Record<string, unknown>, err: ErrorObject): string {
  const parts = err.instancePath
    .split("/")
    .slice(1)
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  const pathParts = [section, ...parts];
  if (err.keyword === "additionalProperties") {
    const extra = (err.params as { additionalProperty: string }).additionalProperty;
    const known = Object.keys((section === "global" ? globalSchema : appSchema).properties).join(", ");
    return `${[...pathParts, extra].join(".")}: unknown key; remove it or check its spelling (known keys: ${known})`;
  }
  if (err.keyword === "required") {
    const missing = (err.params as { missingProperty: string }).missingProperty;
    return `${[...pathParts, missing].join(".")}: required key is missing; add ${KEY_HINTS[missing] ?? "it"}`;
  }
  const key = parts[0] ?? section;
  const value = valueAt(root, err.instancePath);
  if (key.startsWith("access_key")) {
    const hint = parts.length > 1 ? KEY_ITEM_HINT : (KEY_HINTS[key] ?? `valid (${err.message ?? ""})`);
    return `${pathParts.join(".")}: must be ${hint} (got ${showSecret(value)})`;
  }
  return `${pathParts.join(".")}: must be ${KEY_HINTS[key] ?? `valid (${err.message ?? ""})`} (got ${show(value)})`;
}

const BRACKETED_IPV6 = /^\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?$/;
const DOTTED_IPV4 = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$/;
const BARE_IPV6 = /^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$/;

/**
 * Parse an app's `destination`: `local`, or the LAN host the service port is forwarded to as
 * `[IPv6]`, `[IPv6]:PORT`, `IPv4`, `IPv4:PORT` or a bare IPv6 (no port: `2001:db8::5:2222` is an
 * address). The address must be unicast (parseIpAddress) and is returned in canonical form; the
 * port defaults to the service port. Undefined when the text is none of these.
 */
export function parseDestination(text: string, servicePort: Port): Destination | undefined {
  if (text === "local") return { kind: "local" };
  let hostText: string | undefined;
  let portText: string | undefined;
  const bracketed = BRACKETED_IPV6.exec(text);
  const dotted = DOTTED_IPV4.exec(text);
  if (bracketed) {
    hostText = bracketed[1];
    portText = bracketed[2];
    if (!hostText?.includes(":")) return undefined; // [192.0.2.10] is not an IPv6 address
  } else if (dotted) {
    hostText = dotted[1];
    portText = dotted[2];
  } else if (BARE_IPV6.test(text)) {
    hostText = text;
  }
  const ip = hostText === undefined ? undefined : parseIpAddress(hostText);
  if (!ip) return undefined;
  const port = portText === undefined ? servicePort : parsePort(Number(portText));
  if (!port) return undefined;
  return { kind: "forward", ip, port };
}

/** Dot segments are rewritten by clients (curl, browsers) before sending, so such a knock never matches. */
function hasDotSegment(path: string): boolean {
  return path.split("/").some((segment) => segment === "." || segment === "..");
}

function readYaml(file: string): unknown {
  let text: string;
  try {
    const buf = readFileSync(file);
    if (buf.length > MAX_CONFIG_BYTES) {
      throw new ConfigError("CONFIG_INVALID", file, [`${file}: file is larger than 1 MiB; is this the right file?`]);
    }
    text = buf.toString("utf8");
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw new ConfigError("CONFIG_NOT_FOUND", file, [
        `${file}: no such file; pass the config with -c/--config (see config/config.example.yaml)`,
      ]);
    }
    throw new ConfigError("CONFIG_UNREADABLE", file, [
      `${file}: cannot read (${code ?? "error"}); check the path and its permissions`,
    ]);
  }
  try {
    return yaml.load(text, { schema: yaml.CORE_SCHEMA, filename: file, json: false });
  } catch (err) {
    const mark = (err as { mark?: { line: number; column: number } }).mark;
    const where = mark ? ` at line ${mark.line + 1}, column ${mark.column + 1}` : "";
    const reason = (err as { reason?: string }).reason ?? "invalid YAML";
    throw new ConfigError("CONFIG_YAML", file, [`${file}: YAML syntax error${where}: ${reason}; fix the file's syntax`]);
  }
}

/**
 * Read, validate and normalise a KnockPort config. Flags in `overrides` win over `global.http_port`
 * / `global.https_port`. Throws ConfigError listing every problem found, never a partial config.
 */
export function loadConfig(file: string, overrides: PortOverrides = {}): KnockportConfig {
  const doc = readYaml(file);
  return parseConfig(doc, file, overrides);
}

interface KnockPortChoice {
  port: Port | undefined;
  /** The flag or key to name at the start of a message about this port. */
  key: string;
  /** Where the value came from, in the words an admin would search for. */
  origin: string;
}

function knockPort(
  flag: string,
  key: string,
  override: number | undefined,
  fromConfig: number | undefined,
  fallback: number,
): KnockPortChoice {
  if (override !== undefined) return { port: parsePort(override), key: flag, origin: flag };
  if (fromConfig !== undefined) return { port: parsePort(fromConfig), key, origin: key };
  return { port: parsePort(fallback), key, origin: `the default; ${key} or ${flag} moves it` };
}

/**
 * WAF mode: both public ports or neither; they differ from each other and from KnockPort's own
 * ports. The trusted list is global.waf_trusted_ips plus every --waf-trusted-ips entry (a flag
 * adds, never replaces); loopback only when nobody named a proxy.
 */
function wafChoice(
  overrides: PortOverrides,
  g: Partial<RawGlobal>,
  http: KnockPortChoice,
  https: KnockPortChoice,
  fail: (msg: string) => void,
): { waf: WafConfig | undefined; choices: KnockPortChoice[] } {
  const pick = (flag: string, key: string, override: number | undefined, fromConfig: number | undefined): KnockPortChoice | undefined => {
    if (override !== undefined) return { port: parsePort(override), key: flag, origin: flag };
    if (fromConfig !== undefined) return { port: parsePort(fromConfig), key, origin: key };
    return undefined;
  };
  const wafHttp = pick("--waf-http-port", "global.waf_http_port", overrides.wafHttpPort, g.waf_http_port);
  const wafHttps = pick("--waf-https-port", "global.waf_https_port", overrides.wafHttpsPort, g.waf_https_port);
  const fromFile = g.waf_trusted_ips ?? [];
  const fromFlags = overrides.wafTrustedIps ?? [];
  const trusted: TrustedProxy[] = [];
  const seen = new Set<string>();
  const take = (text: string, where: string): void => {
    const p = parseTrustedProxy(text);
    if (!p) {
      fail(`${where}: must be ${WAF_TRUSTED_IP_HINT} (got ${show(text)})`);
      return;
    }
    const key = formatTrustedProxy(p);
    if (!seen.has(key)) trusted.push(p);
    seen.add(key);
  };
  fromFile.forEach((t, i) => take(t, `global.waf_trusted_ips.${i}`));
  for (const t of fromFlags) take(t, "--waf-trusted-ips");
  if (trusted.length > WAF_TRUSTED_IPS_MAX) {
    fail(`--waf-trusted-ips: at most ${WAF_TRUSTED_IPS_MAX} entries together with global.waf_trusted_ips (got ${trusted.length}); use networks such as 10.0.0.0/24`);
  }

  if (!wafHttp && !wafHttps) {
    if (fromFile.length + fromFlags.length > 0) {
      const where = fromFlags.length > 0 ? "--waf-trusted-ips" : "global.waf_trusted_ips";
      fail(`${where}: only used in WAF mode; also set --waf-http-port and --waf-https-port (or global.waf_http_port and global.waf_https_port), or remove it`);
    }
    return { waf: undefined, choices: [] };
  }
  if (!wafHttp || !wafHttps) {
    const given = (wafHttp ?? wafHttps) as KnockPortChoice;
    const missing = wafHttp ? "--waf-https-port (or global.waf_https_port)" : "--waf-http-port (or global.waf_http_port)";
    fail(`${given.key}: WAF mode needs both public ports; also set ${missing}`);
    return { waf: undefined, choices: [] };
  }
  if (!wafHttp.port) fail(`${wafHttp.key}: must be an integer 1-65535 (got ${show(overrides.wafHttpPort)})`);
  if (!wafHttps.port) fail(`${wafHttps.key}: must be an integer 1-65535 (got ${show(overrides.wafHttpsPort)})`);
  const knock: [string, KnockPortChoice][] = [["HTTP knock port", http], ["HTTPS knock port", https]];
  const clashes: [string, KnockPortChoice, [string, KnockPortChoice][]][] = [
    ["WAF HTTP port", wafHttp, knock],
    ["WAF HTTPS port", wafHttps, [...knock, ["WAF HTTP port", wafHttp]]],
  ];
  for (const [what, choice, others] of clashes) {
    for (const [otherWhat, other] of others) {
      if (choice.port && choice.port === other.port) {
        fail(`${choice.key}: the ${what} (${choice.origin}) must differ from the ${otherWhat} (${other.origin}); both are ${choice.port}`);
      }
    }
  }
  if (!wafHttp.port || !wafHttps.port) return { waf: undefined, choices: [] };
  const defaulted = trusted.length === 0;
  const trustedProxies = defaulted ? DEFAULT_WAF_TRUSTED_IPS.map((t) => parseTrustedProxy(t) as TrustedProxy) : trusted;
  return {
    waf: { httpPort: wafHttp.port, httpsPort: wafHttps.port, trustedProxies, trustedProxiesDefault: defaulted },
    choices: [wafHttp, wafHttps],
  };
}

export function parseConfig(doc: unknown, file: string, overrides: PortOverrides = {}): KnockportConfig {
  const problems: string[] = [];
  const fail = (msg: string): void => {
    const line = `${file}: ${msg}`;
    if (!problems.includes(line)) problems.push(line);
  };
  if (!isMapping(doc)) {
    throw new ConfigError("CONFIG_INVALID", file, [
      `${file}: must be a YAML mapping with a "global" key and one key per app (see config/config.example.yaml)`,
    ]);
  }
  const root = doc;

  // global: report schema problems, then go on with the keys that are valid by themselves, so
  // every problem of the file is reported in one run.
  const rawGlobal = root.global;
  let globalValid = false;
  let g: Partial<RawGlobal> = {};
  if (rawGlobal === undefined) {
    fail(`global: required section is missing; add it (see config/config.example.yaml)`);
  } else if (!isMapping(rawGlobal)) {
    fail(`global: must be a mapping with http_post_path, https_post_path and interface_ext (got ${show(rawGlobal)})`);
  } else {
    globalValid = validateGlobal(rawGlobal);
    if (!globalValid) for (const e of validateGlobal.errors ?? []) fail(describe("global", rawGlobal, e));
    g = validFields<RawGlobal>(rawGlobal, globalFields);
  }

  const appEntries = Object.entries(root).filter(([name]) => name !== "global");
  if (appEntries.length === 0) fail(`no apps configured; add at least one app key next to "global"`);

  const http = knockPort("--http-port", "global.http_port", overrides.httpPort, g.http_port, DEFAULT_HTTP_PORT);
  const https = knockPort("--https-port", "global.https_port", overrides.httpsPort, g.https_port, DEFAULT_HTTPS_PORT);
  // only a flag can be invalid here: a bad global.http_port was reported above and is not used
  if (!http.port) fail(`${http.key}: must be an integer 1-65535 (got ${show(overrides.httpPort)})`);
  if (!https.port) fail(`${https.key}: must be an integer 1-65535 (got ${show(overrides.httpsPort)})`);
  if (http.port && http.port === https.port) {
    fail(
      `${https.key}: the HTTPS knock port (${https.origin}) must differ from the HTTP knock port (${http.origin}); both are ${http.port}`,
    );
  }

  const { waf, choices: wafChoices } = wafChoice(overrides, g, http, https, fail);

  if (g.http_post_path !== undefined && g.http_post_path === g.https_post_path) {
    fail(`global.https_post_path: must differ from global.http_post_path, or step 2 would be reachable with step 1's path`);
  }
  for (const key of ["http_post_path", "https_post_path"] as const) {
    const path = g[key];
    if (path === undefined) continue;
    if (PUBLISHED_SAMPLE_PATHS.includes(path)) {
      fail(`global.${key}: "${path}" is a published sample path; choose your own secret path`);
    }
    if (hasDotSegment(path)) {
      fail(`global.${key}: must not contain "." or ".." segments, which clients rewrite before sending (got ${show(path)})`);
    }
  }

  const apps: AppConfig[] = [];
  const seenPorts = new Map<string, string>();
  /** Every step-1 key with the app it belongs to, for the cross-app check below. */
  const httpKeyOwners = new Map<string, string[]>();
  const httpsKeyLists: [string, readonly (string | undefined)[]][] = [];
  for (const [name, rawApp] of appEntries) {
    if (!appNameRegex.test(name)) {
      fail(`${show(name)}: app names must be 1-32 characters A-Z a-z 0-9 _ - starting with a letter or digit; rename the key`);
      continue;
    }
    if (g.healthcheck_app_name === name) {
      fail(`global.healthcheck_app_name: "${name}" is also an app; pick a name no app uses`);
    }
    if (!isMapping(rawApp)) {
      fail(`${name}: must be a mapping with port, access_key_http, access_key_https and duration (got ${show(rawApp)})`);
      continue;
    }
    const appValid = validateApp(rawApp);
    if (!appValid) for (const e of validateApp.errors ?? []) fail(describe(name, rawApp, e));
    const a = validFields<RawApp>(rawApp, appFields);
    const protocolKnown = a.protocol !== undefined || rawApp.protocol === undefined || rawApp.protocol === null;
    const protocol = a.protocol ?? "tcp";

    // Key cross-checks use every key that is a string, even when its list has other problems.
    const httpKeys = stringItems(rawApp.access_key_http);
    const httpsKeys = stringItems(rawApp.access_key_https);
    if (a.access_key_http && a.access_key_https && a.access_key_http.length !== a.access_key_https.length) {
      fail(
        `${name}.access_key_https: must have as many keys as access_key_http (${a.access_key_http.length} vs ${a.access_key_https.length}); key i of one list pairs with key i of the other`,
      );
    }
    for (const [list, keys] of [["access_key_http", httpKeys], ["access_key_https", httpsKeys]] as const) {
      keys.forEach((k, i) => {
        const first = keys.indexOf(k);
        if (k !== undefined && first !== i) fail(`${name}.${list}.${i}: same key as ${list}.${first}; make each key unique`);
      });
    }
    httpsKeys.forEach((k, i) => {
      const j = k === undefined ? -1 : httpKeys.indexOf(k);
      if (j >= 0) {
        fail(
          `${name}.access_key_https.${i}: same key as access_key_http.${j}; step-1 keys travel in clear text, so step-2 keys must differ`,
        );
      }
    });
    for (const k of httpKeys) {
      if (k === undefined) continue;
      const owners = httpKeyOwners.get(k) ?? [];
      if (!owners.includes(name)) owners.push(name);
      httpKeyOwners.set(k, owners);
    }
    httpsKeyLists.push([name, httpsKeys]);

    const servicePort = a.port as Port | undefined;
    if (servicePort !== undefined && protocolKnown) {
      const portKey = `${protocol}/${servicePort}`;
      const other = seenPorts.get(portKey);
      if (other) fail(`${name}.port: ${portKey} is already used by app "${other}"; each app needs its own port`);
      else seenPorts.set(portKey, name);
    }
    if (servicePort !== undefined) {
      const knocks: [string, KnockPortChoice][] = [["HTTP knock port", http], ["HTTPS knock port", https]];
      const [wafHttp, wafHttps] = wafChoices;
      if (wafHttp && wafHttps) knocks.push(["WAF HTTP port", wafHttp], ["WAF HTTPS port", wafHttps]);
      for (const [what, knock] of knocks) {
        if (servicePort === knock.port) {
          fail(
            `${name}.port: ${servicePort} is also the ${what} (${knock.origin}); use another port for the service or move the knock`,
          );
        }
      }
    }
    let destination: Destination | undefined = { kind: "local" };
    const rawDestination = rawApp.destination;
    if (rawDestination !== undefined && rawDestination !== null) {
      destination = typeof rawDestination === "string" ? parseDestination(rawDestination, servicePort ?? (1 as Port)) : undefined;
      // a non-string was already reported by the schema
      if (!destination && typeof rawDestination === "string" && a.destination !== undefined) {
        fail(`${name}.destination: must be ${KEY_HINTS.destination ?? "local or an address"} (got ${show(rawDestination)})`);
      }
    }
    for (const hook of ["on_open", "on_close"] as const) {
      const argv = a[hook];
      const problem = argv === undefined ? undefined : checkHookArgv(argv);
      if (problem !== undefined) fail(`${name}.${hook}: ${problem}`);
    }
    if (!appValid || !destination) continue;
    const v = rawApp as unknown as RawApp;
    apps.push({
      name,
      port: v.port as Port,
      protocol,
      accessKeysHttp: v.access_key_http,
      accessKeysHttps: v.access_key_https,
      destination,
      durationSeconds: v.duration,
      step2HttpsDurationSeconds: v.step2_https_duration ?? DEFAULT_STEP2_HTTPS_DURATION,
      maxLeases: v.max_leases ?? DEFAULT_MAX_LEASES,
      interfaceExt: v.interface_ext ?? g.interface_ext ?? "",
      interfaceInt: v.interface_int ?? g.interface_int ?? g.interface_ext ?? "",
      masquerade: v.masquerade ?? DEFAULT_MASQUERADE,
      closeEstablished: v.close_established ?? DEFAULT_CLOSE_ESTABLISHED,
      onOpen: v.on_open ?? undefined,
      onClose: v.on_close ?? undefined,
    });
  }

  // A step-2 key must never have travelled in clear text, not even as another app's step-1 key.
  for (const [name, httpsKeys] of httpsKeyLists) {
    httpsKeys.forEach((k, i) => {
      const owners = k === undefined ? [] : (httpKeyOwners.get(k) ?? []);
      const owner = owners[0];
      // a step-1 key of the same app was reported above, once is enough
      if (owner !== undefined && !owners.includes(name)) {
        fail(
          `${name}.access_key_https.${i}: same key as a step-1 key of app "${owner}"; step-1 keys travel in clear text, so step-2 keys must differ from every step-1 key`,
        );
      }
    });
  }

  // A name no interface key uses is a typo, and the interface it meant would be refused or unguarded.
  const usedNames = new Set([g.interface_ext, g.interface_int, ...apps.flatMap((a) => [a.interfaceExt, a.interfaceInt])]);
  for (const name of g.allow_missing_interfaces ?? []) {
    if (!usedNames.has(name)) fail(`global.allow_missing_interfaces: ${show(name)} is not the interface_ext or interface_int of global or of any app`);
  }

  const baseDir = dirname(resolve(file));
  const cluster = g.cluster ? clusterFromRaw(g.cluster, (p) => (isAbsolute(p) ? p : resolve(baseDir, p)), fail) : undefined;
  const authCheckListen = g.auth_check_listen === undefined ? undefined : parseAuthCheckListen(g.auth_check_listen);
  if (g.auth_check_listen !== undefined && !authCheckListen) fail(`global.auth_check_listen: must be ${AUTH_CHECK_LISTEN_HINT} (got ${show(g.auth_check_listen)})`);

  if (problems.length > 0 || !globalValid || !http.port || !https.port) {
    throw new ConfigError("CONFIG_INVALID", file, problems);
  }
  const vg = rawGlobal as RawGlobal;
  const folder = vg["2fa_config_folder"] ?? "2fa";
  const httpsPerMinute = vg.https_connection_limit_per_minute ?? DEFAULT_HTTPS_CONNECTION_LIMIT_PER_MINUTE;
  return {
    file,
    httpPort: http.port,
    httpsPort: https.port,
    ...(waf ? { waf } : {}),
    global: {
      httpPostPath: vg.http_post_path,
      httpsPostPath: vg.https_post_path,
      rateLimitPerMinute: vg.step1_2_rate_limit_per_minute ?? DEFAULT_RATE_LIMIT_PER_MINUTE,
      rateLimitIpv6Prefix: vg.rate_limit_ipv6_prefix ?? DEFAULT_RATE_LIMIT_IPV6_PREFIX,
      httpsConnectionLimit:
        httpsPerMinute === 0 ? undefined : { perMinute: httpsPerMinute, burst: vg.https_connection_limit_burst ?? DEFAULT_HTTPS_CONNECTION_LIMIT_BURST },
      interfaceExt: vg.interface_ext,
      interfaceInt: vg.interface_int ?? vg.interface_ext,
      allowMissingInterfaces: vg.allow_missing_interfaces ?? [],
      twoFactorFolder: isAbsolute(folder) ? folder : resolve(baseDir, folder),
      twoFactorSkewPeriods: vg["2fa_skew_periods"] ?? DEFAULT_2FA_SKEW_PERIODS,
      healthcheckAppName: vg.healthcheck_app_name ?? undefined,
      cluster,
      authCheckListen,
    },
    apps,
  };
}

export function findApp(config: KnockportConfig, name: string): AppConfig | undefined {
  return config.apps.find((a) => a.name === name);
}
