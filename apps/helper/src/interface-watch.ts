import type { Logger } from "./log.js";
import { ConfigError, checkInterfaces, listHostInterfaces, type FirewallConfig as KnockportConfig } from "@knockport/config/firewall";
import type { FirewallBackend } from "./backend.js";

/** How often the helper looks for interfaces allowed to be missing (global.allow_missing_interfaces). */
export const INTERFACE_WATCH_INTERVAL_MS = 2000;

function appsOn(config: KnockportConfig, name: string): string[] {
  return config.apps.filter((a) => a.interfaceExt === name || a.interfaceInt === name).map((a) => a.name);
}

function logMissing(log: Logger, config: KnockportConfig, name: string): void {
  log.error(
    { event: "interface.missing", interface: name, apps: appsOn(config, name) },
    `interface ${name} is missing: the ports of the apps on it are dropped on every interface until it appears`,
  );
}

/** Every interface of the config this host lacks, whether allow_missing_interfaces lists it or not. */
function missingNow(config: KnockportConfig, present: readonly string[]): string[] {
  const { waiting, unlisted } = checkInterfaces(config, present);
  return [...waiting, ...unlisted];
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
    log.error({ event: "interface.unknown", err: problem }, `${problem}; failing closed until it exists`);
  }
  for (const name of unlisted) logMissing(log, config, name);
  return [...waiting, ...unlisted];
}

/**
 * Every `intervalMs` while global.allow_missing_interfaces is set: when one of those interfaces
 * appears or goes, the whole firewall is re-applied with the live leases (`reinstall`), its apps'
 * rules on the interface once it is there, dropped everywhere while it is not. A failed re-apply is
 * logged and tried again at the next tick.
 */
export function startInterfaceWatch(opts: {
  config: KnockportConfig;
  firewall: FirewallBackend;
  log: Logger;
  initial: readonly string[];
  reinstall: () => Promise<void>;
  list?: () => string[];
  intervalMs?: number;
}): NodeJS.Timeout | undefined {
  const { config, firewall, log } = opts;
  if (((config.global.allowMissingInterfaces ?? []).length === 0 && opts.initial.length === 0) || firewall.setMissingInterfaces === undefined) return undefined;
  const list = opts.list ?? (() => listHostInterfaces());
  let applied = [...opts.initial];
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void (async () => {
      try {
        const now = missingNow(config, list());
        if (now.length === applied.length && now.every((n) => applied.includes(n))) return;
        firewall.setMissingInterfaces?.(now);
        await opts.reinstall();
        for (const name of now.filter((n) => !applied.includes(n))) logMissing(log, config, name);
        for (const name of applied.filter((n) => !now.includes(n))) {
          log.warn({ event: "interface.appeared", interface: name, apps: appsOn(config, name) }, `interface ${name} appeared: its apps' rules are in place`);
        }
        applied = now;
      } catch (err) {
        firewall.setMissingInterfaces?.(applied);
        log.error({ event: "interface.watch_failed", err: (err as Error).message }, "could not re-apply the firewall for an interface change; retrying");
      } finally {
        busy = false;
      }
    })();
  }, opts.intervalMs ?? INTERFACE_WATCH_INTERVAL_MS);
  timer.unref();
  return timer;
}
