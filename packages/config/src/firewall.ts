/**
 * The config as the root helper reads it (`@knockport/config/firewall`): the keys its rules, leases
 * and hook events use, validated by the same schema objects and the same pass as loadConfig.
 */
import type { Port } from "@knockport/protocol";
import { isMapping, parseFirewall, type ValueParsers } from "./firewall-parse.js";
import { readYaml } from "./read-yaml.js";
import type { FirewallConfig, PortOverrides } from "./types.js";

export { ConfigError } from "./errors.js";
export * from "./firewall-schema.js";
export { checkInterfaces, listHostInterfaces, refuseMissingInterfaces } from "./interfaces.js";
export type * from "./types.js";

export async function loadFirewallConfig(file: string, overrides: PortOverrides = {}): Promise<FirewallConfig> {
  return parseFirewallConfig(readYaml(file), file, overrides);
}

/** The helper's view of a YAML document, or a ConfigError naming the file and each key it cannot use. */
export async function parseFirewallConfig(doc: unknown, file: string, overrides: PortOverrides = {}): Promise<FirewallConfig> {
  const { config, problems } = parseFirewall(doc, file, overrides, await parsersFor(doc));
  if (config) return config;
  // Wording schema errors takes the whole schema and its hints: loaded only for a file that has some.
  throw (await import("./describe.js")).configInvalid(file, problems);
}

/**
 * Forwarded destinations and hook commands are parsed by code loaded only when some app has one.
 * Should the core meet one anyway, the stand-ins refuse it: never a value taken unchecked.
 */
async function parsersFor(doc: unknown): Promise<ValueParsers> {
  const apps = isMapping(doc) ? Object.values(doc).filter(isMapping) : [];
  const forwarded = apps.some((a) => a.destination !== undefined && a.destination !== null && a.destination !== "local");
  const hooks = apps.some((a) => (a.on_open ?? a.on_close ?? null) !== null);
  return {
    parseDestination: forwarded ? (await import("./destination.js")).parseDestination : (text) => (text === "local" ? { kind: "local" } : undefined),
    checkHookArgv: hooks ? (await import("./hooks.js")).checkHookArgv : () => "hook commands were not expected in this file",
  };
}

export function findApp<A extends { readonly name: string }>(config: { readonly apps: readonly A[] }, name: string): A | undefined {
  return config.apps.find((a) => a.name === name);
}

/** The HTTP port clients knock on: nginx's in WAF mode, KnockPort's own otherwise. */
export const publicHttpPort = (config: FirewallConfig): Port => config.waf?.httpPort ?? config.httpPort;
/** The HTTPS port step 1 opens: nginx's in WAF mode, KnockPort's own otherwise. */
export const publicHttpsPort = (config: FirewallConfig): Port => config.waf?.httpsPort ?? config.httpsPort;
