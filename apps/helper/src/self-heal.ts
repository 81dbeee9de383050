import type { HelperContext } from "./helper-context.js";
import { grantChange } from "./lease-changes.js";
import type { Reconciler } from "./reconcile.js";
import { nextWalkDelayMs } from "./reconcile-cadence.js";

/** How often the self-heal loop checks the firewall (and, while it is in place, reconciles its sets). */
export const SELF_HEAL_INTERVAL_MS = 2000;

/**
 * Re-apply the whole firewall with every live lease, after our table / chains vanished (`nft flush
 * ruleset`, `iptables -F -X`, a VyOS commit). Not serialised with the group committer: a grant
 * committed in the same few milliseconds may have to be knocked again (it is in the book, so the next
 * reinstall or restart puts it back).
 */
export async function reinstall(ctx: HelperContext, reconciler: Reconciler): Promise<void> {
  const now = ctx.clock.now();
  const live = ctx.book.all().filter((l) => l.expiresAtMs > now);
  await ctx.firewall.install(live.map((l) => grantChange(ctx, l, now)));
  // Fresh sets: every counter restarted at 0; the next reconciliation reads them again.
  reconciler.counters = undefined;
  ctx.counts.reinstalls += 1;
  live.forEach((l) => ctx.closeOnTime(l));
  ctx.log.warn(
    { audit: true, event: "firewall.reinstalled", type: ctx.firewall.type, restored: live.length },
    "the firewall rules were gone (flushed from outside); re-applied with the live leases",
  );
}

/**
 * Every `intervalMs`: when our table / chains are gone from the kernel (`nft flush ruleset`, a
 * VyOS commit...) re-apply them with the live leases; while they are there, reconcile the sets'
 * elements with the leases (which also reads the per-element counters), on every tick while that walk
 * is cheap and less often once it is not (nextWalkDelayMs). One check at a time; a failed
 * check or re-apply is logged, counted and retried at the next tick. Backends that cannot tell whether
 * they are installed are never re-applied (undefined: no loop).
 */
export function startSelfHeal(
  ctx: HelperContext,
  loop: { reinstall(): Promise<void>; reconcile(): Promise<unknown>; lastWalkElements(): number },
  intervalMs: number,
): NodeJS.Timeout | undefined {
  const isInstalled = ctx.firewall.isInstalled?.bind(ctx.firewall);
  if (isInstalled === undefined) return undefined;
  let busy = false;
  let nextWalkAt = 0;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void (async () => {
      try {
        if (!(await isInstalled())) await loop.reinstall();
        // Real time, not the lease clock. Half a tick of slack: a walk due "now" must not slip to the tick after.
        else if (performance.now() >= nextWalkAt - intervalMs / 2) {
          const started = performance.now();
          await loop.reconcile();
          nextWalkAt = started + nextWalkDelayMs(loop.lastWalkElements(), intervalMs);
        }
      } catch (err) {
        ctx.counts.selfHealFailures += 1;
        ctx.log.error({ event: "firewall.selfheal_failed", err: (err as Error).message }, "could not check or re-apply the firewall; retrying");
      } finally {
        busy = false;
      }
    })();
  }, intervalMs);
  timer.unref();
  return timer;
}
