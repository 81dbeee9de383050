import type { Logger } from "pino";
import { findApp, type AppConfig, type KnockportConfig } from "@knockport/config";
import { httpsSetName, serviceSetName } from "@knockport/firewall";
import {
  HelperError,
  PROTOCOL_VERSION,
  ipFamily,
  parseIpAddress,
  type CloseParams,
  type CloseResult,
  type HelloResult,
  type IpAddress,
  type KnockStep,
  type LeaseInfo,
  type ListResult,
  type MethodHandlers,
  type OpenParams,
  type OpenResult,
} from "@knockport/protocol";
import type { FirewallBackend, SetChange } from "./backend.js";
import { GroupCommitter, type PreparedChange } from "./group-commit.js";
import { LeaseBook, type Lease, type LeaseJournal } from "./leases.js";

export const HELPER_VERSION = "0.1.0";

export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

function secondsUntil(deadlineMs: number, nowMs: number): number {
  return Math.max(1, Math.ceil((deadlineMs - nowMs) / 1000));
}

/**
 * Lease logic behind the socket. All changes run one at a time (firewall, then journal), so
 * concurrent knocks never interleave half-applied state. Order is fail-closed: the kernel is
 * changed first and rolled back if the journal cannot record it.
 */
export class HelperService {
  private readonly book = new LeaseBook();
  private readonly committer: GroupCommitter;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: KnockportConfig,
    private readonly firewall: FirewallBackend,
    private readonly journal: LeaseJournal,
    private readonly log: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    this.committer = new GroupCommitter(firewall, () => this.journal.save(this.book.all()), log);
  }

  /** Install the table and put back the journal's live leases with their remaining time. */
  async start(): Promise<void> {
    this.journal.prepare();
    const { leases, problem } = this.journal.load();
    if (problem) this.log.warn({ event: "journal.ignored" }, problem);
    const now = this.clock.now();
    const restored: Lease[] = [];
    for (const lease of leases) {
      if (lease.expiresAtMs <= now) continue;
      if (!findApp(this.config, lease.app)) {
        this.log.warn({ event: "lease.dropped", app: lease.app, ip: lease.ip }, "journal lease for an app no longer configured");
        continue;
      }
      this.book.put(lease);
      restored.push(lease);
    }
    await this.firewall.install(restored.map((l) => this.grantChange(l, now)));
    this.log.info({ event: "firewall.installed", type: this.firewall.type, restored: restored.length }, "firewall table installed");
    this.journal.save(this.book.all());
    for (const l of restored) {
      this.log.info(
        { event: "lease.restored", app: l.app, ip: l.ip, step: l.step, remainingSeconds: secondsUntil(l.expiresAtMs, now) },
        "lease restored after restart",
      );
    }
  }

  startExpirySweep(intervalMs = 1000): void {
    this.sweepTimer = setInterval(() => {
      const now = this.clock.now();
      if (!this.book.all().some((l) => l.expiresAtMs <= now)) return; // nothing ended: no journal write
      void this.committer.submit(() => this.prepareSweep()).catch(() => undefined);
    }, intervalMs);
    this.sweepTimer.unref();
  }

  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
  }

  readonly handlers: MethodHandlers<unknown> = {
    hello: async () => this.hello(),
    open: async (p) => this.committer.submit(() => this.prepareOpen(p)),
    close: async (p) => this.committer.submit(() => this.prepareClose(p)),
    list: async () => this.list(),
  };

  hello(): HelloResult {
    return {
      version: HELPER_VERSION,
      protocolVersion: PROTOCOL_VERSION,
      firewallType: this.firewall.type,
      httpPort: this.config.httpPort,
      httpsPort: this.config.httpsPort,
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

  private prepareOpen(p: OpenParams): PreparedChange<OpenResult> {
    const { app, ip } = this.resolve(p.app, p.ip);
    const now = this.clock.now();
    if (p.step === 2) {
      const gate = this.book.get(1, app.name, ip);
      if (!gate || gate.expiresAtMs <= now) throw new HelperError("STEP1_REQUIRED");
    }
    const durationSeconds = p.step === 1 ? app.step2HttpsDurationSeconds : app.durationSeconds;
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
      finish: () => this.finishOpen(p.step, app, ip, lease, durationSeconds, refreshed),
    };
  }

  private finishOpen(
    step: KnockStep,
    app: AppConfig,
    ip: IpAddress,
    lease: Lease,
    durationSeconds: number,
    refreshed: boolean,
  ): OpenResult {
    this.log.info(
      {
        event: refreshed ? "lease.refreshed" : "lease.opened",
        app: app.name,
        ip,
        step: step,
        port: step === 1 ? this.config.httpsPort : app.port,
        protocol: step === 1 ? "tcp" : app.protocol,
        durationSeconds,
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

  private prepareClose(p: CloseParams): PreparedChange<CloseResult> {
    const { app, ip } = this.resolve(p.app, p.ip);
    const now = this.clock.now();
    const removed = [this.book.delete(1, app.name, ip), this.book.delete(2, app.name, ip)].filter(
      (l): l is Lease => l !== undefined && l.expiresAtMs > now,
    );
    return {
      changes: [{ op: "revoke", set: this.setFor(2, app.name, ip), ip }, this.httpsElementChange(ip, now)],
      undoBook: () => removed.forEach((l) => this.book.put(l)),
      undoChanges: () => removed.map((l) => this.grantChange(l, now)),
      finish: () => {
        this.log.info({ event: "lease.closed", app: app.name, ip, closed: removed.length }, `${app.name} closed for ${ip}`);
        return { closed: removed.length };
      },
    };
  }

  list(): ListResult {
    const now = this.clock.now();
    const leases: LeaseInfo[] = this.book
      .all()
      .filter((l) => l.expiresAtMs > now)
      .sort((a, b) => a.expiresAtMs - b.expiresAtMs)
      .map((l) => {
        const app = findApp(this.config, l.app);
        return {
          app: l.app,
          ip: l.ip,
          step: l.step,
          port: l.step === 1 ? this.config.httpsPort : (app?.port ?? 0),
          protocol: l.step === 1 ? "tcp" : (app?.protocol ?? "tcp"),
          expiresAt: new Date(l.expiresAtMs).toISOString(),
          remainingSeconds: Math.round((l.expiresAtMs - now) / 100) / 10,
        };
      });
    return { leases };
  }

  /** The kernel already dropped these elements; record and log the end of each lease. */
  private prepareSweep(): PreparedChange<void> {
    const expired = this.book.takeExpired(this.clock.now());
    return {
      changes: [],
      undoBook: () => expired.forEach((l) => this.book.put(l)),
      undoChanges: () => [],
      finish: () => {
        for (const l of expired) {
          this.log.info({ event: "lease.expired", app: l.app, ip: l.ip, step: l.step }, `lease expired for ${l.ip}`);
        }
      },
    };
  }
}
