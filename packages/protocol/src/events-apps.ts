/**
 * The rest of the event catalogue (events.ts has the root helper's): the server's, the hooks runner's
 * and cluster-sync's. An event two processes log (the cluster store's, helper.waiting) is in both
 * parts with the same entry. The CLI logs no events: it prints its answers.
 */
import type { EventCatalogue } from "./event-types.js";
import { ROOT_EVENTS } from "./events.js";
import { eventLogger } from "./log-event.js";

export { ROOT_EVENTS } from "./events.js";
export type { EventCatalogue, EventFields, EventLevel, EventSpec, FieldSpec, LevelLogger, LogEvent } from "./event-types.js";

/** Where a knock's line says it came from: `proxy` only when a trusted proxy named the client. */
const knock = { step: "number", app: "string", ip: "string", proxy: "string?" } as const;

/** Logged by both the server and cluster-sync. */
const SHARED = {
  "cluster.store.error": { level: "debug", fields: { err: "string" } },
  "cluster.subscriber.error": { level: "debug", fields: { err: "string" } },
  "cluster.message.garbage": { level: "warn", fields: {} },
  "helper.waiting": { level: "warn", fields: { err: "string" } },
} as const satisfies EventCatalogue;

export const SERVER_EVENTS = {
  "server.ready": { level: "info", fields: { httpPort: "number", httpsPort: "number", helper: "string" } },
  "server.stopping": { level: "info", fields: { signal: "string" } },
  "metrics.listening": { level: "info", fields: { address: "string", port: "number" } },
  "auth-check.listening": { level: "info", fields: { listen: "string" } },
  "knock.accepted": { level: "info", fields: { ...knock, outcome: ["ok", "closed", "healthcheck"], status: "number" } },
  "knock.refused": { level: "info", fields: { ...knock, reason: ["unknown-app", "bad-key", "bad-2fa", "token-spent", "no-step1", "no-address"], status: "number" } },
  "knock.rate_limited": { level: "warn", fields: { step: "number", ip: "string", proxy: "string?", status: "number" } },
  "knock.bad_request": { level: "info", fields: { step: "number", app: "string?", ip: "string?", proxy: "string?", status: "number" } },
  "knock.bad_proxy_header": { level: "warn", fields: { step: "number", proxy: "string", reason: "string", status: "number" } },
  "knock.failed": { level: "error", fields: { step: "number", app: "string?", ip: "string?", proxy: "string?", cause: ["helper-failed", "store-unavailable", "error"], err: "string?", status: "number" } },
  "helper.failed": { level: "error", fields: { step: "number?", err: "string" } },
  "auth-check.answered": { level: "debug", fields: { app: "string", ip: "string", outcome: ["open", "closed", "unknown-app", "helper-failed"] } },
  "auth-check.refused": { level: "warn", fields: { outcome: ["untrusted-peer", "bad-header"], peer: "string", reason: "string" } },
  "auth-check.failed": { level: "error", fields: { err: "string" } },
  "2fa.file.unreadable": { level: "warn", fields: {} },
  "2fa.file.malformed": { level: "warn", fields: {} },
  "2fa.store.failed": { level: "warn", fields: {} },
  "2fa.store.reset": { level: "warn", fields: {} },
  "2fa.store.unavailable": { level: "warn", fields: {} },
  "cluster.store.ready": { level: "info", fields: { url: "string" } },
  "cluster.store.lost": { level: "warn", fields: { url: "string" } },
  "cluster.store.failed": { level: "warn", fields: { op: "string", app: "string?", ip: "string?", err: "string" } },
  "cluster.subscribed": { level: "info", fields: {} },
  "cluster.step1.applied": { level: "info", fields: { app: "string", ip: "string" } },
  "cluster.step1.ignored": { level: "warn", fields: { app: "string", ip: "string" } },
  "cluster.step1.failed": { level: "error", fields: { app: "string", ip: "string", err: "string" } },
  ...SHARED,
} as const satisfies EventCatalogue;

const hookRun = {
  hook: "string", reason: "string", app: "string", ip: "string", port: "number", protocol: "string",
  outcome: "string", attempt: "number", tookMs: "number", exitCode: "number?",
} as const;

export const HOOKS_EVENTS = {
  "hooks.started": { level: "info", fields: { socket: "string", stateDir: "string", recorded: "number" } },
  "hooks.subscribed": { level: "info", fields: { apps: "number", leases: "number", recorded: "number" } },
  "hooks.disconnected": { level: "warn", fields: {} },
  "hooks.watch_problem": { level: "warn", fields: { err: "string" } },
  "hooks.metrics_failed": { level: "warn", fields: { err: "string" } },
  "hooks.stopping": { level: "info", fields: { signal: "string", pendingCloses: "number" } },
  "hook.ran": { level: "info", audit: true, fields: hookRun },
  "hook.failed": { level: "warn", audit: true, fields: { ...hookRun, error: "string?", stderr: "string?" } },
  "hook.open_refused": { level: "error", audit: true, fields: { app: "string", ip: "string", reason: "string", limit: "number?", err: "string?" } },
  "hook.unknown_app": { level: "error", audit: true, fields: { app: "string", ip: "string" } },
  "hook.internal_error": { level: "error", fields: { app: "string", ip: "string", err: "string" } },
  "hook.record_failed": { level: "error", fields: { err: "string" } },
} as const satisfies EventCatalogue;

export const CLUSTER_SYNC_EVENTS = {
  "cluster-sync.ready": { level: "info", fields: { url: "string", prefix: "string" } },
  "cluster-sync.stopping": { level: "info", fields: { signal: "string" } },
  "cluster.catch-up.start": { level: "debug", fields: { why: "string" } },
  "cluster.catch-up": { level: "info", fields: { live: "number", applied: "number", republished: "number" } },
  "cluster.catch-up.failed": { level: "warn", fields: { err: "string" } },
  "cluster.store.garbage": { level: "warn", fields: { entries: "number" } },
  "cluster.lease.applied": { level: "info", fields: { app: "string", ip: "string", expiresAt: "string" } },
  "cluster.lease.ignored": { level: "warn", fields: { app: "string", ip: "string" } },
  "cluster.lease.revoked": { level: "info", fields: { app: "string", ip: "string" } },
  "cluster.sync.failed": { level: "error", fields: { op: "string?", app: "string?", ip: "string?", err: "string" } },
  "helper.watch.ready": { level: "info", fields: { leases: "number" } },
  "helper.watch.ended": { level: "warn", fields: { err: "string" } },
  ...SHARED,
} as const satisfies EventCatalogue;

/** Each process's events, in the order docs/events.md lists them. */
export const EVENTS_BY_PROCESS = {
  "knockport-helper": ROOT_EVENTS,
  "knockport-server": SERVER_EVENTS,
  "knockport-hooks": HOOKS_EVENTS,
  "knockport-cluster-sync": CLUSTER_SYNC_EVENTS,
} as const;

export const APP_EVENTS = { ...SERVER_EVENTS, ...HOOKS_EVENTS, ...CLUSTER_SYNC_EVENTS } as const;
export const EVENTS = { ...ROOT_EVENTS, ...APP_EVENTS } as const;
export type EventName = keyof typeof EVENTS;

/** The server's, the hooks runner's and cluster-sync's events (the helper's logEvent is log-event.ts'). */
export const logEvent = eventLogger<typeof APP_EVENTS>();
