import { findApp, publicHttpsPort } from "@knockport/config";
import {
  LEASE_EVENT_METHOD,
  PROTOCOL_VERSION,
  type CountersResult,
  type GrantResult,
  type HelloResult,
  type LeaseInfo,
  type ListResult,
  type MethodHandlers,
  type StatsResult,
  type WatchResult,
} from "@knockport/protocol";
import type { RpcPeer } from "./lease-events.js";
import type { HelperContext } from "./helper-context.js";
import { prepareClose, prepareGrant, prepareOpen, setFor } from "./lease-changes.js";
import type { CounterReading } from "./reconcile.js";

export const HELPER_VERSION = "0.1.0";

export function hello(ctx: HelperContext): HelloResult {
  const { config } = ctx;
  return {
    version: HELPER_VERSION,
    protocolVersion: PROTOCOL_VERSION,
    firewallType: ctx.firewall.type,
    httpPort: config.httpPort,
    httpsPort: config.httpsPort,
    ...(config.waf ? { waf: { httpPort: config.waf.httpPort, httpsPort: config.waf.httpsPort } } : {}),
    services: config.apps.map((a) => ({ app: a.name, port: a.port, protocol: a.protocol })),
  };
}

/** The `counters` method (knock socket, for /metrics): the stats and live leases by app and step, no addresses. */
export function counters(ctx: HelperContext): CountersResult {
  const now = ctx.clock.now();
  const byAppStep = new Map<string, CountersResult["openLeases"][number]>();
  for (const l of ctx.book.all()) {
    if (l.expiresAtMs <= now) continue;
    const key = `${l.step}|${l.app}`;
    const entry = byAppStep.get(key);
    if (entry) entry.count += 1;
    else byAppStep.set(key, { app: l.app, step: l.step, count: 1 });
  }
  return { ...stats(ctx), openLeases: [...byAppStep.values()] };
}

/** The `stats` method: counts since this helper started. */
export function stats(ctx: HelperContext): StatsResult {
  const { startedAtMs, ...counts } = ctx.counts;
  return { startedAt: new Date(startedAtMs).toISOString(), ...counts };
}

/**
 * Live leases, soonest end first. Counters come from the last reconciliation's listing (at most
 * SELF_HEAL_INTERVAL_MS old, `countersAt`), so listing costs no kernel call however many leases there
 * are; a lease whose element was not in that listing (granted since) has none yet. Step-1 leases of one
 * address share the HTTPS element, and so its counters.
 */
export function list(ctx: HelperContext, counters: CounterReading | undefined): ListResult {
  const now = ctx.clock.now();
  const leases: LeaseInfo[] = ctx.book
    .all()
    .filter((l) => l.expiresAtMs > now)
    .sort((a, b) => a.expiresAtMs - b.expiresAtMs)
    .map((l) => {
      const app = findApp(ctx.config, l.app);
      const info: LeaseInfo = {
        app: l.app,
        ip: l.ip,
        step: l.step,
        port: l.step === 1 ? publicHttpsPort(ctx.config) : (app?.port ?? 0),
        protocol: l.step === 1 ? "tcp" : (app?.protocol ?? "tcp"),
        expiresAt: new Date(l.expiresAtMs).toISOString(),
        remainingSeconds: Math.round((l.expiresAtMs - now) / 100) / 10,
      };
      const c = counters?.byElement.get(`${setFor(l.step, l.app, l.ip)}|${l.ip}`);
      if (c?.packets !== undefined && c.bytes !== undefined) {
        info.packets = c.packets;
        info.bytes = c.bytes;
      }
      return info;
    });
  return counters === undefined ? { leases } : { leases, countersAt: new Date(counters.atMs).toISOString() };
}

/**
 * `watch`: every live lease now, then each lease event on `peer`'s connection until it closes. The
 * snapshot and the subscription are taken in one synchronous step, so no event falls between them,
 * and the peer queues events after the answer, so the subscriber sees the snapshot first.
 */
export function watch(ctx: HelperContext, peer: RpcPeer | undefined): WatchResult {
  if (peer === undefined) throw new Error("watch needs a connection to send its events on");
  const now = ctx.clock.now();
  const leases = ctx.book
    .all()
    .filter((l) => l.expiresAtMs > now)
    .map((l) => {
      const app = findApp(ctx.config, l.app);
      return {
        app: l.app,
        ip: l.ip,
        step: l.step,
        port: l.step === 1 ? publicHttpsPort(ctx.config) : (app?.port ?? 0),
        protocol: l.step === 1 ? ("tcp" as const) : (app?.protocol ?? "tcp"),
        expiresAt: new Date(l.expiresAtMs).toISOString(),
      };
    });
  const unsubscribe = ctx.events.subscribe((event) => peer.notify(LEASE_EVENT_METHOD, event));
  peer.onClose(unsubscribe);
  peer.keepOpen();
  ctx.log.info({ audit: true, event: "watch.subscribed", subscribers: ctx.events.size, leases: leases.length }, "watch subscriber connected");
  peer.onClose(() => ctx.log.info({ event: "watch.unsubscribed", subscribers: ctx.events.size }, "watch subscriber gone"));
  // The apps' hook commands, so that knockport-hooks runs them without reading the config (and its keys).
  const hooks = ctx.config.apps
    .filter((a) => a.onOpen !== undefined || a.onClose !== undefined)
    .map((a) => ({ app: a.name, ...(a.onOpen ? { onOpen: [...a.onOpen] } : {}), ...(a.onClose ? { onClose: [...a.onClose] } : {}) }));
  return { leases, hooks };
}

/** The sockets' methods; `list` and `stats` come from the service so they read its current state. */
export function createHandlers(ctx: HelperContext, service: { list(): ListResult; stats(): StatsResult }): MethodHandlers<RpcPeer | undefined> {
  return {
    hello: async () => hello(ctx),
    open: async (p) => ctx.committer.submit(() => prepareOpen(ctx, p)),
    close: async (p) => {
      const { serviceLeaseClosed, ...result } = await ctx.committer.submit(() => prepareClose(ctx, p));
      const app = findApp(ctx.config, p.app);
      if (!serviceLeaseClosed || !app) return result;
      // A revoke (and a stop with --service-rule-cleanup-on-shutdown) returns once the flows are cut too.
      await ctx.conntrack.cut(app, serviceLeaseClosed.ip, "revoke");
      return result;
    },
    counters: async () => counters(ctx),
    watch: async (_p, peer) => watch(ctx, peer),
    list: async () => service.list(),
    stats: async () => service.stats(),
    grant: async (p): Promise<GrantResult> => ctx.committer.submit(() => prepareGrant(ctx, p)),
  };
}
