import type { Logger } from "./log.js";
import { ConfigError, checkInterfaces, listHostInterfaces, type FirewallConfig as KnockportConfig } from "@knockport/config/firewall";
import type { FirewallBackend } from "./backend.js";
import { logEvent } from "@knockport/protocol";

export function appsOn(config: KnockportConfig, name: string): string[] {
  return config.apps.filter((a) => a.interfaceExt === name || a.interfaceInt === name).map((a) => a.name);
}

export function logMissing(log: Logger, config: KnockportConfig, name: string): void {
  logEvent(log, "error", "interface.missing",
    { interface: name, apps: appsOn(config, name) },
    `interface ${name} is missing: the ports of the apps on it are dropped on every interface until it appears`,
  );
}

/**
 * At start, before any firewall command: an interface of the config this host lacks is rendered
 * fail-closed (its apps' ports dropped on every interface) and logged; one that
 * global.allow_missing_interfaces does not list is logged as a config error too (check-config refuses
 * it). Refusing to start instead would leave those ports as the host's policy has them, usually open.
 * A backend that cannot fail closed refuses (ConfigError, exit 2).
 */
export function prepareInterfaces(
  config: KnockportConfig,
  firewall: FirewallBackend,
  log: Logger,
  list: () => string[] = () => listHostInterfaces(),
): readonly string[] {
  const allowed = config.global.allowMissingInterfaces ?? [];
  if (allowed.length > 0 && firewall.setMissingInterfaces === undefined) {
    throw new ConfigError("CONFIG_INVALID", config.file, [
      `${config.file}: global.allow_missing_interfaces needs --firewall-type nftables (the ${firewall.type} backend cannot drop a missing interface's ports everywhere)`,
    ]);
  }
  const { waiting, unlisted, problems } = checkInterfaces(config, list());
  if (unlisted.length > 0 && firewall.setMissingInterfaces === undefined) throw new ConfigError("CONFIG_INVALID", config.file, problems);
  firewall.setMissingInterfaces?.([...waiting, ...unlisted]);
  for (const name of waiting) logMissing(log, config, name);
  for (const problem of problems) {
    logEvent(log, "error", "interface.unknown", { err: problem }, `${problem}; failing closed until it exists`);
  }
  for (const name of unlisted) logMissing(log, config, name);
  return [...waiting, ...unlisted];
}
