import type { Logger } from "./log.js";
import { checkInterfaces, listHostInterfaces, type FirewallConfig as KnockportConfig } from "@knockport/config/firewall";
import type { FirewallBackend } from "./backend.js";
import { appsOn, logMissing } from "./interfaces.js";
import { logEvent } from "@knockport/protocol";

/** How often the helper looks for interfaces allowed to be missing (global.allow_missing_interfaces). */
export const INTERFACE_WATCH_INTERVAL_MS = 2000;

/** Every interface of the config this host lacks, whether allow_missing_interfaces lists it or not. */
function missingNow(config: KnockportConfig, present: readonly string[]): string[] {
  const { waiting, unlisted } = checkInterfaces(config, present);
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
          logEvent(log, "warn", "interface.appeared", { interface: name, apps: appsOn(config, name) }, `interface ${name} appeared: its apps' rules are in place`);
        }
        applied = now;
      } catch (err) {
        firewall.setMissingInterfaces?.(applied);
        logEvent(log, "error", "interface.watch_failed", { err: (err as Error).message }, "could not re-apply the firewall for an interface change; retrying");
      } finally {
        busy = false;
      }
    })();
  }, opts.intervalMs ?? INTERFACE_WATCH_INTERVAL_MS);
  timer.unref();
  return timer;
}
