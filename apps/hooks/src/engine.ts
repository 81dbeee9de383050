import type { Logger } from "pino";
import type { IpAddress } from "@knockport/protocol";
import { DEFAULT_COMMAND_LIMITS, runHookCommand, type CommandLimits } from "./command.js";
import type { HookMetrics } from "./metrics.js";
import { leaseKey, type OpenRecord } from "./record.js";
import type { HookApp, HookKind, LeaseEvent, LeaseTarget, LiveLease } from "./types.js";
import { logEvent } from "@knockport/protocol/events";

export interface HookEngineOptions {
  readonly apps: ReadonlyMap<string, HookApp>;
  readonly record: OpenRecord;
  readonly log: Logger;
  readonly metrics: HookMetrics;
  readonly limits?: CommandLimits;
  /** Commands running at once, over all apps and addresses. */
  readonly concurrency?: number;
  /** Open pairs recorded per app; past it on_open is not run (the cloud side stays closed). */
  readonly maxPerApp?: number;
  /** Backoff between on_close attempts: doubles from initialMs up to maxMs, forever. */
  readonly retry?: { readonly initialMs: number; readonly maxMs: number };
}

interface PairState {
  /** Bumped by every open or close of the pair: a close retry whose generation is stale stops. */
  generation: number;
  chain: Promise<void>;
  wake?: () => void;
}

/**
 * Turns lease events into on_open / on_close runs. Runs for one (app, address) are serialised, so a
 * close never overtakes its open. A failed on_close is retried with backoff until it succeeds, a
 * newer open of the same pair supersedes it, or the process stops (the record keeps it for the next
 * start). The record is written before on_open runs and cleared after on_close succeeded.
 */
export class HookEngine {
  private readonly pairs = new Map<string, PairState>();
  private readonly closing = new Set<string>();
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private stopped = false;
  private pendingWrite: Promise<string | undefined> | undefined;
  private readonly limits: CommandLimits;
  private readonly concurrency: number;
  private readonly maxPerApp: number;
  private readonly retry: { initialMs: number; maxMs: number };

  constructor(private readonly o: HookEngineOptions) {
    this.limits = o.limits ?? DEFAULT_COMMAND_LIMITS;
    this.concurrency = o.concurrency ?? 4;
    this.maxPerApp = o.maxPerApp ?? 200_000;
    this.retry = o.retry ?? { initialMs: 1000, maxMs: 300_000 };
  }

  event(ev: LeaseEvent): void {
    const app = this.hookApp(ev.app);
    if (app === undefined || this.stopped) return;
    if (ev.kind === "close") {
      if (this.o.record.has(app.name, ev.ip)) this.close(app, ev, ev.reason);
      return;
    }
    // A pair that is closing is opened again (its pending close is superseded); a refresh of a pair
    // never opened here (missed while this process was away) opens it.
    const closing = this.closing.has(leaseKey(app.name, ev.ip));
    if (closing || !this.o.record.has(app.name, ev.ip)) this.open(app, ev, ev.kind === "open" ? ev.reason : "missed-open");
  }

  /**
   * The helper's live leases when (re)subscribing: pairs live there but not opened here are opened,
   * pairs opened here but no longer live are closed (they ended while this process was not listening).
   */
  snapshot(leases: readonly LiveLease[]): void {
    if (this.stopped) return;
    const live = new Set<string>();
    for (const lease of leases) {
      const app = this.hookApp(lease.app);
      if (app === undefined) continue;
      live.add(leaseKey(app.name, lease.ip));
      if (!this.o.record.has(app.name, lease.ip)) this.open(app, lease, "missed-while-away");
    }
    for (const target of this.o.record.all()) {
      const { app: name, ip } = target;
      const key = leaseKey(name, ip);
      if (live.has(key) || this.pairs.has(key)) continue;
      const app = this.hookApp(name);
      if (app === undefined) {
        logEvent(this.o.log, "error", "hook.unknown_app",
          { audit: true, app: name, ip },
          `${name} is no longer configured with hooks: its on_close for ${ip} cannot run; run it by hand`,
        );
        this.o.record.remove(name, ip);
        continue;
      }
      this.close(app, target, "closed-while-away");
    }
    this.flush();
  }

  /** Pairs whose on_close is waiting for a retry or running. */
  pendingCloses(): number {
    return this.closing.size;
  }

  /** Resolves once nothing is queued (bounded: tests and a clean stop). */
  async idle(): Promise<void> {
    for (let i = 0; i < 1000 && this.pairs.size > 0; i += 1) await Promise.all([...this.pairs.values()].map((p) => p.chain));
  }

  /** Stops retrying and waits for the commands that run; what is left stays in the record. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const p of this.pairs.values()) p.wake?.();
    for (const w of this.waiting.splice(0)) w();
    await this.idle();
    this.flush();
  }

  private hookApp(name: string): HookApp | undefined {
    const app = this.o.apps.get(name);
    return app !== undefined && (app.onOpen !== undefined || app.onClose !== undefined) ? app : undefined;
  }

  private open(app: HookApp, lease: LiveLease, reason: string): void {
    this.closing.delete(leaseKey(app.name, lease.ip));
    if (this.o.record.countFor(app.name) >= this.maxPerApp) {
      this.o.metrics.refusedOpens += 1;
      logEvent(this.o.log, "error", "hook.open_refused",
        { audit: true, app: app.name, ip: lease.ip, reason, limit: this.maxPerApp },
        `${app.name}: ${this.maxPerApp} addresses are open or still closing; on_open not run for ${lease.ip}`,
      );
      return;
    }
    this.o.record.add({ app: app.name, ip: lease.ip, port: lease.port, protocol: lease.protocol });
    const written = this.recordWritten();
    this.enqueue(app.name, lease.ip, async () => {
      const failure = await written;
      if (failure !== undefined) {
        this.o.record.remove(app.name, lease.ip);
        this.o.metrics.refusedOpens += 1;
        logEvent(this.o.log, "error", "hook.open_refused",
          { audit: true, app: app.name, ip: lease.ip, reason, err: failure },
          `could not record ${lease.ip} for ${app.name} (${failure}); on_open not run, so nothing could be left open`,
        );
        return;
      }
      if (app.onOpen !== undefined) await this.runOnce(app, "on_open", lease, lease.durationSeconds, reason, 1);
    });
  }

  /**
   * One fsync'd write of the record for every open of this tick (a burst of knocks is one write, not
   * one rewrite of the whole record per address); resolves with the error text if it failed.
   */
  private recordWritten(): Promise<string | undefined> {
    this.pendingWrite ??= new Promise((resolve) =>
      setImmediate(() => {
        this.pendingWrite = undefined;
        try {
          this.o.record.flush();
          resolve(undefined);
        } catch (err) {
          resolve((err as Error).message);
        }
      }),
    );
    return this.pendingWrite;
  }

  private close(app: HookApp, target: LeaseTarget, reason: string): void {
    const ip = target.ip;
    const key = leaseKey(app.name, ip);
    this.closing.add(key);
    const generation = this.enqueue(app.name, ip, async (state) => {
      for (let attempt = 1; !this.stopped && state.generation === generation; attempt += 1) {
        const ok = app.onClose === undefined || (await this.runOnce(app, "on_close", target, 0, reason, attempt));
        if (ok) {
          this.o.record.remove(app.name, ip);
          this.flush();
          if (state.generation === generation) this.closing.delete(key);
          return;
        }
        const delay = Math.min(this.retry.maxMs, this.retry.initialMs * 2 ** Math.min(attempt - 1, 30));
        this.o.metrics.closeRetries += 1;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          state.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        state.wake = undefined;
      }
    });
  }

  /** Queues `work` after the pair's earlier runs; returns the generation it belongs to. */
  private enqueue(app: string, ip: IpAddress, work: (state: PairState) => Promise<void>): number {
    const key = leaseKey(app, ip);
    const state = this.pairs.get(key) ?? { generation: 0, chain: Promise.resolve() };
    state.generation += 1;
    state.wake?.(); // a sleeping close retry of this pair ends: this newer event decides
    const generation = state.generation;
    const next = state.chain.then(() => work(state)).catch((err: unknown) => {
      logEvent(this.o.log, "error", "hook.internal_error", { app, ip, err: (err as Error).message }, "hook run failed unexpectedly");
    });
    state.chain = next;
    this.pairs.set(key, state);
    void next.then(() => {
      if (this.pairs.get(key) === state && state.chain === next) this.pairs.delete(key);
    });
    return generation;
  }

  private async runOnce(app: HookApp, kind: HookKind, target: LeaseTarget, durationSeconds: number, reason: string, attempt: number): Promise<boolean> {
    const { ip, port, protocol } = target;
    await this.slot();
    try {
      const r = await runHookCommand(app, kind, target, durationSeconds, this.limits);
      this.o.metrics.countRun(kind, r.outcome);
      const fields = { audit: true as const, hook: kind, reason, app: app.name, ip, port, protocol, outcome: r.outcome, attempt, tookMs: r.tookMs, exitCode: r.exitCode };
      if (r.outcome === "ok") {
        logEvent(this.o.log, "info", "hook.ran", fields, `${kind} hook of ${app.name} ran for ${ip}`);
        return true;
      }
      const retrying = kind === "on_close" && !this.stopped ? "; retrying" : "";
      logEvent(this.o.log, "warn", "hook.failed", { ...fields, error: r.error, stderr: r.stderr }, `${kind} hook of ${app.name} for ${ip} ${r.outcome}: ${r.error ?? ""}${retrying}`);
      return false;
    } finally {
      this.release();
    }
  }

  private async slot(): Promise<void> {
    if (this.running < this.concurrency) {
      this.running += 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running += 1;
  }

  private release(): void {
    this.running -= 1;
    this.waiting.shift()?.();
  }

  private flush(): void {
    try {
      this.o.record.flush();
    } catch (err) {
      logEvent(this.o.log, "error", "hook.record_failed", { err: (err as Error).message }, `could not write the hooks record (${(err as Error).message}); retrying with the next change`);
    }
  }
}
