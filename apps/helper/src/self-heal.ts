import type { HelperContext } from "./helper-context.js";
import type { Reconciler } from "./reconcile.js";
import { logEvent } from "@knockport/protocol";

/** How often the self-heal loop checks the firewall (and, while it is in place, reconciles its sets). */
export const SELF_HEAL_INTERVAL_MS = 2000;

/** A re-apply within this long of the previous one waits for the rest: two tools fighting over the rules cannot spin. */
export const MIN_REINSTALL_GAP_MS = 1000;

/** Checks in a row one run may make when changes keep arriving; later ones wait for the next event or tick. */
const MAX_CHECKS_PER_RUN = 5;

/**
 * How often the walk over every lease element (reconcile) runs. Its cost grows with their number (nft's
 * listing plus the parse and compare: about 0.1-0.2 s at 10,000 elements, measured with `pnpm bench
 * --profile`). Up to WALK_ELEMENTS_PER_TICK elements it runs on every tick; beyond, one tick more per
 * that many elements (10,000: every 5th tick, 10 s), at most every MAX_WALK_INTERVAL_MS. Counted in
 * elements, not in measured time, so a loaded machine never slows the walk of a small table. The check
 * that our table is still there runs on every tick regardless.
 */
export const WALK_ELEMENTS_PER_TICK = 2000;
export const MAX_WALK_INTERVAL_MS = 30_000;

/** Milliseconds from the start of a walk over `elements` elements to the start of the next one. */
export function nextWalkDelayMs(elements: number, tickMs: number): number {
  return Math.min(tickMs * Math.max(1, Math.ceil(elements / WALK_ELEMENTS_PER_TICK)), Math.max(tickMs, MAX_WALK_INTERVAL_MS));
}

/**
 * Every `intervalMs`, and at once whenever the backend reports that our rules may have changed (`nft
 * monitor`, a refused change): when the kernel no longer holds exactly the rules we installed (`nft flush
 * ruleset`, a flushed table or chain, a deleted rule or jump, a VyOS commit...) re-apply them all with the
 * live leases; while they are in place, the periodic tick also reconciles the sets' elements with the
 * leases (which reads the per-element counters), as often as nextWalkDelayMs allows. One check at a time;
 * a change reported during a check runs another right after it. A failed check or re-apply is logged,
 * counted and retried at the next tick. Backends that cannot tell whether they are installed are never
 * re-applied (undefined: no loop).
 */
export function startSelfHeal(
  ctx: HelperContext,
  loop: Pick<Reconciler, "reinstall" | "reconcile" | "lastWalkElements">,
  intervalMs: number,
): { stop(): void } | undefined {
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
          nextWalkAt = started + nextWalkDelayMs(loop.lastWalkElements, intervalMs);
        }
      }
    } catch (err) {
      ctx.counts.selfHealFailures += 1;
      logEvent(ctx.log, "error", "firewall.selfheal_failed", { err: (err as Error).message }, "could not check or re-apply the firewall; retrying");
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void run(true), intervalMs);
  timer.unref();
  const unwatch = ctx.firewall.watch?.((reason) => {
    logEvent(ctx.log, "debug", "firewall.changed", { reason }, "the firewall may have changed; checking");
    void run(false);
  }, ctx.log);
  return {
    stop: () => {
      clearInterval(timer);
      unwatch?.();
    },
  };
}
