import type { Logger } from "pino";
import { findApp, publicHttpsPort, type AppConfig, type KnockportConfig } from "@knockport/config";
import { httpsSetName, serviceSetName } from "@knockport/firewall";
import {
  HelperError,
  PROTOCOL_VERSION,
  ipFamily,
  parseIpAddress,
  type CloseParams,
  type CloseResult,
  type GrantParams,
  type GrantResult,
  type HelloResult,
  type IpAddress,
  type KnockStep,
  type LeaseInfo,
  type ListResult,
  type MethodHandlers,
  type OpenParams,
  type OpenResult,
  type StatsResult,
} from "@knockport/protocol";
import type { FirewallBackend, SetChange } from "./backend.js";
import type { KernelElement } from "./nft-elements.js";
import { GroupCommitter, type PreparedChange } from "./group-commit.js";
import { HookRunner } from "./hooks.js";
import { nextWalkDelayMs } from "./reconcile-cadence.js";
import { ConntrackCutter } from "./conntrack.js";
import { LeaseBook, type Lease, type LeaseJournal } from "./leases.js";

export const HELPER_VERSION = "0.1.0";

export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

/** How far an element's kernel deadline may differ from its lease's before reconciliation resets it. */
export const RECONCILE_TOLERANCE_MS = 2500;

function secondsUntil(deadlineMs: number, nowMs: number): number {
  return Math.max(1, Math.ceil((deadlineMs - nowMs) / 1000));
}

/** A kernel element of one of our sets, its address in canonical form; `key` is `<set>|<ip>`. */
interface OurElement extends KernelElement {
  readonly ip: IpAddress;
  readonly key: string;
}

/** Per-element counters from the last kernel listing, by `<set>|<ip>`. */
interface CounterReading {
  readonly atMs: number;
  readonly byElement: ReadonlyMap<string, Pick<KernelElement, "packets" | "bytes">>;
}

/** How often the self-heal loop checks the firewall (and, while it is in place, reconciles its sets). */
export const SELF_HEAL_INTERVAL_MS = 2000;

/**
 * Lease logic behind the socket. All changes run one at a time (firewall, then journal), so
 * concurrent knocks never interleave half-applied state. Order is fail-closed: the kernel is
 * changed first and rolled back if the journal cannot record it.
 */
export class HelperService {
  private readonly book = new LeaseBook();
  private readonly committer: GroupCommitter;
  private sweepTimer: NodeJS.Timeout | undefined;
  private selfHealTimer: NodeJS.Timeout | undefined;
  /** Elements the last reconcile listed (sets the walk's cadence). */
  private lastWalkElements = 0;
  /** Counters as the last reconciliation listed them (list() shows them, no kernel call of its own). */
  private counters: CounterReading | undefined;
  /** What the `stats` method reports (server /metrics: knockport_helper_*). */
  private readonly counts = {
    startedAtMs: 0,
    leasesRestored: 0,
    reinstalls: 0,
    reconciliations: 0,
    elementsAdded: 0,
    elementsRetimed: 0,
    elementsRemoved: 0,
    selfHealFailures: 0,
  };

  constructor(
    private readonly config: KnockportConfig,
    private readonly firewall: FirewallBackend,
    private readonly journal: LeaseJournal,
    private readonly log: Logger,
    private readonly clock: Clock = systemClock,
    /** Runs apps' on_open / on_close commands; tests pass one with a short timeout. */
    readonly hooks: HookRunner = new HookRunner(log),
    /** Deletes conntrack entries of ended leases of `close_established` apps (default: none configured). */
    readonly conntrack: ConntrackCutter = new ConntrackCutter(log, undefined),
  ) {
    this.committer = new GroupCommitter(firewall, () => this.journal.commit(this.book), log);
  }

  /** Install the table and put back the journal's live leases with their remaining time. */
  async start(): Promise<void> {
    this.counts.startedAtMs = this.clock.now();
    this.journal.prepare();
    const { leases, problem } = this.journal.load();
    if (problem) this.log.warn({ event: "journal.ignored" }, problem);
    const now = this.clock.now();
    const restored: Lease[] = [];
    const endedWhileDown: Lease[] = [];
    for (const lease of leases) {
      if (lease.expiresAtMs <= now) {
        endedWhileDown.push(lease);
        continue;
      }
      if (!findApp(this.config, lease.app)) {
        this.log.warn({ event: "lease.dropped", app: lease.app, ip: lease.ip }, "journal lease for an app no longer configured");
        continue;
      }
      this.book.put(lease);
      restored.push(lease);
    }
    await this.firewall.install(restored.map((l) => this.grantChange(l, now)));
    this.counts.leasesRestored += restored.length;
    restored.forEach((l) => this.closeOnTime(l));
    this.log.info({ event: "firewall.installed", type: this.firewall.type, restored: restored.length }, "firewall table installed");
    this.journal.commit(this.book); // the first commit is a whole snapshot
    for (const l of restored) {
      this.log.info(
        { audit: true, event: "lease.restored", app: l.app, ip: l.ip, step: l.step, remainingSeconds: secondsUntil(l.expiresAtMs, now) },
        "lease restored after restart",
      );
    }
    // The kernel closed these while we were down; record it and run their on_close commands now.
    for (const l of endedWhileDown) {
      this.log.info(
        { audit: true, event: "lease.expired", app: l.app, ip: l.ip, step: l.step, expiredAt: new Date(l.expiresAtMs).toISOString(), whileDown: true },
        `lease expired for ${l.ip} while the helper was down`,
      );
      this.serviceLeaseEnded(l, "expired-while-down");
    }
  }

  /**
   * A service lease ended (expiry, expired while down): its on_close command and, for `close_established`
   * apps, the deletion of the client's conntrack entries. Not awaited: the caller does not wait for them.
   */
  private serviceLeaseEnded(lease: Lease, reason: string): void {
    const app = findApp(this.config, lease.app);
    if (lease.step !== 2 || !app) return;
    if (HookRunner.has(app, "on_close")) void this.hooks.run({ kind: "on_close", app, ip: lease.ip, durationSeconds: 0, reason });
    void this.conntrack.cut(app, lease.ip, reason);
  }

  /**
   * Re-apply the whole firewall with every live lease, after our table / chains vanished (`nft flush
   * ruleset`, `iptables -F -X`, a VyOS commit). Not serialised with the group committer: a grant
   * committed in the same few milliseconds may have to be knocked again (it is in the book, so the next
   * reinstall or restart puts it back).
   */
  async reinstall(): Promise<void> {
    const now = this.clock.now();
    const live = this.book.all().filter((l) => l.expiresAtMs > now);
    await this.firewall.install(live.map((l) => this.grantChange(l, now)));
    // Fresh sets: every counter restarted at 0; the next reconciliation reads them again.
    this.counters = undefined;
    this.counts.reinstalls += 1;
    live.forEach((l) => this.closeOnTime(l));
    this.log.warn(
      { audit: true, event: "firewall.reinstalled", type: this.firewall.type, restored: live.length },
      "the firewall rules were gone (flushed from outside); re-applied with the live leases",
    );
  }

  /** The sets that hold lease elements (HTTPS and every app's service sets, both families). */
  private leaseSets(): Set<string> {
    const sets = new Set<string>([httpsSetName(4), httpsSetName(6)]);
    for (const a of this.config.apps) for (const f of [4, 6] as const) sets.add(serviceSetName(a.name, f));
    return sets;
  }

  /**
   * Changes that make the kernel's lease elements match the book and the clock: live leases missing from
   * the kernel are added with their remaining time, elements that would end more than
   * RECONCILE_TOLERANCE_MS before or after their lease (a hand-made `timeout 1h`, an element without a
   * timeout) are set to the remaining time, and elements no lease accounts for (strays) are removed.
   * `add` after `delete` and set semantics mean nothing is ever duplicated.
   */
  private reconcileChanges(
    kernel: readonly OurElement[],
    nowMs: number,
  ): { changes: SetChange[]; added: number; retimed: number; removed: number; rounded: Lease[] } {
    const wanted = new Map<string, { change: Extract<SetChange, { op: "grant" }>; deadlineMs: number; leases: Lease[] }>();
    for (const l of this.book.all()) {
      if (l.expiresAtMs <= nowMs || !findApp(this.config, l.app)) continue;
      const change = this.grantChange(l, nowMs);
      const deadlineMs = l.step === 1 ? (this.book.latestStep1Deadline(l.ip, nowMs) ?? l.expiresAtMs) : l.expiresAtMs;
      const key = `${change.set}|${change.ip}`;
      const w = wanted.get(key);
      if (w) w.leases.push(l);
      else wanted.set(key, { change, deadlineMs, leases: [l] });
    }
    const rounded: Lease[] = [];
    const changes: SetChange[] = [];
    const seen = new Set<string>();
    let retimed = 0;
    let removed = 0;
    for (const e of kernel) {
      const key = e.key;
      seen.add(key);
      const w = wanted.get(key);
      if (!w) {
        changes.push({ op: "revoke", set: e.set, ip: e.ip });
        removed += 1;
      } else if (Math.abs(nowMs + e.expiresInMs - w.deadlineMs) > RECONCILE_TOLERANCE_MS || !Number.isFinite(e.expiresInMs)) {
        changes.push(w.change);
        rounded.push(...w.leases);
        retimed += 1;
      }
    }
    let added = 0;
    for (const [key, w] of wanted) {
      if (seen.has(key)) continue;
      changes.push(w.change);
      rounded.push(...w.leases);
      added += 1;
    }
    return { changes, added, retimed, removed, rounded };
  }

  /**
   * Reconcile kernel <-> book <-> clock (run by the self-heal loop while our table is in place). Returns
   * what was changed, or undefined when the backend cannot list its elements or the table is absent.
   * The kernel is read first; the changes are recomputed against the book inside the group commit, so a
   * grant or revoke between the listing and the commit is never undone (at worst re-applied as it is).
   */
  async reconcile(): Promise<{ added: number; retimed: number; removed: number } | undefined> {
    if (this.firewall.listElements === undefined) return undefined;
    const listed = await this.firewall.listElements(this.leaseSets());
    if (listed === undefined) return undefined;
    const kernel = this.ourElements(listed);
    this.lastWalkElements = listed.length;
    this.rememberCounters(kernel);
    this.counts.reconciliations += 1;
    if (this.reconcileChanges(kernel, this.clock.now()).changes.length === 0) return { added: 0, retimed: 0, removed: 0 };
    return this.committer.submit(() => {
      const now = this.clock.now();
      const { changes, rounded, ...counts } = this.reconcileChanges(kernel, now);
      return {
        changes,
        undoBook: () => undefined,
        undoChanges: () => [],
        finish: () => {
          rounded.forEach((l) => this.closeOnTime(l));
          this.counts.elementsAdded += counts.added;
          this.counts.elementsRetimed += counts.retimed;
          this.counts.elementsRemoved += counts.removed;
          if (changes.length > 0) {
            this.log.warn(
              { audit: true, event: "firewall.reconciled", type: this.firewall.type, ...counts },
              "the kernel's lease elements differed from the leases; corrected (missing re-added, wrong timeouts reset, strays removed)",
            );
          }
          return counts;
        },
      };
    });
  }

  /**
   * Listed elements with canonical addresses (parsed once per listing). An address our sets cannot hold
   * in this form (e.g. ::ffff:a.b.c.d in a v6 set) is skipped: reconciliation leaves it to a reinstall.
   */
  private ourElements(listed: readonly KernelElement[]): OurElement[] {
    const out: OurElement[] = [];
    for (const e of listed) {
      const ip = parseIpAddress(e.ip);
      if (!ip || !e.set.endsWith(`_v${ipFamily(ip)}`)) continue;
      out.push({ set: e.set, ip, key: `${e.set}|${ip}`, expiresInMs: e.expiresInMs, packets: e.packets, bytes: e.bytes });
    }
    return out;
  }

  private rememberCounters(kernel: readonly OurElement[]): void {
    // The listed elements themselves, not copies: a reading of 10,000 elements every 2 s stays cheap.
    const byElement = new Map<string, OurElement>();
    for (const e of kernel) if (e.packets !== undefined) byElement.set(e.key, e);
    this.counters = { atMs: this.clock.now(), byElement };
  }

  /**
   * Every SELF_HEAL_INTERVAL_MS: when our table / chains are gone from the kernel (`nft flush ruleset`, a
   * VyOS commit...) re-apply them with the live leases; while they are there, reconcile the sets'
   * elements with the leases (which also reads the per-element counters), on every tick while that walk
   * is cheap and less often once it is not (nextWalkDelayMs). One check at a time; a failed
   * check or re-apply is logged, counted and retried at the next tick. Backends that cannot tell whether
   * they are installed are never re-applied.
   */
  startSelfHeal(intervalMs = SELF_HEAL_INTERVAL_MS): void {
    const isInstalled = this.firewall.isInstalled?.bind(this.firewall);
    if (isInstalled === undefined) return;
    let busy = false;
    let nextWalkAt = 0;
    this.selfHealTimer = setInterval(() => {
      if (busy) return;
      busy = true;
      void (async () => {
        try {
          if (!(await isInstalled())) await this.reinstall();
          // Real time, not the lease clock. Half a tick of slack: a walk due "now" must not slip to the tick after.
          else if (performance.now() >= nextWalkAt - intervalMs / 2) {
            const started = performance.now();
            await this.reconcile();
            nextWalkAt = started + nextWalkDelayMs(this.lastWalkElements, intervalMs);
          }
        } catch (err) {
          this.counts.selfHealFailures += 1;
          this.log.error({ event: "firewall.selfheal_failed", err: (err as Error).message }, "could not check or re-apply the firewall; retrying");
        } finally {
          busy = false;
        }
      })();
    }, intervalMs);
    this.selfHealTimer.unref();
  }

  /** The `stats` method: counts since this helper started. */
  stats(): StatsResult {
    const { startedAtMs, ...counts } = this.counts;
    return { startedAt: new Date(startedAtMs).toISOString(), ...counts };
  }

  startExpirySweep(intervalMs = 1000): void {
    this.sweepTimer = setInterval(() => {
      const now = this.clock.now();
      if (!this.book.hasExpired(now)) return; // nothing ended: no journal write
      void this.committer.submit(() => this.prepareSweep()).catch(() => undefined);
    }, intervalMs);
    this.sweepTimer.unref();
  }

  private readonly onTimeTimers = new Map<string, NodeJS.Timeout>();

  /**
   * Kernel timeouts are whole seconds, so a lease put back with its remaining time (restart, re-apply,
   * reconcile) is rounded up and would end up to 1 s after its deadline. This removes its element on the
   * deadline itself, unless the lease was refreshed or closed meanwhile. (Knocks and grants need none:
   * their durations are whole seconds from the moment of the grant.)
   */
  private closeOnTime(lease: Lease): void {
    const key = `${lease.step}|${lease.app}|${lease.ip}`;
    clearTimeout(this.onTimeTimers.get(key));
    const timer = setTimeout(
      () => {
        this.onTimeTimers.delete(key);
        // A timer may fire a millisecond before the clock reaches the deadline: wait for it.
        if (lease.expiresAtMs > this.clock.now()) return this.closeOnTime(lease);
        void this.committer.submit(() => this.prepareCloseOnTime(lease)).catch(() => undefined);
      },
      Math.max(0, lease.expiresAtMs - this.clock.now()),
    );
    timer.unref();
    this.onTimeTimers.set(key, timer);
  }

  private prepareCloseOnTime(lease: Lease): PreparedChange<void> {
    const now = this.clock.now();
    const current = this.book.get(lease.step, lease.app, lease.ip);
    const stillThat = current !== undefined && current.expiresAtMs === lease.expiresAtMs && current.expiresAtMs <= now;
    const changes: SetChange[] = !stillThat
      ? []
      : lease.step === 1
        ? [this.httpsElementChange(lease.ip, now)]
        : [{ op: "revoke", set: this.setFor(2, lease.app, lease.ip), ip: lease.ip }];
    // The book keeps the lease: the expiry sweep records its end and runs on_close as for any lease.
    return { changes, undoBook: () => undefined, undoChanges: () => [], finish: () => undefined };
  }

  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.selfHealTimer) clearInterval(this.selfHealTimer);
    for (const t of this.onTimeTimers.values()) clearTimeout(t);
    this.onTimeTimers.clear();
  }

  readonly handlers: MethodHandlers<unknown> = {
    hello: async () => this.hello(),
    open: async (p) => {
      const result = await this.committer.submit(() => this.prepareOpen(p));
      // A knock is answered when the kernel and journal hold the grant; its on_open command runs
      // after, so a slow cloud API never makes a knock time out. Failures are audit-logged.
      const app = findApp(this.config, result.app);
      if (p.step === 2 && !result.refreshed && app && HookRunner.has(app, "on_open")) {
        void this.hooks.run({ kind: "on_open", app, ip: result.ip as IpAddress, durationSeconds: result.durationSeconds, reason: "knock" });
      }
      return result;
    },
    close: async (p) => {
      const { serviceLeaseClosed, ...result } = await this.committer.submit(() => this.prepareClose(p));
      const app = findApp(this.config, p.app);
      if (!serviceLeaseClosed || !app) return result;
      // A revoke (and a stop with --service-rule-cleanup-on-shutdown) returns once the flows are cut too.
      const [hooks] = await Promise.all([
        this.hooks.runAll([{ kind: "on_close", app, ip: serviceLeaseClosed.ip, durationSeconds: 0, reason: "revoke" }]),
        this.conntrack.cut(app, serviceLeaseClosed.ip, "revoke"),
      ]);
      return hooks ? { ...result, hooks } : result;
    },
    list: async () => this.list(),
    stats: async () => this.stats(),
    grant: async (p) => {
      const result: GrantResult = await this.committer.submit(() => this.prepareGrant(p));
      const app = findApp(this.config, result.app);
      if (result.refreshed || !app) return result;
      // An admin waits for the on_open command and sees whether it failed.
      const hooks = await this.hooks.runAll([
        { kind: "on_open", app, ip: result.ip as IpAddress, durationSeconds: result.durationSeconds, reason: "admin-grant" },
      ]);
      return hooks ? { ...result, hooks } : result;
    },
  };

  hello(): HelloResult {
    return {
      version: HELPER_VERSION,
      protocolVersion: PROTOCOL_VERSION,
      firewallType: this.firewall.type,
      httpPort: this.config.httpPort,
      httpsPort: this.config.httpsPort,
      ...(this.config.waf ? { waf: { httpPort: this.config.waf.httpPort, httpsPort: this.config.waf.httpsPort } } : {}),
      services: this.config.apps.map((a) => ({ app: a.name, port: a.port, protocol: a.protocol })),
    };
  }

  private resolve(appName: string, ipText: string): { app: AppConfig; ip: IpAddress } {
    const app = findApp(this.config, appName);
    if (!app) throw new HelperError("UNKNOWN_APP");
    const ip = parseIpAddress(ipText);
    if (!ip) throw new HelperError("INVALID_ADDRESS");
    return { app, ip };
  }

  private setFor(step: KnockStep, appName: string, ip: IpAddress): string {
    return step === 1 ? httpsSetName(ipFamily(ip)) : serviceSetName(appName, ipFamily(ip));
  }

  /** Kernel element for a lease. Step-1 leases of one address share the HTTPS element. */
  private grantChange(lease: Lease, nowMs: number): Extract<SetChange, { op: "grant" }> {
    const deadline =
      lease.step === 1 ? Math.max(lease.expiresAtMs, this.book.latestStep1Deadline(lease.ip, nowMs) ?? 0) : lease.expiresAtMs;
    return { op: "grant", set: this.setFor(lease.step, lease.app, lease.ip), ip: lease.ip, timeoutSeconds: secondsUntil(deadline, nowMs) };
  }

  /** The HTTPS element after step-1 leases of `ip` changed: as long as the longest one left, or gone. */
  private httpsElementChange(ip: IpAddress, nowMs: number): SetChange {
    const set = this.setFor(1, "", ip);
    const deadline = this.book.latestStep1Deadline(ip, nowMs);
    return deadline === undefined
      ? { op: "revoke", set, ip }
      : { op: "grant", set, ip, timeoutSeconds: secondsUntil(deadline, nowMs) };
  }

  /** An admin's grant: a step-2 lease without step 1, at most as long as the app's `duration`. */
  private prepareGrant(p: GrantParams): PreparedChange<OpenResult> {
    const { app } = this.resolve(p.app, p.ip);
    const durationSeconds = p.durationSeconds ?? app.durationSeconds;
    if (durationSeconds > app.durationSeconds) {
      throw new HelperError(
        "DURATION_TOO_LONG",
        `durationSeconds ${durationSeconds} exceeds ${app.name}'s configured duration of ${app.durationSeconds}s; raise ${app.name}.duration in the config to allow longer grants`,
      );
    }
    return this.prepareOpen({ step: 2, app: p.app, ip: p.ip }, { durationSeconds });
  }

  private prepareOpen(p: OpenParams, admin?: { durationSeconds: number }): PreparedChange<OpenResult> {
    const { app, ip } = this.resolve(p.app, p.ip);
    const now = this.clock.now();
    if (p.step === 2 && !admin) {
      const gate = this.book.get(1, app.name, ip);
      if (!gate || gate.expiresAtMs <= now) throw new HelperError("STEP1_REQUIRED");
    }
    const durationSeconds = admin?.durationSeconds ?? (p.step === 1 ? app.step2HttpsDurationSeconds : app.durationSeconds);
    const lease: Lease = { app: app.name, ip, step: p.step, expiresAtMs: now + durationSeconds * 1000 };
    const previous = this.book.put(lease);
    const refreshed = previous !== undefined && previous.expiresAtMs > now;
    return {
      changes: [this.grantChange(lease, now)],
      undoBook: () => {
        if (previous) this.book.put(previous);
        else this.book.delete(p.step, app.name, ip);
      },
      undoChanges: () =>
        p.step === 1
          ? [this.httpsElementChange(ip, now)]
          : [previous && refreshed ? this.grantChange(previous, now) : { op: "revoke", set: this.setFor(2, app.name, ip), ip }],
      finish: () => this.finishOpen(p.step, app, ip, lease, durationSeconds, refreshed, admin ? "admin" : "knock"),
    };
  }

  private finishOpen(
    step: KnockStep,
    app: AppConfig,
    ip: IpAddress,
    lease: Lease,
    durationSeconds: number,
    refreshed: boolean,
    via: "knock" | "admin",
  ): OpenResult {
    this.log.info(
      {
        audit: true,
        event: refreshed ? "lease.refreshed" : "lease.opened",
        via,
        app: app.name,
        ip,
        step: step,
        port: step === 1 ? publicHttpsPort(this.config) : app.port,
        protocol: step === 1 ? "tcp" : app.protocol,
        durationSeconds,
        expiresAt: new Date(lease.expiresAtMs).toISOString(),
      },
      `${step === 1 ? "HTTPS port" : `${app.name} port`} ${refreshed ? "refreshed" : "opened"} for ${ip}`,
    );
    return {
      app: app.name,
      ip,
      step: step,
      durationSeconds,
      expiresAt: new Date(lease.expiresAtMs).toISOString(),
      refreshed,
    };
  }

  private prepareClose(p: CloseParams): PreparedChange<CloseResult & { serviceLeaseClosed?: Lease }> {
    const { app, ip } = this.resolve(p.app, p.ip);
    const now = this.clock.now();
    // Only live leases are revoked here. One that has ended but not been swept yet stays in the book: the
    // expiry sweep records its end and runs its on_close / conntrack cut, which a revoke dropping it would skip.
    const removed = ([1, 2] as const)
      .map((step) => this.book.get(step, app.name, ip))
      .filter((l): l is Lease => l !== undefined && l.expiresAtMs > now);
    removed.forEach((l) => this.book.delete(l.step, app.name, ip));
    return {
      changes: [{ op: "revoke", set: this.setFor(2, app.name, ip), ip }, this.httpsElementChange(ip, now)],
      undoBook: () => removed.forEach((l) => this.book.put(l)),
      undoChanges: () => removed.map((l) => this.grantChange(l, now)),
      finish: () => {
        this.log.info(
          { audit: true, event: "lease.closed", via: "admin", app: app.name, ip, closed: removed.length, steps: removed.map((l) => l.step) },
          `${app.name} closed for ${ip}`,
        );
        const serviceLeaseClosed = removed.find((l) => l.step === 2);
        return serviceLeaseClosed ? { closed: removed.length, serviceLeaseClosed } : { closed: removed.length };
      },
    };
  }

  /**
   * Live leases, soonest end first. Counters come from the last reconciliation's listing (at most
   * SELF_HEAL_INTERVAL_MS old, `countersAt`), so listing costs no kernel call however many leases there
   * are; a lease whose element was not in that listing (granted since) has none yet. Step-1 leases of one
   * address share the HTTPS element, and so its counters.
   */
  list(): ListResult {
    const now = this.clock.now();
    const counters = this.counters;
    const leases: LeaseInfo[] = this.book
      .all()
      .filter((l) => l.expiresAtMs > now)
      .sort((a, b) => a.expiresAtMs - b.expiresAtMs)
      .map((l) => {
        const app = findApp(this.config, l.app);
        const info: LeaseInfo = {
          app: l.app,
          ip: l.ip,
          step: l.step,
          port: l.step === 1 ? publicHttpsPort(this.config) : (app?.port ?? 0),
          protocol: l.step === 1 ? "tcp" : (app?.protocol ?? "tcp"),
          expiresAt: new Date(l.expiresAtMs).toISOString(),
          remainingSeconds: Math.round((l.expiresAtMs - now) / 100) / 10,
        };
        const c = counters?.byElement.get(`${this.setFor(l.step, l.app, l.ip)}|${l.ip}`);
        if (c?.packets !== undefined && c.bytes !== undefined) {
          info.packets = c.packets;
          info.bytes = c.bytes;
        }
        return info;
      });
    return counters === undefined ? { leases } : { leases, countersAt: new Date(counters.atMs).toISOString() };
  }

  /**
   * The kernel already dropped these elements; record and log the end of each lease. For `close_established`
   * apps the element is also revoked (idempotent) before the conntrack entries go: a grant's kernel timeout
   * starts when it is committed, a few ms after the lease's deadline was set, and a packet in that window
   * would otherwise be let in and start a fresh entry right after the deletion.
   */
  private prepareSweep(): PreparedChange<void> {
    const expired = this.book.takeExpired(this.clock.now());
    const changes: SetChange[] = expired
      .filter((l) => {
        const app = l.step === 2 ? findApp(this.config, l.app) : undefined;
        return app !== undefined && this.conntrack.applies(app);
      })
      .map((l) => ({ op: "revoke", set: this.setFor(2, l.app, l.ip), ip: l.ip }));
    return {
      changes,
      undoBook: () => expired.forEach((l) => this.book.put(l)),
      undoChanges: () => [],
      finish: () => {
        for (const l of expired) {
          this.log.info(
            { audit: true, event: "lease.expired", app: l.app, ip: l.ip, step: l.step, expiredAt: new Date(l.expiresAtMs).toISOString() },
            `lease expired for ${l.ip}`,
          );
          this.serviceLeaseEnded(l, "expiry");
        }
      },
    };
  }
}
