import type { Logger } from "./log.js";
import type { FirewallConfig as KnockportConfig } from "@knockport/config/firewall";
import { serviceSetName } from "@knockport/firewall";
import { ipFamily, parseIpAddress, zeroStatsCounters, type LeaseEvent, type ListResult, type MethodHandlers, logEvent } from "@knockport/protocol";
import type { FirewallBackend } from "./backend.js";
import { GroupCommitter } from "./group-commit.js";
import { LeaseBook, type Lease } from "./leases.js";
import type { Clock, Conntrack, HelperContext, HelperCounts, RpcPeer } from "./helper-context.js";
import { grantChange, prepareCloseOnTime, prepareSweep, secondsUntil } from "./lease-changes.js";
import { Reconciler, type ReconcileCounts } from "./reconcile.js";
import { SELF_HEAL_INTERVAL_MS, startSelfHeal } from "./self-heal.js";
import { createHandlers, list } from "./rpc-handlers.js";

export const systemClock: Clock = { now: () => Date.now() };

/** Without `close_established` apps no flow is ever cut (conntrack.ts is not even loaded). */
const NO_CONNTRACK: Conntrack = { applies: () => false, cut: async () => undefined, idle: async () => undefined };

/**
 * Lease logic behind the sockets. All changes run through one group committer, so concurrent knocks
 * never interleave half-applied state, and the book changes only with the kernel.
 */
export class HelperService implements HelperContext {
  readonly book = new LeaseBook();
  readonly committer: GroupCommitter;
  readonly counts: HelperCounts = { startedAtMs: 0, ...zeroStatsCounters() };
  readonly subscribers = new Set<(event: LeaseEvent) => void>();
  /** The connection a request came on; undefined for calls from inside the helper (shutdown, tests). */
  readonly handlers: MethodHandlers<RpcPeer | undefined>;
  private readonly reconciler = new Reconciler(this);
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly onTimeTimers = new Map<string, NodeJS.Timeout>();
  private stopSelfHeal: (() => void) | undefined;

  constructor(
    readonly config: KnockportConfig,
    readonly firewall: FirewallBackend,
    readonly log: Logger,
    readonly clock: Clock = systemClock,
    /** Deletes conntrack entries of ended leases of `close_established` apps (default: none configured). */
    readonly conntrack: Conntrack = NO_CONNTRACK,
  ) {
    this.committer = new GroupCommitter(firewall, log);
    this.handlers = createHandlers(this, this);
  }

  /**
   * Install the table with the leases the kernel still holds. Our sets' timed elements are the lease
   * book that outlives the helper: a restart or a crash reads them back with the time the kernel has
   * left, so it loses nothing that still protects, and no knock waits for a disk. Service (step-2)
   * elements name their app by their set; the HTTPS element is shared by every app's step 1 and cannot
   * say whose it was, so it is not put back: a knock under way repeats step 1 (fail closed). An element
   * without a timeout was never ours (reconcile removes such strays). A lease never outlives what the
   * current config grants: a lowered duration applies at once.
   */
  async start(): Promise<void> {
    const { config, firewall, book, log, clock, counts } = this;
    counts.startedAtMs = clock.now();
    const bySet = new Map(config.apps.flatMap((a) => ([4, 6] as const).map((f) => [serviceSetName(a.name, f), { app: a, f }] as const)));
    const listed = (await firewall.listElements?.(new Set(bySet.keys()))) ?? [];
    const now = clock.now();
    const restored: Lease[] = [];
    for (const e of listed) {
      const owner = bySet.get(e.set);
      const ip = parseIpAddress(e.ip);
      if (!owner || !ip || ipFamily(ip) !== owner.f || !Number.isFinite(e.expiresInMs) || e.expiresInMs <= 0) continue;
      const limitMs = now + owner.app.durationSeconds * 1000;
      const lease: Lease = { app: owner.app.name, ip, step: 2, expiresAtMs: Math.min(now + e.expiresInMs, limitMs) };
      if (lease.expiresAtMs < now + e.expiresInMs) {
        logEvent(log, "info", "lease.shortened", { app: lease.app, ip, step: 2, remainingSeconds: secondsUntil(limitMs, now) }, "restored lease cut to the app's current duration");
      }
      book.put(lease);
      restored.push(lease);
    }
    await firewall.install(restored.map((l) => grantChange(this, l, now)));
    counts.leasesRestored += restored.length;
    restored.forEach((l) => this.closeOnTime(l));
    logEvent(log, "info", "firewall.installed", { type: firewall.type, restored: restored.length }, "firewall table installed");
    for (const l of restored) {
      logEvent(log, "info", "lease.restored",
        { audit: true, app: l.app, ip: l.ip, step: l.step, remainingSeconds: secondsUntil(l.expiresAtMs, now) },
        "lease restored after restart",
      );
    }
  }

  /** Re-apply the whole firewall with every live lease; `reason` for the log when not a flush from outside. */
  reinstall(reason?: string): Promise<void> {
    return this.reconciler.reinstall(reason);
  }

  /** Reconcile kernel <-> book <-> clock; undefined when the backend cannot list. */
  reconcile(): Promise<ReconcileCounts | undefined> {
    return this.reconciler.reconcile();
  }

  startSelfHeal(intervalMs = SELF_HEAL_INTERVAL_MS): void {
    this.stopSelfHeal = startSelfHeal(this, this.reconciler, intervalMs)?.stop;
  }

  /** Live leases, soonest end first, with the counters of the last reconciliation. */
  list(): ListResult {
    return list(this, this.reconciler.counters);
  }

  startExpirySweep(intervalMs = 1000): void {
    this.sweepTimer = setInterval(() => {
      if (!this.book.hasExpired(this.clock.now())) return; // nothing ended: no commit
      void this.committer.submit(() => prepareSweep(this)).catch(() => undefined);
    }, intervalMs);
    this.sweepTimer.unref();
  }

  /**
   * Kernel timeouts are whole seconds, so a lease put back with its remaining time (restart, re-apply,
   * reconcile) is rounded up and would end up to 1 s after its deadline. This removes its element on the
   * deadline itself, unless the lease was refreshed or closed meanwhile. (Knocks and grants need none:
   * their durations are whole seconds from the moment of the grant.)
   */
  closeOnTime(lease: Lease): void {
    const key = `${lease.step}|${lease.app}|${lease.ip}`;
    clearTimeout(this.onTimeTimers.get(key));
    const timer = setTimeout(
      () => {
        this.onTimeTimers.delete(key);
        // A timer may fire a millisecond before the clock reaches the deadline: wait for it.
        if (lease.expiresAtMs > this.clock.now()) return this.closeOnTime(lease);
        void this.committer.submit(() => prepareCloseOnTime(this, lease)).catch(() => undefined);
      },
      Math.max(0, lease.expiresAtMs - this.clock.now()),
    );
    timer.unref();
    this.onTimeTimers.set(key, timer);
  }

  stop(): void {
    clearInterval(this.sweepTimer);
    this.stopSelfHeal?.();
    this.onTimeTimers.forEach(clearTimeout);
    this.onTimeTimers.clear();
  }
}
