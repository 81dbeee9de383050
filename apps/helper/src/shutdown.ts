import type { Logger } from "./log.js";
import type { HelperService } from "./service.js";
import { logEvent } from "@knockport/protocol";

/**
 * `--service-rule-cleanup-on-shutdown` (the original's flag): on a clean stop, end every live lease
 * the way `close` does — the app's service element and, once no step-1 lease of the address is left,
 * its HTTPS element are revoked, so a restart finds nothing in the kernel to bring back.
 * The table, its chains and its drop rules stay: a stopped helper never leaves a port open.
 */
export async function revokeAllLeases(
  service: Pick<HelperService, "list" | "handlers">,
  log: Logger,
): Promise<{ revoked: number; failed: number }> {
  const pairs = new Map<string, { app: string; ip: string }>();
  for (const l of service.list().leases) pairs.set(`${l.app}\u0000${l.ip}`, { app: l.app, ip: l.ip });
  let revoked = 0;
  let failed = 0;
  for (const p of pairs.values()) {
    try {
      revoked += (await service.handlers.close(p, undefined)).closed;
    } catch (err) {
      failed += 1;
      logEvent(log, "error", "lease.revoke_failed", { app: p.app, ip: p.ip, err: (err as Error).message }, "could not revoke a lease at shutdown");
    }
  }
  logEvent(log, "info", "leases.revoked_on_shutdown", { revoked, failed }, `revoked ${revoked} live lease(s) at shutdown; the firewall table and its drops stay`);
  return { revoked, failed };
}
