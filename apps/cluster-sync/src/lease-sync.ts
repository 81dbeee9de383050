import type { KnockportConfig } from "@knockport/config";
import { leaseField, type ClusterMessage, type ClusterStore, type LeaseRecord } from "@knockport/cluster-store";
import type { HelperClient } from "@knockport/helper-client";
import { parseIpAddress, type IpAddress, type LeaseEvent, type WatchResult } from "@knockport/protocol";
import type { Logger } from "pino";
import { logEvent } from "@knockport/protocol/events";

/** The admin-socket calls the sync makes: grant and close, nothing else. */
export type AdminPort = Pick<HelperClient, "call">;

/**
 * Grants a catch-up has waiting on the helper at once: the helper applies concurrent requests in one
 * firewall transaction and one journal write, so 10,000 leases are not 10,000 commits. Below the admin
 * socket's limit of requests in flight per connection (64).
 */
export const CATCH_UP_CONCURRENCY = 32;
/** Closes this process asked for, remembered this long so their events are not published back. */
const OWN_CLOSE_MEMORY_MS = 30_000;
/** Bounds the memory of own closes (a store flooding revokes cannot grow it further). */
const MAX_OWN_CLOSES = 100_000;

/**
 * The lease half of cluster mode, between one gateway's helper and the store:
 * - this helper's knocks (step-2 opens and refreshes `via: knock` from `watch`) go to the store with
 *   their deadline, and revokes (`close`) as revokes;
 * - other gateways' leases from the store are granted here through the admin socket, for the time
 *   left to their deadline (whole seconds, rounded down), never more than the app's `duration`;
 *   revokes close them here.
 * Grants it makes come back from `watch` as `via: admin` and are not published again; closes it
 * makes are remembered for a while and not published again either.
 * What the store says is trusted for app, address and deadline only, and only for configured apps;
 * the helper checks all of it again and its kernel timeouts end every lease on time regardless.
 */
export class LeaseSync {
  /** Step-2 leases this helper holds now: `app ip` → deadline (epoch ms). */
  private readonly local = new Map<string, number>();
  /**
   * The ones of them knocked here (`via: knock`): `app ip` → deadline. Put back into the store at each
   * catch-up, so a store that restarted empty (no persistence) still tells gateways that join later.
   */
  private readonly own = new Map<string, LeaseRecord>();
  private readonly ownCloses = new Map<string, number>();
  /**
   * Deadlines this process published, `app ip` → deadline: their message comes back on the channel,
   * possibly after the lease was closed here, and must not open it again. Bounded like ownCloses.
   */
  private readonly echoes = new Map<string, { deadline: number; until: number }>();
  /** Figures for the log and the tests. */
  readonly counts = { published: 0, revokesPublished: 0, granted: 0, closed: 0, ignored: 0, failed: 0 };

  constructor(
    private readonly config: KnockportConfig,
    private readonly store: ClusterStore,
    private readonly admin: AdminPort,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** The helper's `watch` answer: its live leases when the subscription (re)started. */
  onSnapshot(snapshot: WatchResult): void {
    this.local.clear();
    for (const l of snapshot.leases) {
      const ip = parseIpAddress(l.ip);
      const deadline = Date.parse(l.expiresAt);
      if (l.step === 2 && ip !== undefined && Number.isFinite(deadline)) this.local.set(leaseField(l.app, ip), deadline);
    }
    // a lease the helper no longer holds (ended or closed while we were not watching) is not ours to tell
    for (const [field, rec] of this.own) if (this.local.get(field) !== rec.deadline) this.own.delete(field);
  }

  /** One `watch` event of this gateway's helper. */
  async onLocalEvent(event: LeaseEvent): Promise<void> {
    const ip = parseIpAddress(event.ip);
    if (event.step !== 2 || ip === undefined) return;
    const field = leaseField(event.app, ip);
    if (event.event === "open" || event.event === "refresh") {
      const deadline = Date.parse(event.expiresAt);
      if (!Number.isFinite(deadline)) return;
      this.local.set(field, deadline);
      // our own grants (and an admin's) stay where they were made; a grant of another gateway's newer knock makes it theirs
      if (event.via !== "knock") {
        this.own.delete(field);
        return;
      }
      const record = { app: event.app, ip, deadline };
      this.own.set(field, record);
      this.rememberEcho(field, deadline);
      await this.attempt("publish", event.app, ip, async () => {
        await this.store.putLease(record);
        this.counts.published += 1;
      });
      return;
    }
    this.local.delete(field);
    this.own.delete(field);
    if (event.event !== "close") return; // an expiry ends on every gateway by itself
    if (this.takeOwnClose(field)) return;
    await this.attempt("publish-revoke", event.app, ip, async () => {
      await this.store.removeLease(event.app, ip);
      this.counts.revokesPublished += 1;
    });
  }

  /** A message of the cluster channel (every gateway's, this one's included). */
  async onMessage(m: ClusterMessage): Promise<void> {
    if (m.kind === "lease") await this.apply(m);
    else if (m.kind === "revoke") await this.revoke(m.app, m.ip);
  }

  /**
   * Puts this gateway's live knocked leases back, then applies every live lease of the store (at
   * start, and whenever a connection came back).
   */
  async catchUp(): Promise<{ applied: number; live: number; garbage: number }> {
    let republished = 0;
    for (const [field, rec] of this.own) {
      if (rec.deadline <= this.now()) this.own.delete(field);
      else {
        await this.store.putLease(rec);
        republished += 1;
      }
    }
    const { leases, garbage } = await this.store.liveLeases(this.now());
    if (garbage > 0) logEvent(this.log, "warn", "cluster.store.garbage", { entries: garbage }, "unreadable lease entries in the store were deleted");
    const before = this.counts.granted;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < leases.length) await this.apply(leases[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(CATCH_UP_CONCURRENCY, leases.length) }, worker));
    const applied = this.counts.granted - before;
    logEvent(this.log, "info", "cluster.catch-up", { live: leases.length, applied, republished }, "cluster leases caught up");
    return { applied, live: leases.length, garbage };
  }

  private async apply(rec: LeaseRecord): Promise<void> {
    const app = this.config.apps.find((a) => a.name === rec.app);
    const now = this.now();
    if (!app) {
      this.counts.ignored += 1;
      logEvent(this.log, "warn", "cluster.lease.ignored", { app: "(unknown)", ip: rec.ip }, "a cluster lease for an app this gateway does not have; ignored");
      return;
    }
    const deadline = Math.min(rec.deadline, now + app.durationSeconds * 1000);
    const seconds = Math.floor((deadline - now) / 1000);
    const field = leaseField(rec.app, rec.ip);
    // Our own knock's message coming back, or already open here until then: nothing to do.
    if (this.echoes.get(field)?.deadline === rec.deadline) return;
    if ((this.local.get(field) ?? 0) >= deadline - 1000 || seconds < 1) return;
    await this.attempt("grant", rec.app, rec.ip, async () => {
      const result = await this.admin.call("grant", { app: rec.app, ip: rec.ip, durationSeconds: seconds });
      this.local.set(field, Date.parse(result.expiresAt));
      this.counts.granted += 1;
      logEvent(this.log, "info", "cluster.lease.applied", { app: rec.app, ip: rec.ip, expiresAt: result.expiresAt }, "cluster lease opened here");
    });
  }

  private async revoke(appName: string, ip: IpAddress): Promise<void> {
    const field = leaseField(appName, ip);
    if (!this.local.has(field) || !this.config.apps.some((a) => a.name === appName)) return;
    this.rememberOwnClose(field);
    await this.attempt("close", appName, ip, async () => {
      await this.admin.call("close", { app: appName, ip });
      this.local.delete(field);
      this.counts.closed += 1;
      logEvent(this.log, "info", "cluster.lease.revoked", { app: appName, ip }, "cluster revoke closed the lease here");
    });
  }

  private async attempt(op: string, app: string, ip: IpAddress, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.counts.failed += 1;
      logEvent(this.log, "error", "cluster.sync.failed", { op, app, ip, err: (err as Error).message }, `cluster ${op} failed`);
    }
  }

  private rememberEcho(field: string, deadline: number): void {
    const now = this.now();
    for (const [k, e] of this.echoes) {
      if (e.until > now && this.echoes.size < MAX_OWN_CLOSES) break;
      this.echoes.delete(k);
    }
    this.echoes.delete(field);
    this.echoes.set(field, { deadline, until: now + OWN_CLOSE_MEMORY_MS });
  }

  private rememberOwnClose(field: string): void {
    const now = this.now();
    for (const [k, at] of this.ownCloses) {
      if (at > now && this.ownCloses.size < MAX_OWN_CLOSES) break;
      this.ownCloses.delete(k);
    }
    this.ownCloses.delete(field);
    this.ownCloses.set(field, now + OWN_CLOSE_MEMORY_MS);
  }

  private takeOwnClose(field: string): boolean {
    const until = this.ownCloses.get(field);
    this.ownCloses.delete(field);
    return until !== undefined && until > this.now();
  }
}
