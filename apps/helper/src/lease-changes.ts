import { findApp, publicHttpsPort, type FirewallApp as AppConfig } from "@knockport/config/firewall";
import { httpsSetName, serviceSetName } from "@knockport/firewall";
import {
  HelperError,
  ipFamily,
  parseIpAddress,
  type CloseParams,
  type CloseResult,
  type GrantParams,
  type IpAddress,
  type KnockStep,
  type LeaseEvent,
  type OpenParams,
  type OpenResult,
  logEvent,
} from "@knockport/protocol";
import type { SetChange } from "./backend.js";
import type { PreparedChange } from "./group-commit.js";
import type { HelperContext } from "./helper-context.js";
import type { Lease } from "./leases.js";

type Grant = Extract<SetChange, { op: "grant" }>;

export function secondsUntil(deadlineMs: number, nowMs: number): number {
  return Math.max(1, Math.ceil((deadlineMs - nowMs) / 1000));
}

export function setFor(step: KnockStep, appName: string, ip: IpAddress): string {
  return step === 1 ? httpsSetName(ipFamily(ip)) : serviceSetName(appName, ipFamily(ip));
}

/** When a lease's element must end: step-1 leases of one address share the HTTPS element, so the longest of them. */
export function elementDeadline(ctx: HelperContext, lease: Lease, nowMs: number): number {
  return lease.step === 1 ? Math.max(lease.expiresAtMs, ctx.book.latestStep1Deadline(lease.ip, nowMs) ?? 0) : lease.expiresAtMs;
}

export function grantChange(ctx: HelperContext, lease: Lease, nowMs: number): Grant {
  const timeoutSeconds = secondsUntil(elementDeadline(ctx, lease, nowMs), nowMs);
  return { op: "grant", set: setFor(lease.step, lease.app, lease.ip), ip: lease.ip, timeoutSeconds };
}

const revoke = (step: KnockStep, app: string, ip: IpAddress): SetChange => ({ op: "revoke", set: setFor(step, app, ip), ip });

/** The HTTPS element after step-1 leases of `ip` changed: as long as the longest one left, or gone. */
function httpsElementChange(ctx: HelperContext, ip: IpAddress, nowMs: number): SetChange {
  const deadline = ctx.book.latestStep1Deadline(ip, nowMs);
  return deadline === undefined ? revoke(1, "", ip) : { op: "grant", set: setFor(1, "", ip), ip, timeoutSeconds: secondsUntil(deadline, nowMs) };
}

/** A lease as list, watch and the lease events show it: step 1 opens the public HTTPS port, step 2 the app's. */
export function leaseView(ctx: HelperContext, l: Lease, atMs = l.expiresAtMs): Omit<LeaseEvent, "event"> {
  const app = l.step === 2 ? findApp(ctx.config, l.app) : undefined;
  const port = l.step === 1 ? publicHttpsPort(ctx.config) : (app?.port ?? 0);
  return { app: l.app, ip: l.ip, step: l.step, port, protocol: app?.protocol ?? "tcp", expiresAt: new Date(atMs).toISOString() };
}

function emit(ctx: HelperContext, event: LeaseEvent): void {
  for (const s of ctx.subscribers) s(event);
}

/**
 * A lease's end past its deadline (the kernel already dropped its element): logged, published, and for
 * `close_established` apps its flows cut (not awaited). on_close is knockport-hooks', from the event.
 */
function leaseExpired(ctx: HelperContext, l: Lease): void {
  const expiredAt = new Date(l.expiresAtMs).toISOString();
  const view = leaseView(ctx, l);
  // A knock leaves two leases (step 1: the HTTPS port, step 2: the app's): the message says which ended.
  const what = l.step === 1 ? `HTTPS port closed for ${l.ip}: its lease (step 1 of ${l.app})` : `${l.app} port closed for ${l.ip}: its lease`;
  logEvent(ctx.log, "info", "lease.expired", { audit: true, app: l.app, ip: l.ip, step: l.step, port: view.port, protocol: view.protocol, expiredAt }, `${what} expired`);
  emit(ctx, { event: "expiry", ...view });
  const app = l.step === 2 ? findApp(ctx.config, l.app) : undefined;
  if (app) void ctx.conntrack.cut(app, l.ip, "expiry");
}

/** The configured app and the canonical address a request names, or the named error. */
export function resolve(ctx: HelperContext, appName: string, ipText: string): { app: AppConfig; ip: IpAddress } {
  const app = findApp(ctx.config, appName);
  if (!app) throw new HelperError("UNKNOWN_APP");
  const ip = parseIpAddress(ipText);
  if (!ip) throw new HelperError("INVALID_ADDRESS");
  return { app, ip };
}

/** An admin's grant: a step-2 lease without step 1, at most as long as the app's `duration`. */
export function prepareGrant(ctx: HelperContext, p: GrantParams): PreparedChange<OpenResult> {
  const { app } = resolve(ctx, p.app, p.ip);
  const durationSeconds = p.durationSeconds ?? app.durationSeconds;
  if (durationSeconds > app.durationSeconds) {
    throw new HelperError(
      "DURATION_TOO_LONG",
      `durationSeconds ${durationSeconds} exceeds ${app.name}'s configured duration of ${app.durationSeconds}s; raise ${app.name}.duration in the config to allow longer grants`,
    );
  }
  return prepareOpen(ctx, { step: 2, app: p.app, ip: p.ip }, durationSeconds);
}

/** A knock's open, or (with `adminSeconds`) an admin's grant. */
export function prepareOpen(ctx: HelperContext, p: OpenParams, adminSeconds?: number): PreparedChange<OpenResult> {
  const { app, ip } = resolve(ctx, p.app, p.ip);
  const { book } = ctx;
  const now = ctx.clock.now();
  if (p.step === 2 && adminSeconds === undefined && !((book.get(1, app.name, ip)?.expiresAtMs ?? 0) > now)) {
    throw new HelperError("STEP1_REQUIRED");
  }
  const durationSeconds = adminSeconds ?? (p.step === 1 ? app.step2HttpsDurationSeconds : app.durationSeconds);
  const existing = book.get(p.step, app.name, ip);
  if (!((existing?.expiresAtMs ?? 0) > now) && book.isFull(p.step, app.name, ip, app.maxLeases, now)) {
    throw new HelperError("TOO_MANY_LEASES", `${app.name} has ${app.maxLeases} live step-${p.step} leases for IPv${ipFamily(ip)} addresses (max_leases)`);
  }
  const lease: Lease = { app: app.name, ip, step: p.step, expiresAtMs: now + durationSeconds * 1000 };
  const previous = book.put(lease);
  const refreshed = previous !== undefined && previous.expiresAtMs > now;
  const via = adminSeconds === undefined ? "knock" : "admin";
  return {
    changes: [grantChange(ctx, lease, now)],
    undoBook: () => (previous ? book.put(previous) : book.delete(p.step, app.name, ip)),
    finish: () => {
      const view = leaseView(ctx, lease);
      logEvent(ctx.log, "info", refreshed ? "lease.refreshed" : "lease.opened",
        { audit: true, via, ...view, durationSeconds },
        `${p.step === 1 ? "HTTPS port" : `${app.name} port`} ${refreshed ? "refreshed" : "opened"} for ${ip}`,
      );
      emit(ctx, { event: refreshed ? "refresh" : "open", ...view, durationSeconds, via });
      return { app: app.name, ip, step: p.step, durationSeconds, expiresAt: view.expiresAt, refreshed };
    },
  };
}

export function prepareClose(ctx: HelperContext, p: CloseParams): PreparedChange<CloseResult & { serviceLeaseClosed?: Lease }> {
  const { app, ip } = resolve(ctx, p.app, p.ip);
  const now = ctx.clock.now();
  // Only live leases are revoked here. One that has ended but not been swept yet stays in the book: the
  // expiry sweep records its end and cuts its flows, which a revoke dropping it would skip.
  const removed = ([1, 2] as const).map((step) => ctx.book.get(step, app.name, ip)).filter((l): l is Lease => (l?.expiresAtMs ?? 0) > now);
  removed.forEach((l) => ctx.book.delete(l.step, app.name, ip));
  return {
    changes: [revoke(2, app.name, ip), httpsElementChange(ctx, ip, now)],
    undoBook: () => removed.forEach((l) => ctx.book.put(l)),
    finish: () => {
      logEvent(ctx.log, "info", "lease.closed",
        { audit: true, via: "admin", app: app.name, ip, closed: removed.length, steps: removed.map((l) => l.step) },
        `${app.name} closed for ${ip}`,
      );
      for (const l of removed) emit(ctx, { event: "close", ...leaseView(ctx, l, now), via: "admin" });
      const serviceLeaseClosed = removed.find((l) => l.step === 2);
      return serviceLeaseClosed ? { closed: removed.length, serviceLeaseClosed } : { closed: removed.length };
    },
  };
}

/** The element of a restored lease on its deadline, unless the lease was refreshed or closed meanwhile. */
export function prepareCloseOnTime(ctx: HelperContext, lease: Lease): PreparedChange<void> {
  const now = ctx.clock.now();
  const current = ctx.book.get(lease.step, lease.app, lease.ip);
  const stillThat = current !== undefined && current.expiresAtMs === lease.expiresAtMs && current.expiresAtMs <= now;
  // The book keeps the lease: the expiry sweep records its end as for any lease.
  const change = lease.step === 1 ? httpsElementChange(ctx, lease.ip, now) : revoke(2, lease.app, lease.ip);
  return { changes: stillThat ? [change] : [], finish: () => undefined };
}

/**
 * The kernel already dropped these elements; record the end of each lease. For `close_established`
 * apps the element is also revoked (idempotent) before the conntrack entries go: a grant's kernel timeout
 * starts when it is committed, a few ms after the lease's deadline was set, and a packet in that window
 * would otherwise be let in and start a fresh entry right after the deletion.
 */
export function prepareSweep(ctx: HelperContext): PreparedChange<void> {
  const expired = ctx.book.takeExpired(ctx.clock.now());
  const cut = expired.filter((l) => {
    const app = l.step === 2 ? findApp(ctx.config, l.app) : undefined;
    return app !== undefined && ctx.conntrack.applies(app);
  });
  return {
    changes: cut.map((l) => revoke(2, l.app, l.ip)),
    undoBook: () => expired.forEach((l) => ctx.book.put(l)),
    finish: () => expired.forEach((l) => leaseExpired(ctx, l)),
  };
}
