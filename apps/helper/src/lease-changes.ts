import { findApp, publicHttpsPort, type AppConfig } from "@knockport/config";
import { httpsSetName, serviceSetName } from "@knockport/firewall/nft";
import {
  HelperError,
  ipFamily,
  parseIpAddress,
  type CloseParams,
  type CloseResult,
  type GrantParams,
  type IpAddress,
  type KnockStep,
  type OpenParams,
  type OpenResult,
} from "@knockport/protocol";
import type { SetChange } from "./backend.js";
import type { PreparedChange } from "./group-commit.js";
import type { HelperContext } from "./helper-context.js";
import type { Lease } from "./leases.js";

export function secondsUntil(deadlineMs: number, nowMs: number): number {
  return Math.max(1, Math.ceil((deadlineMs - nowMs) / 1000));
}

export function setFor(step: KnockStep, appName: string, ip: IpAddress): string {
  return step === 1 ? httpsSetName(ipFamily(ip)) : serviceSetName(appName, ipFamily(ip));
}

/** Kernel element for a lease. Step-1 leases of one address share the HTTPS element. */
export function grantChange(ctx: HelperContext, lease: Lease, nowMs: number): Extract<SetChange, { op: "grant" }> {
  const deadline =
    lease.step === 1 ? Math.max(lease.expiresAtMs, ctx.book.latestStep1Deadline(lease.ip, nowMs) ?? 0) : lease.expiresAtMs;
  return { op: "grant", set: setFor(lease.step, lease.app, lease.ip), ip: lease.ip, timeoutSeconds: secondsUntil(deadline, nowMs) };
}

/** The HTTPS element after step-1 leases of `ip` changed: as long as the longest one left, or gone. */
function httpsElementChange(ctx: HelperContext, ip: IpAddress, nowMs: number): SetChange {
  const set = setFor(1, "", ip);
  const deadline = ctx.book.latestStep1Deadline(ip, nowMs);
  return deadline === undefined
    ? { op: "revoke", set, ip }
    : { op: "grant", set, ip, timeoutSeconds: secondsUntil(deadline, nowMs) };
}

/**
 * A service lease ended (expiry, expired while down): for `close_established` apps, the deletion of
 * the client's conntrack entries. Not awaited: the caller does not wait for it. (on_close commands are
 * knockport-hooks', from the lease's `watch` event.)
 */
export function serviceLeaseEnded(ctx: HelperContext, lease: Lease, reason: string): void {
  const app = findApp(ctx.config, lease.app);
  if (lease.step !== 2 || !app) return;
  void ctx.conntrack.cut(app, lease.ip, reason);
}

function resolve(ctx: HelperContext, appName: string, ipText: string): { app: AppConfig; ip: IpAddress } {
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
  return prepareOpen(ctx, { step: 2, app: p.app, ip: p.ip }, { durationSeconds });
}

export function prepareOpen(ctx: HelperContext, p: OpenParams, admin?: { durationSeconds: number }): PreparedChange<OpenResult> {
  const { app, ip } = resolve(ctx, p.app, p.ip);
  const now = ctx.clock.now();
  if (p.step === 2 && !admin) {
    const gate = ctx.book.get(1, app.name, ip);
    if (!gate || gate.expiresAtMs <= now) throw new HelperError("STEP1_REQUIRED");
  }
  const durationSeconds = admin?.durationSeconds ?? (p.step === 1 ? app.step2HttpsDurationSeconds : app.durationSeconds);
  const existing = ctx.book.get(p.step, app.name, ip);
  if ((existing === undefined || existing.expiresAtMs <= now) && ctx.book.isFull(p.step, app.name, ip, app.maxLeases, now)) {
    throw new HelperError(
      "TOO_MANY_LEASES",
      `${app.name} has ${app.maxLeases} live step-${p.step} leases for IPv${ipFamily(ip)} addresses (max_leases)`,
    );
  }
  const lease: Lease = { app: app.name, ip, step: p.step, expiresAtMs: now + durationSeconds * 1000 };
  const previous = ctx.book.put(lease);
  const refreshed = previous !== undefined && previous.expiresAtMs > now;
  return {
    changes: [grantChange(ctx, lease, now)],
    undoBook: () => {
      if (previous) ctx.book.put(previous);
      else ctx.book.delete(p.step, app.name, ip);
    },
    undoChanges: () =>
      p.step === 1
        ? [httpsElementChange(ctx, ip, now)]
        : [previous && refreshed ? grantChange(ctx, previous, now) : { op: "revoke", set: setFor(2, app.name, ip), ip }],
    finish: () => finishOpen(ctx, p.step, app, ip, lease, durationSeconds, refreshed, admin ? "admin" : "knock"),
  };
}

function finishOpen(
  ctx: HelperContext,
  step: KnockStep,
  app: AppConfig,
  ip: IpAddress,
  lease: Lease,
  durationSeconds: number,
  refreshed: boolean,
  via: "knock" | "admin",
): OpenResult {
  ctx.log.info(
    {
      audit: true,
      event: refreshed ? "lease.refreshed" : "lease.opened",
      via,
      app: app.name,
      ip,
      step: step,
      port: step === 1 ? publicHttpsPort(ctx.config) : app.port,
      protocol: step === 1 ? "tcp" : app.protocol,
      durationSeconds,
      expiresAt: new Date(lease.expiresAtMs).toISOString(),
    },
    `${step === 1 ? "HTTPS port" : `${app.name} port`} ${refreshed ? "refreshed" : "opened"} for ${ip}`,
  );
  const expiresAt = new Date(lease.expiresAtMs).toISOString();
  ctx.events.emit({ event: refreshed ? "refresh" : "open", ...portOf(ctx, step, app), app: app.name, ip, step, expiresAt, durationSeconds, via });
  return { app: app.name, ip, step: step, durationSeconds, expiresAt, refreshed };
}

/** The port a lease opens: the public HTTPS knock port for step 1, the app's own for step 2. */
function portOf(ctx: HelperContext, step: KnockStep, app: AppConfig | undefined): { port: number; protocol: "tcp" | "udp" } {
  return step === 1 || app === undefined ? { port: publicHttpsPort(ctx.config), protocol: "tcp" } : { port: app.port, protocol: app.protocol };
}

/** A lease ended (revoked or expired), for `watch` subscribers. */
function emitEnd(ctx: HelperContext, lease: Lease, event: "close" | "expiry", atMs: number): void {
  const app = findApp(ctx.config, lease.app);
  ctx.events.emit({
    event,
    ...portOf(ctx, lease.step, app),
    app: lease.app,
    ip: lease.ip,
    step: lease.step,
    expiresAt: new Date(atMs).toISOString(),
    ...(event === "close" ? { via: "admin" as const } : {}),
  });
}

export function prepareClose(ctx: HelperContext, p: CloseParams): PreparedChange<CloseResult & { serviceLeaseClosed?: Lease }> {
  const { app, ip } = resolve(ctx, p.app, p.ip);
  const now = ctx.clock.now();
  // Only live leases are revoked here. One that has ended but not been swept yet stays in the book: the
  // expiry sweep records its end and runs its on_close / conntrack cut, which a revoke dropping it would skip.
  const removed = ([1, 2] as const)
    .map((step) => ctx.book.get(step, app.name, ip))
    .filter((l): l is Lease => l !== undefined && l.expiresAtMs > now);
  removed.forEach((l) => ctx.book.delete(l.step, app.name, ip));
  return {
    changes: [{ op: "revoke", set: setFor(2, app.name, ip), ip }, httpsElementChange(ctx, ip, now)],
    undoBook: () => removed.forEach((l) => ctx.book.put(l)),
    undoChanges: () => removed.map((l) => grantChange(ctx, l, now)),
    finish: () => {
      ctx.log.info(
        { audit: true, event: "lease.closed", via: "admin", app: app.name, ip, closed: removed.length, steps: removed.map((l) => l.step) },
        `${app.name} closed for ${ip}`,
      );
      for (const l of removed) emitEnd(ctx, l, "close", now);
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
  const changes: SetChange[] = !stillThat
    ? []
    : lease.step === 1
      ? [httpsElementChange(ctx, lease.ip, now)]
      : [{ op: "revoke", set: setFor(2, lease.app, lease.ip), ip: lease.ip }];
  // The book keeps the lease: the expiry sweep records its end and runs on_close as for any lease.
  return { changes, undoBook: () => undefined, undoChanges: () => [], finish: () => undefined };
}

/**
 * The kernel already dropped these elements; record and log the end of each lease. For `close_established`
 * apps the element is also revoked (idempotent) before the conntrack entries go: a grant's kernel timeout
 * starts when it is committed, a few ms after the lease's deadline was set, and a packet in that window
 * would otherwise be let in and start a fresh entry right after the deletion.
 */
export function prepareSweep(ctx: HelperContext): PreparedChange<void> {
  const expired = ctx.book.takeExpired(ctx.clock.now());
  const changes: SetChange[] = expired
    .filter((l) => {
      const app = l.step === 2 ? findApp(ctx.config, l.app) : undefined;
      return app !== undefined && ctx.conntrack.applies(app);
    })
    .map((l) => ({ op: "revoke", set: setFor(2, l.app, l.ip), ip: l.ip }));
  return {
    changes,
    undoBook: () => expired.forEach((l) => ctx.book.put(l)),
    undoChanges: () => [],
    finish: () => {
      for (const l of expired) {
        ctx.log.info(
          { audit: true, event: "lease.expired", app: l.app, ip: l.ip, step: l.step, expiredAt: new Date(l.expiresAtMs).toISOString() },
          `lease expired for ${l.ip}`,
        );
        emitEnd(ctx, l, "expiry", l.expiresAtMs);
        serviceLeaseEnded(ctx, l, "expiry");
      }
    },
  };
}
