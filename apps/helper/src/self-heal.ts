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
export async function reinstall(ctx: HelperContext, reconciler: Reconciler, reason?: string): Promise<void> {
  const now = ctx.clock.now();
  const live = ctx.book.all().filter((l) => l.expiresAtMs > now);
  await ctx.firewall.install(live.map((l) => grantChange(ctx, l, now)));
  // Fresh sets: every counter restarted at 0; the next reconciliation reads them again.
  reconciler.counters = undefined;
  ctx.counts.reinstalls += 1;
  live.forEach((l) => ctx.closeOnTime(l));
  ctx.log.warn(
    { audit: true, event: "firewall.reinstalled", type: ctx.firewall.type, restored: live.length, ...(reason === undefined ? {} : { reason }) },
    reason === undefined ? "the firewall rules were gone (flushed from outside); re-applied with the live leases" : `${reason}; re-applied with the live leases`,
  );
}

/** A re-apply within this long of the previous one waits for the rest: two tools fighting over the rules cannot spin. */
export const MIN_REINSTALL_GAP_MS = 1000;

/** Checks in a row one run may make when changes keep arriving; later ones wait for the next event or tick. */
const MAX_CHECKS_PER_RUN = 5;

export interface SelfHeal {
  /** Check (and re-apply if needed) at once: our rules may have changed. */
  checkNow(reason: string): void;
  stop(): void;
}

/**
 * Every `intervalMs`, and at once whenever the backend reports that our rules may have changed (`nft
 * monitor`, a refused change): when the kernel no longer holds exactly the rules we installed (`nft flush
 * ruleset`, a flushed table or chain, a deleted rule or jump, a VyOS commit...) re-apply them all with the
 * live leases; while they are in place, the periodic tick also reconciles the sets' elements with the
 * leases (which reads the per-element counters), on every tick while that walk is cheap and less often
 * once it is not (nextWalkDelayMs). One check at a time; a change reported during a check runs another
 * right after it. A failed check or re-apply is logged, counted and retried at the next tick. Backends that
 * cannot tell whether they are installed are never re-applied (undefined: no loop).
 */
export function startSelfHeal(
  ctx: HelperContext,
  loop: { reinstall(): Promise<void>; reconcile(): Promise<unknown>; lastWalkElements(): number },
  intervalMs: number,
): SelfHeal | undefined {
  const isInstalled = ctx.firewall.isInstalled?.bind(ctx.firewall);
  if (isInstalled === undefined) return undefined;
  let busy = false;
  let again = false;
  let nextWalkAt = 0;
  let lastReinstallAt = -Infinity;
  const check = async (): Promise<void> => {
    if (await isInstalled()) return;
    const wait = lastReinstallAt + MIN_REINSTALL_GAP_MS - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    lastReinstallAt = performance.now();
    await loop.reinstall();
  };
  const run = async (tick: boolean): Promise<void> => {
    if (busy) {
      if (!tick) again = true;
      return;
    }
    busy = true;
    try {
      for (let i = 0; i < MAX_CHECKS_PER_RUN && (i === 0 || again); i++) {
        again = false;
        const installedBefore = ctx.counts.reinstalls;
        await check();
        // Real time, not the lease clock. Half a tick of slack: a walk due "now" must not slip to the tick after.
        if (tick && i === 0 && ctx.counts.reinstalls === installedBefore && performance.now() >= nextWalkAt - intervalMs / 2) {
          const started = performance.now();
          await loop.reconcile();
          nextWalkAt = started + nextWalkDelayMs(loop.lastWalkElements(), intervalMs);
        }
      }
    } catch (err) {
      ctx.counts.selfHealFailures += 1;
      ctx.log.error({ event: "firewall.selfheal_failed", err: (err as Error).message }, "could not check or re-apply the firewall; retrying");
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void run(true), intervalMs);
  timer.unref();
  const unwatch = ctx.firewall.watch?.((reason) => {
    ctx.log.debug({ event: "firewall.changed", reason }, "the firewall may have changed; checking");
    void run(false);
  }, ctx.log);
  return {
    checkNow: (reason) => {
      ctx.log.debug({ event: "firewall.changed", reason }, "checking the firewall");
      void run(false);
    },
    stop: () => {
      clearInterval(timer);
      unwatch?.();
    },
  };
}
