import { findApp } from "@knockport/config/firewall";
import { HelperError, LEASE_EVENT_METHOD, PROTOCOL_VERSION, type CloseParams, type CloseResult, type CountersResult, type LeaseInfo, type ListResult, type MethodHandlers, type StatsResult, type WatchResult, logEvent } from "@knockport/protocol";
import type { HelperContext, RpcPeer } from "./helper-context.js";
import { leaseView, prepareClose, prepareGrant, prepareOpen, resolve, setFor } from "./lease-changes.js";
import type { CounterReading } from "./reconcile.js";

export const HELPER_VERSION = "0.1.0";

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
  const leases = ctx.book
    .live(now)
    .sort((a, b) => a.expiresAtMs - b.expiresAtMs)
    .map((l) => {
      const info: LeaseInfo = { ...leaseView(ctx, l), remainingSeconds: Math.round((l.expiresAtMs - now) / 100) / 10 };
      const c = counters?.byElement.get(`${setFor(l.step, l.app, l.ip)}|${l.ip}`);
      if (c?.packets !== undefined && c.bytes !== undefined) Object.assign(info, { packets: c.packets, bytes: c.bytes });
      return info;
    });
  return counters === undefined ? { leases } : { leases, countersAt: new Date(counters.atMs).toISOString() };
}

/**
 * `watch`: every live lease now, then each lease event on `peer`'s connection until it closes. The
 * snapshot and the subscription are taken in one synchronous step, so no event falls between them,
 * and the peer queues events after the answer, so the subscriber sees the snapshot first.
 */
function watch(ctx: HelperContext, peer: RpcPeer | undefined): WatchResult {
  if (peer === undefined) throw new Error("watch needs a connection to send its events on");
  const leases = ctx.book.live(ctx.clock.now()).map((l) => leaseView(ctx, l));
  const listener = (event: unknown): void => peer.notify(LEASE_EVENT_METHOD, event);
  ctx.subscribers.add(listener);
  peer.onClose(() => ctx.subscribers.delete(listener));
  peer.keepOpen();
  logEvent(ctx.log, "info", "watch.subscribed", { audit: true, subscribers: ctx.subscribers.size, leases: leases.length }, "watch subscriber connected");
  peer.onClose(() => logEvent(ctx.log, "info", "watch.unsubscribed", { subscribers: ctx.subscribers.size }, "watch subscriber gone"));
  // The apps' hook commands, so that knockport-hooks runs them without reading the config (and its keys).
  const hooks = ctx.config.apps
    .filter((a) => a.onOpen !== undefined || a.onClose !== undefined)
    .map((a) => ({ app: a.name, ...(a.onOpen ? { onOpen: [...a.onOpen] } : {}), ...(a.onClose ? { onClose: [...a.onClose] } : {}) }));
  return { leases, hooks };
}

/** The sockets' methods (the dispatcher of each socket serves only its rows). */
export function createHandlers(ctx: HelperContext, service: { list(): ListResult }): MethodHandlers<RpcPeer | undefined> {
  const { config } = ctx;
  const close = async (p: CloseParams): Promise<CloseResult> => {
    const { serviceLeaseClosed, ...result } = await ctx.committer.submit(() => prepareClose(ctx, p));
    const app = findApp(config, p.app);
    // A revoke (and a stop with --service-rule-cleanup-on-shutdown) returns once the flows are cut too.
    if (serviceLeaseClosed && app) await ctx.conntrack.cut(app, serviceLeaseClosed.ip, "revoke");
    return result;
  };
  return {
    hello: async () => ({
      version: HELPER_VERSION,
      protocolVersion: PROTOCOL_VERSION,
      firewallType: ctx.firewall.type,
      httpPort: config.httpPort,
      httpsPort: config.httpsPort,
      ...(config.waf ? { waf: { httpPort: config.waf.httpPort, httpsPort: config.waf.httpsPort } } : {}),
      services: config.apps.map((a) => ({ app: a.name, port: a.port, protocol: a.protocol })),
    }),
    open: async (p) => ctx.committer.submit(() => prepareOpen(ctx, p)),
    grant: async (p) => ctx.committer.submit(() => prepareGrant(ctx, p)),
    close,
    release: async (p) => {
      const { app, ip } = resolve(ctx, p.app, p.ip);
      if (!((ctx.book.get(1, app.name, ip)?.expiresAtMs ?? 0) > ctx.clock.now())) throw new HelperError("STEP1_REQUIRED");
      return close(p);
    },
    /** Knock socket, for /metrics: the stats and live leases by app and step, no addresses. */
    counters: async () => {
      const byAppStep = new Map<string, CountersResult["openLeases"][number]>();
      for (const l of ctx.book.live(ctx.clock.now())) {
        const entry = byAppStep.get(`${l.step}|${l.app}`);
        if (entry) entry.count += 1;
        else byAppStep.set(`${l.step}|${l.app}`, { app: l.app, step: l.step, count: 1 });
      }
      return { ...stats(ctx), openLeases: [...byAppStep.values()] };
    },
    check: async (p) => {
      const { app, ip } = resolve(ctx, p.app, p.ip);
      return { open: (ctx.book.get(2, app.name, ip)?.expiresAtMs ?? 0) > ctx.clock.now() };
    },
    watch: async (_p, peer) => watch(ctx, peer),
    list: async () => service.list(),
    stats: async () => stats(ctx),
  };
}
