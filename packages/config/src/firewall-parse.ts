import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { APP_NAME_PATTERN, parsePort, type Port } from "@knockport/protocol";
import { show } from "./read-yaml.js";
import * as S from "./firewall-schema.js";
import type { Destination, FirewallApp, FirewallConfig, PortOverrides, RawFirewallApp, RawFirewallGlobal } from "./types.js";

/** One problem of the file: a message, or an ajv error that describe.ts words (loaded only then). */
export type Problem = string | { readonly section: string; readonly root: Raw; readonly err: ErrorObject };
export type Fail = (problem: Problem) => void;
export type Raw = Record<string, unknown>;
export const isMapping = (value: unknown): value is Raw => value !== null && typeof value === "object" && !Array.isArray(value);
/** A port taken from a flag, a key or the default, with the names messages use for it. */
export interface PortChoice { readonly port: Port | undefined; readonly key: string; readonly origin: string }
/** Parsers of values only some files have (destination.ts, hooks.ts): the helper loads them for those files only. */
export interface ValueParsers {
  parseDestination(text: string, servicePort: Port): Destination | undefined;
  checkHookArgv(argv: readonly string[]): string | undefined;
}
export interface Validators { readonly global: ValidateFunction; readonly app: ValidateFunction; readonly globalFields: Map<string, ValidateFunction>; readonly appFields: Map<string, ValidateFunction> }

/**
 * What loadConfig checks beyond the helper's view, called where the same pass reaches those keys (so
 * messages keep their order): the server's keys, and consistency across keys that the server refuses
 * to start without (docs/design.md, trust boundary).
 */
export interface FullChecks {
  readonly validators: Validators;
  knockPorts(http: PortChoice, https: PortChoice, fail: Fail): void;
  trustedProxies(g: Raw, o: PortOverrides, wafMode: boolean, fail: Fail): void;
  waf(g: Raw, wafHttp: PortChoice | undefined, wafHttps: PortChoice | undefined, fail: Fail): void;
  app(name: string, rawApp: Raw, a: Raw, g: Raw, fail: Fail): void;
  end(g: Raw, apps: readonly FirewallApp[], fail: Fail): void;
}

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: false });
/** Besides the whole-section validator, one per key: cross-checks use every key that is valid on its own. */
export function compileValidators(global: object, app: object, globalProps: object, appProps: object): Validators {
  const fields = (props: object): Map<string, ValidateFunction> => new Map(Object.entries(props).map(([k, s]) => [k, ajv.compile(s)]));
  return { global: ajv.compile(global), app: ajv.compile(app), globalFields: fields(globalProps), appFields: fields(appProps) };
}
/** The helper's view: the firewall's keys as the full schema has them; the server's keys allowed, not read. */
const section = (required: string[], props: object, serverKeys: readonly string[]): object => ({
  type: "object", additionalProperties: false, required, properties: { ...props, ...Object.fromEntries(serverKeys.map((k) => [k, {}])) },
});
let firewallValidators: Validators | undefined;
const firewallView = (): Validators => (firewallValidators ??= compileValidators(
  section(["http_post_path", "interface_ext"], S.FIREWALL_GLOBAL_PROPERTIES, S.SERVER_GLOBAL_KEYS),
  section(["port", "duration"], S.FIREWALL_APP_PROPERTIES, S.SERVER_APP_KEYS), S.FIREWALL_GLOBAL_PROPERTIES, S.FIREWALL_APP_PROPERTIES));

const validFields = (raw: Raw, fields: Map<string, ValidateFunction>): Raw =>
  Object.fromEntries([...fields].filter(([k, valid]) => raw[k] !== undefined && raw[k] !== null && valid(raw[k])).map(([k]) => [k, raw[k]]));
function pick(flag: string, key: string, override: unknown, fromConfig: unknown, fallback?: number): PortChoice | undefined {
  if (override !== undefined) return { port: parsePort(override), key: flag, origin: flag };
  if (fromConfig !== undefined) return { port: parsePort(fromConfig), key, origin: key };
  return fallback === undefined ? undefined : { port: parsePort(fallback), key, origin: `the default; ${key} or ${flag} moves it` };
}

/**
 * The firewall's part of a parsed YAML document, or every problem found in it; with `full`
 * (loadConfig) the rest of the file is checked in the same pass.
 */
export function parseFirewall(doc: unknown, file: string, o: PortOverrides, parsers: ValueParsers, full?: FullChecks): { config?: FirewallConfig; problems: Problem[] } {
  if (!isMapping(doc)) return { problems: [`must be a YAML mapping with a "global" key and one key per app (see config/config.example.yaml)`] };
  const v = full?.validators ?? firewallView();
  const problems: Problem[] = [];
  const fail: Fail = (p) => void problems.push(p);
  // Schema problems first, then the keys valid by themselves go on, so one run reports every problem.
  const rawGlobal = doc.global;
  let g: Raw = {};
  if (rawGlobal === undefined) fail(`global: required section is missing; add it (see config/config.example.yaml)`);
  else if (!isMapping(rawGlobal)) fail(`global: must be a mapping with http_post_path, https_post_path and interface_ext (got ${show(rawGlobal)})`);
  else {
    if (!v.global(rawGlobal)) for (const err of v.global.errors ?? []) fail({ section: "global", root: rawGlobal, err });
    g = validFields(rawGlobal, v.globalFields);
    for (const key of ["http_post_path", "https_post_path"]) {
      const path = rawGlobal[key];
      if (typeof path === "string" && S.PUBLISHED_SAMPLE_PATHS.includes(path)) fail(`global.${key}: "${path}" is a published sample path; choose your own secret path`);
    }
  }
  const appEntries = Object.entries(doc).filter(([name]) => name !== "global");
  if (appEntries.length === 0) fail(`no apps configured; add at least one app key next to "global"`);

  const http = pick("--http-port", "global.http_port", o.httpPort, g.http_port, S.DEFAULT_HTTP_PORT) as PortChoice;
  const https = pick("--https-port", "global.https_port", o.httpsPort, g.https_port, S.DEFAULT_HTTPS_PORT) as PortChoice;
  // only a flag can be invalid here: a bad global.http_port was reported above and is not used
  if (!http.port) fail(`${http.key}: must be an integer 1-65535 (got ${show(o.httpPort)})`);
  if (!https.port) fail(`${https.key}: must be an integer 1-65535 (got ${show(o.httpsPort)})`);
  full?.knockPorts(http, https, fail);
  // WAF mode (nginx in front): both public ports or neither.
  const wafHttp = pick("--waf-http-port", "global.waf_http_port", o.wafHttpPort, g.waf_http_port);
  const wafHttps = pick("--waf-https-port", "global.waf_https_port", o.wafHttpsPort, g.waf_https_port);
  full?.trustedProxies(g, o, wafHttp !== undefined || wafHttps !== undefined, fail);
  if ((wafHttp === undefined) !== (wafHttps === undefined)) {
    const missing = wafHttp ? "--waf-https-port (or global.waf_https_port)" : "--waf-http-port (or global.waf_http_port)";
    fail(`${(wafHttp ?? wafHttps)?.key}: WAF mode needs both public ports; also set ${missing}`);
  }
  for (const [p, flag] of [[wafHttp, o.wafHttpPort], [wafHttps, o.wafHttpsPort]] as const) {
    if (wafHttp && wafHttps && !p?.port) fail(`${p?.key}: must be an integer 1-65535 (got ${show(flag)})`);
  }
  full?.waf(g, wafHttp, wafHttps, fail);

  const apps: FirewallApp[] = [];
  for (const [name, rawApp] of appEntries) {
    if (!new RegExp(APP_NAME_PATTERN).test(name)) {
      fail(`${show(name)}: app names must be 1-32 characters A-Z a-z 0-9 _ - starting with a letter or digit; rename the key`);
      continue;
    }
    if (!isMapping(rawApp)) {
      fail(`${name}: must be a mapping with port, access_key_http, access_key_https and duration (got ${show(rawApp)})`);
      continue;
    }
    const appValid = v.app(rawApp);
    if (!appValid) for (const err of v.app.errors ?? []) fail({ section: name, root: rawApp, err });
    const a = validFields(rawApp, v.appFields) as Partial<RawFirewallApp>;
    full?.app(name, rawApp, a, g, fail);
    let destination: Destination | undefined = { kind: "local" };
    if (rawApp.destination !== undefined && rawApp.destination !== null) {
      destination = typeof rawApp.destination === "string" ? parsers.parseDestination(rawApp.destination, (a.port ?? 1) as Port) : undefined;
      // a non-string was reported by the schema; the message is the schema's, with the key's hint
      if (!destination && a.destination !== undefined) fail({ section: name, root: rawApp, err: { instancePath: "/destination", keyword: "format", schemaPath: "", params: {} } });
    }
    for (const hook of ["on_open", "on_close"] as const) {
      const problem = a[hook] === undefined ? undefined : parsers.checkHookArgv(a[hook]);
      if (problem !== undefined) fail(`${name}.${hook}: ${problem}`);
    }
    if (!appValid || !destination) continue;
    const r = rawApp as unknown as RawFirewallApp;
    const ext = (r.interface_ext ?? g.interface_ext ?? "") as string;
    apps.push({
      name, port: r.port as Port, protocol: r.protocol ?? "tcp", destination, durationSeconds: r.duration,
      step2HttpsDurationSeconds: r.step2_https_duration ?? S.DEFAULT_STEP2_HTTPS_DURATION, maxLeases: r.max_leases ?? S.DEFAULT_MAX_LEASES,
      interfaceExt: ext, interfaceInt: (r.interface_int ?? g.interface_int ?? g.interface_ext ?? "") as string,
      masquerade: r.masquerade ?? S.DEFAULT_MASQUERADE, closeEstablished: r.close_established ?? S.DEFAULT_CLOSE_ESTABLISHED,
      onOpen: r.on_open ?? undefined, onClose: r.on_close ?? undefined,
    });
  }
  full?.end(g, apps, fail);
  if (problems.length > 0 || !http.port || !https.port) return { problems };
  const vg = rawGlobal as RawFirewallGlobal;
  const perMinute = vg.https_connection_limit_per_minute ?? S.DEFAULT_HTTPS_CONNECTION_LIMIT_PER_MINUTE;
  const global = {
    httpPostPath: vg.http_post_path, interfaceExt: vg.interface_ext, interfaceInt: vg.interface_int ?? vg.interface_ext,
    httpsConnectionLimit: perMinute === 0 ? undefined : { perMinute, burst: vg.https_connection_limit_burst ?? S.DEFAULT_HTTPS_CONNECTION_LIMIT_BURST },
    allowMissingInterfaces: vg.allow_missing_interfaces ?? [],
  };
  const waf = wafHttp?.port && wafHttps?.port ? { waf: { httpPort: wafHttp.port, httpsPort: wafHttps.port } } : {};
  return { config: { file, httpPort: http.port, httpsPort: https.port, ...waf, global, apps }, problems };
}
