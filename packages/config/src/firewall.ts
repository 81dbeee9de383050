/**
 * The config as the root helper reads it (`@knockport/config/firewall`): the keys its rules, leases
 * and hook events use, validated by the same schema objects and checks as the server's loadConfig.
 */
import type { Port } from "@knockport/protocol";
import { parseFirewall } from "./firewall-parse.js";
import { readYaml } from "./read-yaml.js";
import type { FirewallConfig, PortOverrides } from "./types.js";

export { ConfigError } from "./errors.js";
export * from "./firewall-schema.js";
export { checkInterfaces, listHostInterfaces, refuseMissingInterfaces, type InterfaceCheck } from "./interfaces.js";
export type * from "./types.js";

/** Like loadConfig, for the helper: ConfigError naming file and key for anything it cannot use. */
export async function loadFirewallConfig(file: string, overrides: PortOverrides = {}): Promise<FirewallConfig> {
  return parseFirewallConfig(readYaml(file), file, overrides);
}

export async function parseFirewallConfig(doc: unknown, file: string, overrides: PortOverrides = {}): Promise<FirewallConfig> {
  const { config, problems } = parseFirewall(doc, file, overrides);
  if (config) return config;
  // Wording the schema's errors takes the whole schema and its hints: loaded only for a file that has some.
  throw (await import("./describe.js")).configInvalid(file, problems);
}

export function findApp<A extends { readonly name: string }>(config: { readonly apps: readonly A[] }, name: string): A | undefined {
  return config.apps.find((a) => a.name === name);
}

/** The HTTP port clients knock on: nginx's in WAF mode, KnockPort's own otherwise. */
export function publicHttpPort(config: FirewallConfig): Port {
  return config.waf?.httpPort ?? config.httpPort;
}

/** The HTTPS port step 1 opens: nginx's in WAF mode, KnockPort's own otherwise. */
export function publicHttpsPort(config: FirewallConfig): Port {
  return config.waf?.httpsPort ?? config.httpsPort;
}
