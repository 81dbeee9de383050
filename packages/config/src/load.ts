import { dirname, isAbsolute, resolve } from "node:path";
import type { ValidateFunction } from "ajv";
import { configInvalid } from "./describe.js";
import { parseFirewall, type Fail, type FullChecks, type PortChoice, type Raw, type Validators } from "./firewall-parse.js";
import type { Port } from "@knockport/protocol";
import { readYaml, show } from "./read-yaml.js";
import * as generated from "./full-validators.generated.js";
import { parseDestination } from "./destination.js";
import { checkHookArgv } from "./hooks.js";
import { AUTH_CHECK_LISTEN_HINT, parseAuthCheckListen, type AuthCheckListen } from "./auth-check.js";
import { clusterFromRaw, type ClusterConfig } from "./cluster.js";
import { DEFAULT_2FA_SKEW_PERIODS, DEFAULT_RATE_LIMIT_IPV6_PREFIX, DEFAULT_RATE_LIMIT_PER_MINUTE } from "./schema.js";
import { DEFAULT_WAF_TRUSTED_IPS, WAF_TRUSTED_IP_HINT, WAF_TRUSTED_IPS_MAX, formatTrustedProxy, parseTrustedProxy, type TrustedProxy } from "./waf.js";
import type { AppConfig, FirewallApp, FirewallConfig, KnockportConfig, PortOverrides, RawApp, RawGlobal } from "./types.js";
import type { RawCluster } from "./cluster.js";

let validators: Validators | undefined;
/** The full schema's validators, precompiled (full-validators-codegen.ts): compiling them cost every start 70-80 ms CPU. */
function fullValidators(): Validators {
  const table = generated as unknown as Record<string, ValidateFunction> & { GLOBAL_KEYS: string[]; APP_KEYS: string[] };
  const fields = (keys: readonly string[], prefix: string): Map<string, ValidateFunction> => new Map(keys.map((k, i) => [k, table[`${prefix}${i}`] as ValidateFunction]));
  return { global: table.global as ValidateFunction, app: table.app as ValidateFunction, globalFields: fields(table.GLOBAL_KEYS, "g"), appFields: fields(table.APP_KEYS, "a") };
}

/** Paths nobody may run with: the original's sample config and config/config.example.yaml's placeholders. */
export { PUBLISHED_SAMPLE_PATHS } from "./firewall-schema.js";

/** The string entries of a YAML list, by index (anything else as undefined). */
function stringItems(value: unknown): (string | undefined)[] {
  return Array.isArray(value) ? value.map((v) => (typeof v === "string" ? v : undefined)) : [];
}

type Named = [string, PortChoice | undefined];
function clash(fail: Fail, [what, choice]: Named, others: readonly Named[]): void {
  for (const [otherWhat, other] of others) {
    if (choice?.port && choice.port === other?.port) {
      fail(`${choice.key}: the ${what} (${choice.origin}) must differ from the ${otherWhat} (${other.origin}); both are ${choice.port}`);
    }
  }
}

/** The trusted proxies: global.waf_trusted_ips plus every --waf-trusted-ips entry (a flag adds, never replaces). */
function trustedProxies(g: Raw, overrides: PortOverrides, wafMode: boolean, fail: Fail): TrustedProxy[] {
  const fromFile = (g.waf_trusted_ips as string[] | undefined) ?? [];
  const fromFlags = overrides.wafTrustedIps ?? [];
  const trusted: TrustedProxy[] = [];
  const seen = new Set<string>();
  const take = (text: string, where: string): void => {
    const p = parseTrustedProxy(text);
    if (!p) return fail(`${where}: must be ${WAF_TRUSTED_IP_HINT} (got ${show(text)})`);
    if (!seen.has(formatTrustedProxy(p))) trusted.push(p);
    seen.add(formatTrustedProxy(p));
  };
  fromFile.forEach((t, i) => take(t, `global.waf_trusted_ips.${i}`));
  for (const t of fromFlags) take(t, "--waf-trusted-ips");
  if (trusted.length > WAF_TRUSTED_IPS_MAX) {
    fail(`--waf-trusted-ips: at most ${WAF_TRUSTED_IPS_MAX} entries together with global.waf_trusted_ips (got ${trusted.length}); use networks such as 10.0.0.0/24`);
  }
  if (!wafMode && fromFile.length + fromFlags.length > 0) {
    const where = fromFlags.length > 0 ? "--waf-trusted-ips" : "global.waf_trusted_ips";
    fail(`${where}: only used in WAF mode; also set --waf-http-port and --waf-https-port (or global.waf_http_port and global.waf_https_port), or remove it`);
  }
  return trusted;
}

function checkPostPaths(g: Raw, fail: Fail): void {
  if (g.http_post_path !== undefined && g.http_post_path === g.https_post_path) {
    fail(`global.https_post_path: must differ from global.http_post_path, or step 2 would be reachable with step 1's path`);
  }
  for (const key of ["http_post_path", "https_post_path"]) {
    const path = g[key];
    if (typeof path !== "string") continue;
    // Dot segments are rewritten by clients (curl, browsers) before sending, so such a knock never matches.
    if (path.split("/").some((s) => s === "." || s === "..")) {
      fail(`global.${key}: must not contain "." or ".." segments, which clients rewrite before sending (got ${show(path)})`);
    }
  }
}

/** Access keys: pairs, duplicates, and a step-2 key that travelled in clear text as a step-1 key. */
function keyChecks(): { checkKeys(name: string, rawApp: Raw, a: Raw, fail: Fail): void; end(fail: Fail): void } {
  /** Every step-1 key with the apps it belongs to, for the cross-app check at the end. */
  const httpKeyOwners = new Map<string, string[]>();
  const httpsKeyLists: [string, readonly (string | undefined)[]][] = [];
  return {
    checkKeys(name, rawApp, a, fail) {
      // Key cross-checks use every key that is a string, even when its list has other problems.
      const httpKeys = stringItems(rawApp.access_key_http);
      const httpsKeys = stringItems(rawApp.access_key_https);
      if (a.access_key_http && a.access_key_https && httpKeys.length !== httpsKeys.length) {
        fail(`${name}.access_key_https: must have as many keys as access_key_http (${httpKeys.length} vs ${httpsKeys.length}); key i of one list pairs with key i of the other`);
      }
      for (const [list, keys] of [["access_key_http", httpKeys], ["access_key_https", httpsKeys]] as const) {
        keys.forEach((k, i) => {
          const first = keys.indexOf(k);
          if (k !== undefined && first !== i) fail(`${name}.${list}.${i}: same key as ${list}.${first}; make each key unique`);
        });
      }
      httpsKeys.forEach((k, i) => {
        const j = k === undefined ? -1 : httpKeys.indexOf(k);
        if (j >= 0) fail(`${name}.access_key_https.${i}: same key as access_key_http.${j}; step-1 keys travel in clear text, so step-2 keys must differ`);
      });
      for (const k of httpKeys) {
        if (k === undefined) continue;
        const owners = httpKeyOwners.get(k) ?? [];
        if (!owners.includes(name)) owners.push(name);
        httpKeyOwners.set(k, owners);
      }
      httpsKeyLists.push([name, httpsKeys]);
    },
    // A step-2 key must never have travelled in clear text, not even as another app's step-1 key.
    end(fail) {
      for (const [name, httpsKeys] of httpsKeyLists) {
        httpsKeys.forEach((k, i) => {
          const owners = k === undefined ? [] : (httpKeyOwners.get(k) ?? []);
          const owner = owners[0];
          // a step-1 key of the same app was reported above, once is enough
          if (owner !== undefined && !owners.includes(name)) {
            fail(`${name}.access_key_https.${i}: same key as a step-1 key of app "${owner}"; step-1 keys travel in clear text, so step-2 keys must differ from every step-1 key`);
          }
        });
      }
    },
  };
}

/**
 * Everything loadConfig checks beyond the helper's view: the server's keys, and the consistency of
 * ports, paths and interface names across keys (the server refuses to start without it).
 */
/** What the full checks read besides the firewall's view, for withServerKeys. */
interface ServerValues {
  trusted: TrustedProxy[];
  cluster: ClusterConfig | undefined;
  authCheckListen: AuthCheckListen | undefined;
}

function fullChecks(file: string): FullChecks & ServerValues {
  const keys = keyChecks();
  let knock: Named[] = [];
  const seenPorts = new Map<string, string>();
  const checks = {
    validators: (validators ??= fullValidators()),
    trusted: [] as TrustedProxy[],
    cluster: undefined as ClusterConfig | undefined,
    authCheckListen: undefined as AuthCheckListen | undefined,
    knockPorts(http: PortChoice, https: PortChoice, fail: Fail) {
      knock = [["HTTP knock port", http], ["HTTPS knock port", https]];
      clash(fail, knock[1] as Named, [knock[0] as Named]);
    },
    trustedProxies(g: Raw, o: PortOverrides, wafMode: boolean, fail: Fail) {
      checks.trusted = trustedProxies(g, o, wafMode, fail);
    },
    waf(g: Raw, wafHttp: PortChoice | undefined, wafHttps: PortChoice | undefined, fail: Fail) {
      if (wafHttp && wafHttps) {
        const waf: Named[] = [["WAF HTTP port", wafHttp], ["WAF HTTPS port", wafHttps]];
        clash(fail, waf[0] as Named, knock);
        clash(fail, waf[1] as Named, [...knock, waf[0] as Named]);
        if (wafHttp.port && wafHttps.port) knock.push(...waf);
      }
      checkPostPaths(g, fail);
    },
    app(name: string, rawApp: Raw, a: Raw, g: Raw, fail: Fail) {
      if (g.healthcheck_app_name === name) fail(`global.healthcheck_app_name: "${name}" is also an app; pick a name no app uses`);
      keys.checkKeys(name, rawApp, a, fail);
      const servicePort = a.port as Port | undefined;
      if (servicePort === undefined) return;
      if (a.protocol !== undefined || rawApp.protocol === undefined || rawApp.protocol === null) {
        const portKey = `${(a.protocol as string | undefined) ?? "tcp"}/${servicePort}`;
        const other = seenPorts.get(portKey);
        if (other) fail(`${name}.port: ${portKey} is already used by app "${other}"; each app needs its own port`);
        else seenPorts.set(portKey, name);
      }
      for (const [what, choice] of knock) {
        if (servicePort === choice?.port) fail(`${name}.port: ${servicePort} is also the ${what} (${choice.origin}); use another port for the service or move the knock`);
      }
    },
    end(g: Raw, apps: readonly FirewallApp[], fail: Fail) {
      keys.end(fail);
      // A name no interface key uses is a typo, and the interface it meant would be refused or unguarded.
      const used = new Set([g.interface_ext, g.interface_int, ...apps.flatMap((a) => [a.interfaceExt, a.interfaceInt])]);
      for (const name of (g.allow_missing_interfaces as string[] | undefined) ?? []) {
        if (!used.has(name)) fail(`global.allow_missing_interfaces: ${show(name)} is not the interface_ext or interface_int of global or of any app`);
      }
      const baseDir = dirname(resolve(file));
      if (g.cluster) checks.cluster = clusterFromRaw(g.cluster as RawCluster, (p) => (isAbsolute(p) ? p : resolve(baseDir, p)), fail);
      checks.authCheckListen = g.auth_check_listen === undefined ? undefined : parseAuthCheckListen(g.auth_check_listen as string);
      if (g.auth_check_listen !== undefined && !checks.authCheckListen) fail(`global.auth_check_listen: must be ${AUTH_CHECK_LISTEN_HINT} (got ${show(g.auth_check_listen)})`);
    },
  };
  return checks;
}

/**
 * Read, validate and normalise a KnockPort config. Flags in `overrides` win over `global.http_port`
 * / `global.https_port`. Throws ConfigError listing every problem found, never a partial config.
 */
export function loadConfig(file: string, overrides: PortOverrides = {}): KnockportConfig {
  return parseConfig(readYaml(file), file, overrides);
}

/** The whole config: the firewall's view (parseFirewall, what the helper reads) plus the server's keys. */
export function parseConfig(doc: unknown, file: string, overrides: PortOverrides = {}): KnockportConfig {
  const full = fullChecks(file);
  const { config, problems } = parseFirewall(doc, file, overrides, { parseDestination, checkHookArgv }, full);
  if (!config) throw configInvalid(file, problems);
  return withServerKeys(config, doc as Raw, full);
}

function withServerKeys(fw: FirewallConfig, doc: Raw, { trusted, cluster, authCheckListen }: ServerValues): KnockportConfig {
  const g = doc.global as RawGlobal;
  const folder = g["2fa_config_folder"] ?? "2fa";
  const defaulted = trusted.length === 0;
  const trustedProxies = defaulted ? DEFAULT_WAF_TRUSTED_IPS.map((t) => parseTrustedProxy(t) as TrustedProxy) : trusted;
  const apps: AppConfig[] = fw.apps.map((a) => {
    const raw = doc[a.name] as RawApp;
    return { ...a, accessKeysHttp: raw.access_key_http, accessKeysHttps: raw.access_key_https };
  });
  const { waf, ...rest } = fw;
  return {
    ...rest,
    ...(waf ? { waf: { ...waf, trustedProxies, trustedProxiesDefault: defaulted } } : {}),
    global: {
      ...fw.global,
      httpsPostPath: g.https_post_path,
      rateLimitPerMinute: g.step1_2_rate_limit_per_minute ?? DEFAULT_RATE_LIMIT_PER_MINUTE,
      rateLimitIpv6Prefix: g.rate_limit_ipv6_prefix ?? DEFAULT_RATE_LIMIT_IPV6_PREFIX,
      twoFactorFolder: isAbsolute(folder) ? folder : resolve(dirname(resolve(fw.file)), folder),
      twoFactorSkewPeriods: g["2fa_skew_periods"] ?? DEFAULT_2FA_SKEW_PERIODS,
      healthcheckAppName: g.healthcheck_app_name ?? undefined,
      cluster,
      authCheckListen,
    },
    apps,
  };
}
