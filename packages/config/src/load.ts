import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import yaml from "js-yaml";
import { parseIpAddress, parsePort, type Port } from "@knockport/protocol";
import { ConfigError } from "./errors.js";
import { appSchema, globalSchema, KEY_HINTS, type RawApp, type RawGlobal } from "./schema.js";
import {
  DEFAULT_HTTP_PORT,
  DEFAULT_HTTPS_PORT,
  DEFAULT_RATE_LIMIT_PER_MINUTE,
  DEFAULT_STEP2_HTTPS_DURATION,
  type AppConfig,
  type Destination,
  type KnockportConfig,
  type PortOverrides,
} from "./types.js";
import { APP_NAME_PATTERN } from "@knockport/protocol";

/** Paths from the original's sample config: anyone who read its README knows them. */
export const PUBLISHED_SAMPLE_PATHS: readonly string[] = ["/1-SECRET", "/2-SECRET", "/CHANGE-ME-1", "/CHANGE-ME-2"];

const MAX_CONFIG_BYTES = 1024 * 1024;

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: false });
const validateGlobal: ValidateFunction<RawGlobal> = ajv.compile(globalSchema);
const validateApp: ValidateFunction<RawApp> = ajv.compile(appSchema);
const appNameRegex = new RegExp(APP_NAME_PATTERN);

function show(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function valueAt(root: unknown, pointer: string): unknown {
  let node = root;
  for (const part of pointer.split("/").slice(1)) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string, unknown>)[part.replace(/~1/g, "/").replace(/~0/g, "~")];
  }
  return node;
}

/** Turn one ajv error into "key.path: what is wrong (got X); fix". Keys inside access-key lists are never echoed. */
function describe(section: string, root: unknown, err: ErrorObject): string {
  const parts = err.instancePath.split("/").slice(1);
  const pathParts = [section, ...parts];
  if (err.keyword === "additionalProperties") {
    const extra = (err.params as { additionalProperty: string }).additionalProperty;
    return `${[...pathParts, extra].join(".")}: unknown key; remove it or check its spelling (known keys: ${Object.keys(
      (section === "global" ? globalSchema : appSchema).properties,
    ).join(", ")})`;
  }
  if (err.keyword === "required") {
    const missing = (err.params as { missingProperty: string }).missingProperty;
    return `${[...pathParts, missing].join(".")}: required key is missing; add ${KEY_HINTS[missing] ?? "it"}`;
  }
  const key = parts.find((p) => KEY_HINTS[p] !== undefined) ?? parts[0] ?? section;
  const secret = key.startsWith("access_key");
  const got = secret ? "" : ` (got ${show(valueAt(root, err.instancePath))})`;
  const what = err.keyword === "type" ? `must be ${KEY_HINTS[key] ?? err.message}` : `must be ${KEY_HINTS[key] ?? err.message}`;
  return `${pathParts.join(".")}: ${what}${got}`;
}

function parseDestination(text: string | undefined, servicePort: Port): Destination | string {
  if (text === undefined || text === "local") return { kind: "local" };
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text);
  const plainV4 = /^([0-9.]+)(?::(\d{1,5}))?$/.exec(text);
  const match = bracketed ?? plainV4;
  const hostText = match?.[1] ?? text; // bare IPv6 without port
  const portText = match?.[2];
  const ip = parseIpAddress(hostText);
  if (!ip || ip !== hostText.toLowerCase().replace(/^0+(?=\d)/, "") && parseIpAddress(ip) !== ip) {
    return KEY_HINTS.destination ?? "";
  }
  const port = portText === undefined ? servicePort : parsePort(Number(portText));
  if (!port) return KEY_HINTS.destination ?? "";
  return { kind: "forward", ip, port };
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
    throw new ConfigError("CONFIG_YAML", file, [`${file}: YAML syntax error${where}: ${reason}`]);
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

export function parseConfig(doc: unknown, file: string, overrides: PortOverrides = {}): KnockportConfig {
  const problems: string[] = [];
  const fail = (msg: string): void => {
    problems.push(`${file}: ${msg}`);
  };
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    throw new ConfigError("CONFIG_INVALID", file, [
      `${file}: must be a YAML mapping with a "global" key and one key per app (see config/config.example.yaml)`,
    ]);
  }
  const root = doc as Record<string, unknown>;
  const rawGlobal = root.global;
  if (!validateGlobal(rawGlobal)) {
    if (rawGlobal === undefined) fail(`global: required section is missing; add it (see config/config.example.yaml)`);
    else for (const e of validateGlobal.errors ?? []) fail(describe("global", rawGlobal, e));
  }
  const g = validateGlobal(rawGlobal) ? rawGlobal : undefined;

  const appEntries = Object.entries(root).filter(([name]) => name !== "global");
  if (appEntries.length === 0) fail(`no apps configured; add at least one app key next to "global"`);

  const httpPortFlag = overrides.httpPort;
  const httpPort = parsePort(httpPortFlag ?? g?.http_port ?? DEFAULT_HTTP_PORT);
  const httpsPort = parsePort(overrides.httpsPort ?? g?.https_port ?? DEFAULT_HTTPS_PORT);
  const httpPortSource = overrides.httpPort !== undefined ? "--http-port" : "global.http_port";
  const httpsPortSource = overrides.httpsPort !== undefined ? "--https-port" : "global.https_port";
  if (!httpPort) fail(`${httpPortSource}: must be an integer 1-65535 (got ${show(overrides.httpPort)})`);
  if (!httpsPort) fail(`${httpsPortSource}: must be an integer 1-65535 (got ${show(overrides.httpsPort)})`);
  if (httpPort && httpPort === httpsPort) {
    fail(`${httpsPortSource}: the HTTPS knock port must differ from the HTTP knock port (both ${httpPort})`);
  }

  if (g) {
    if (g.http_post_path === g.https_post_path) {
      fail(`global.https_post_path: must differ from global.http_post_path, or step 2 would be reachable with step 1's path`);
    }
    for (const key of ["http_post_path", "https_post_path"] as const) {
      if (PUBLISHED_SAMPLE_PATHS.includes(g[key])) {
        fail(`global.${key}: "${g[key]}" is a published sample path; choose your own secret path`);
      }
    }
  }

  const apps: AppConfig[] = [];
  const seenPorts = new Map<string, string>();
  const allHttpKeys = new Set<string>();
  for (const [name, rawApp] of appEntries) {
    if (!appNameRegex.test(name)) {
      fail(`${show(name)}: app names must be 1-32 characters A-Z a-z 0-9 _ - starting with a letter or digit; rename the key`);
      continue;
    }
    if (g?.healthcheck_app_name === name) {
      fail(`global.healthcheck_app_name: "${name}" is also an app; pick a name no app uses`);
    }
    if (!validateApp(rawApp)) {
      if (rawApp === null || typeof rawApp !== "object") {
        fail(`${name}: must be a mapping with port, access_key_http, access_key_https and duration`);
      } else {
        for (const e of validateApp.errors ?? []) fail(describe(name, rawApp, e));
      }
      continue;
    }
    const a = rawApp;
    const servicePort = a.port as Port;
    const protocol = a.protocol ?? "tcp";
    if (a.access_key_http.length !== a.access_key_https.length) {
      fail(
        `${name}.access_key_https: must have as many keys as access_key_http (${a.access_key_http.length} vs ${a.access_key_https.length}); key i of one list pairs with key i of the other`,
      );
    }
    for (const list of ["access_key_http", "access_key_https"] as const) {
      if (new Set(a[list]).size !== a[list].length) fail(`${name}.${list}: contains the same key twice; make each key unique`);
    }
    if (a.access_key_http.some((k) => a.access_key_https.includes(k))) {
      fail(`${name}.access_key_https: reuses a step-1 key; step-1 keys travel in clear text, so step-2 keys must differ`);
    }
    for (const k of a.access_key_http) allHttpKeys.add(k);
    const portKey = `${protocol}/${servicePort}`;
    const other = seenPorts.get(portKey);
    if (other) fail(`${name}.port: ${portKey} is already used by app "${other}"; each app needs its own port`);
    seenPorts.set(portKey, name);
    if (servicePort === httpPort || servicePort === httpsPort) {
      fail(
        `${name}.port: ${servicePort} is also the ${servicePort === httpPort ? "HTTP" : "HTTPS"} knock port; use another port for the service or the knock`,
      );
    }
    const destination = parseDestination(a.destination, servicePort);
    if (typeof destination === "string") {
      fail(`${name}.destination: must be ${destination} (got ${show(a.destination)})`);
      continue;
    }
    apps.push({
      name,
      port: servicePort,
      protocol,
      accessKeysHttp: a.access_key_http,
      accessKeysHttps: a.access_key_https,
      destination,
      durationSeconds: a.duration,
      step2HttpsDurationSeconds: a.step2_https_duration ?? DEFAULT_STEP2_HTTPS_DURATION,
      interfaceExt: a.interface_ext ?? g?.interface_ext ?? "",
      interfaceInt: a.interface_int ?? g?.interface_int ?? g?.interface_ext ?? "",
    });
  }

  if (problems.length > 0 || !g || !httpPort || !httpsPort) {
    throw new ConfigError("CONFIG_INVALID", file, problems);
  }
  const baseDir = dirname(resolve(file));
  const folder = g["2fa_config_folder"] ?? "2fa";
  return {
    file,
    httpPort,
    httpsPort,
    global: {
      httpPostPath: g.http_post_path,
      httpsPostPath: g.https_post_path,
      rateLimitPerMinute: g.step1_2_rate_limit_per_minute ?? DEFAULT_RATE_LIMIT_PER_MINUTE,
      interfaceExt: g.interface_ext,
      interfaceInt: g.interface_int ?? g.interface_ext,
      twoFactorFolder: isAbsolute(folder) ? folder : resolve(baseDir, folder),
      healthcheckAppName: g.healthcheck_app_name,
    },
    apps,
  };
}

export function findApp(config: KnockportConfig, name: string): AppConfig | undefined {
  return config.apps.find((a) => a.name === name);
}
