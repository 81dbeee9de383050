import type { Logger } from "./log.js";
import { findApp, type KnockportConfig } from "@knockport/config";
import type { HelloResult, ListResult, MethodHandlers, StatsResult } from "@knockport/protocol";
import type { FirewallBackend } from "./backend.js";
import { GroupCommitter } from "./group-commit.js";
import { ConntrackCutter } from "./conntrack.js";
import { LeaseBook, type Lease, type LeaseJournal } from "./leases.js";
import { LeaseEvents, type RpcPeer } from "./lease-events.js";
import { systemClock, type Clock, type HelperContext } from "./helper-context.js";
import { grantChange, prepareCloseOnTime, prepareSweep, secondsUntil, serviceLeaseEnded } from "./lease-changes.js";
import { Reconciler, type ReconcileCounts } from "./reconcile.js";
import { SELF_HEAL_INTERVAL_MS, reinstall, startSelfHeal, type SelfHeal } from "./self-heal.js";
import { createHandlers, hello, list, stats } from "./rpc-handlers.js";

export { HELPER_VERSION } from "./rpc-handlers.js";
export { RECONCILE_TOLERANCE_MS } from "./reconcile.js";
export { SELF_HEAL_INTERVAL_MS } from "./self-heal.js";
export { systemClock, type Clock } from "./helper-context.js";

/**
 * Lease logic behind the socket. All changes run one at a time (firewall, then journal), so
 * concurrent knocks never interleave half-applied state. Order is fail-closed: the kernel is
 * changed first and rolled back if the journal cannot record it.
 */
export class HelperService {
  private readonly ctx: HelperContext;
  private readonly reconciler: Reconciler;
  private sweepTimer: NodeJS.Timeout | undefined;
  private selfHeal: SelfHeal | undefined;
  private readonly onTimeTimers = new Map<string, NodeJS.Timeout>();
  /** The connection a request came on; undefined for calls from inside the helper (shutdown, tests). */
  readonly handlers: MethodHandlers<RpcPeer | undefined>;

  constructor(
    config: KnockportConfig,
    firewall: FirewallBackend,
    private readonly journal: LeaseJournal,
    log: Logger,
    clock: Clock = systemClock,
    /** Deletes conntrack entries of ended leases of `close_established` apps (default: none configured). */
    readonly conntrack: ConntrackCutter = new ConntrackCutter(log, undefined),
  ) {
    const book = new LeaseBook();
    this.ctx = {
      config,
      firewall,
      book,
      committer: new GroupCommitter(firewall, () => this.journal.commit(book), log),
      log,
      clock,
      counts: {
        startedAtMs: 0,
        leasesRestored: 0,
        reinstalls: 0,
        reconciliations: 0,
        elementsAdded: 0,
        elementsRetimed: 0,
        elementsRemoved: 0,
        selfHealFailures: 0,
      },
      conntrack,
      events: new LeaseEvents(),
      closeOnTime: (lease) => this.closeOnTime(lease),
    };
    this.reconciler = new Reconciler(this.ctx);
    this.handlers = createHandlers(this.ctx, this);
  }

  /**
   * Install the table and put back the journal's live leases with their remaining time, at most the
   * app's current duration (step 1: step2_https_duration).
   */
  async start(): Promise<void> {
    const { config, firewall, book, log, clock, counts } = this.ctx;
    counts.startedAtMs = clock.now();
    this.journal.prepare();
    const { leases, problem } = this.journal.load();
    if (problem) log.warn({ event: "journal.ignored" }, problem);
    const now = clock.now();
    const restored: Lease[] = [];
    const endedWhileDown: Lease[] = [];
    for (const lease of leases) {
      if (lease.expiresAtMs <= now) {
        endedWhileDown.push(lease);
        continue;
      }
      const app = findApp(config, lease.app);
      if (!app) {
        log.warn({ event: "lease.dropped", app: lease.app, ip: lease.ip }, "journal lease for an app no longer configured");
        continue;
      }
      // A lease never outlives what the current config grants: a lowered duration applies at once.
      const limitMs = now + (lease.step === 1 ? app.step2HttpsDurationSeconds : app.durationSeconds) * 1000;
      const kept = lease.expiresAtMs > limitMs ? { ...lease, expiresAtMs: limitMs } : lease;
      if (kept !== lease) {
        log.info(
          { event: "lease.shortened", app: lease.app, ip: lease.ip, step: lease.step, remainingSeconds: secondsUntil(limitMs, now) },
          "restored lease cut to the app's current duration",
        );
      }
      book.put(kept);
      restored.push(kept);
    }
    await firewall.install(restored.map((l) => grantChange(this.ctx, l, now)));
    counts.leasesRestored += restored.length;
    restored.forEach((l) => this.closeOnTime(l));
    log.info({ event: "firewall.installed", type: firewall.type, restored: restored.length }, "firewall table installed");
    this.journal.commit(book); // the first commit is a whole snapshot
    for (const l of restored) {
      log.info(
        { audit: true, event: "lease.restored", app: l.app, ip: l.ip, step: l.step, remainingSeconds: secondsUntil(l.expiresAtMs, now) },
        "lease restored after restart",
      );
    }
    // The kernel closed these while we were down; record it and run their on_close commands now.
    for (const l of endedWhileDown) {
      log.info(
        { audit: true, event: "lease.expired", app: l.app, ip: l.ip, step: l.step, expiredAt: new Date(l.expiresAtMs).toISOString(), whileDown: true },
        `lease expired for ${l.ip} while the helper was down`,
      );
      serviceLeaseEnded(this.ctx, l, "expired-while-down");
    }
  }

  /** Re-apply the whole firewall with every live lease (see self-heal.ts); `reason` for the log when not a flush from outside. */
  reinstall(reason?: string): Promise<void> {
    return reinstall(this.ctx, this.reconciler, reason);
  }

  /** Reconcile kernel <-> book <-> clock (see reconcile.ts); undefined when the backend cannot list. */
  reconcile(): Promise<ReconcileCounts | undefined> {
    return this.reconciler.reconcile();
  }

  startSelfHeal(intervalMs = SELF_HEAL_INTERVAL_MS): void {
    this.selfHeal = startSelfHeal(
      this.ctx,
      { reinstall: () => this.reinstall(), reconcile: () => this.reconcile(), lastWalkElements: () => this.reconciler.lastWalkElements },
      intervalMs,
    );
  }

  /** The `stats` method: counts since this helper started. */
  stats(): StatsResult {
    return stats(this.ctx);
  }

  hello(): HelloResult {
    return hello(this.ctx);
  }

  /** Live leases, soonest end first, with the counters of the last reconciliation (see rpc-handlers.ts). */
  list(): ListResult {
    return list(this.ctx, this.reconciler.counters);
  }

  startExpirySweep(intervalMs = 1000): void {
    this.sweepTimer = setInterval(() => {
      const now = this.ctx.clock.now();
      if (!this.ctx.book.hasExpired(now)) return; // nothing ended: no journal write
      void this.ctx.committer.submit(() => prepareSweep(this.ctx)).catch(() => undefined);
    }, intervalMs);
    this.sweepTimer.unref();
  }

  /**
   * Kernel timeouts are whole seconds, so a lease put back with its remaining time (restart, re-apply,
   * reconcile) is rounded up and would end up to 1 s after its deadline. This removes its element on the
   * deadline itself, unless the lease was refreshed or closed meanwhile. (Knocks and grants need none:
   * their durations are whole seconds from the moment of the grant.)
   */
  private closeOnTime(lease: Lease): void {
    const { clock, committer } = this.ctx;
    const key = `${lease.step}|${lease.app}|${lease.ip}`;
    clearTimeout(this.onTimeTimers.get(key));
    const timer = setTimeout(
      () => {
        this.onTimeTimers.delete(key);
        // A timer may fire a millisecond before the clock reaches the deadline: wait for it.
        if (lease.expiresAtMs > clock.now()) return this.closeOnTime(lease);
        void committer.submit(() => prepareCloseOnTime(this.ctx, lease)).catch(() => undefined);
      },
      Math.max(0, lease.expiresAtMs - clock.now()),
    );
    timer.unref();
    this.onTimeTimers.set(key, timer);
  }

  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.selfHeal?.stop();
    for (const t of this.onTimeTimers.values()) clearTimeout(t);
    this.onTimeTimers.clear();
  }
}
