/**
 * The root helper's part of the event catalogue (its backends' included): level and fields of every
 * log line's `event`. events-apps.ts has the other processes'; event-meanings.ts the one-line meaning
 * of each, for docs/events.md. The helper imports this file as a type only (log-event.ts), so it
 * loads none of it.
 */
import type { EventCatalogue } from "./event-types.js";

const lease = { app: "string", ip: "string", step: "number", port: "number", protocol: "string" } as const;

export const ROOT_EVENTS = {
  "helper.ready": {
    level: "info",
    fields: { firewallType: "string", nftTable: "string?", httpPort: "number", httpsPort: "number", wafHttpPort: "number?", wafHttpsPort: "number?", apps: "string[]" },
  },
  "helper.stopping": { level: "info", fields: { signal: "string", revokeGrants: "boolean" } },
  "socket.listening": { level: "info", fields: { name: "string", socket: "string", mode: "string", group: "string?" } },
  "socket.error": { level: "error", fields: { err: "string" } },
  "rpc.connection_refused": { level: "warn", fields: { socket: "string", limit: "number" } },
  "rpc.output_overrun": { level: "warn", fields: { limit: "number", queuedBytes: "number?", queuedNotifications: "number?" } },
  "rpc.frame_too_large": { level: "warn", fields: {} },
  "rpc.overrun": { level: "warn", fields: {} },
  "rpc.internal_error": { level: "error", fields: { method: "string", err: "string?" } },
  "rpc.not_allowed": { level: "warn", audit: true, fields: { socket: "string", method: "string" } },
  "watch.subscribed": { level: "info", audit: true, fields: { subscribers: "number", leases: "number" } },
  "watch.unsubscribed": { level: "info", fields: { subscribers: "number" } },
  "lease.opened": { level: "info", audit: true, fields: { via: "string", ...lease, expiresAt: "string", durationSeconds: "number" } },
  "lease.refreshed": { level: "info", audit: true, fields: { via: "string", ...lease, expiresAt: "string", durationSeconds: "number" } },
  "lease.closed": { level: "info", audit: true, fields: { via: "string", app: "string", ip: "string", closed: "number", steps: "number[]" } },
  "lease.expired": { level: "info", audit: true, fields: { ...lease, expiredAt: "string" } },
  "lease.restored": { level: "info", audit: true, fields: { app: "string", ip: "string", step: "number", remainingSeconds: "number" } },
  "lease.shortened": { level: "info", fields: { app: "string", ip: "string", step: "number", remainingSeconds: "number" } },
  "lease.revoke_failed": { level: "error", fields: { app: "string", ip: "string", err: "string" } },
  "leases.revoked_on_shutdown": { level: "info", fields: { revoked: "number", failed: "number" } },
  "firewall.installed": { level: "info", fields: { type: "string", restored: "number" } },
  "firewall.failed": { level: "error", fields: { err: "string" } },
  "firewall.changed": { level: "debug", fields: { reason: "string" } },
  "firewall.reinstalled": { level: "warn", audit: true, fields: { type: "string", restored: "number", reason: "string?" } },
  "firewall.reconciled": { level: "warn", audit: true, fields: { type: "string", added: "number", retimed: "number", removed: "number" } },
  "firewall.selfheal_failed": { level: "error", fields: { err: "string" } },
  "firewall.monitor_restart": { level: "warn", fields: { reason: "string", stderr: "string", restartInMs: "number" } },
  "interface.missing": { level: "error", fields: { interface: "string", apps: "string[]" } },
  "interface.appeared": { level: "warn", fields: { interface: "string", apps: "string[]" } },
  "interface.unknown": { level: "error", fields: { err: "string" } },
  "interface.watch_failed": { level: "error", fields: { err: "string" } },
  "conntrack.deleted": { level: "info", audit: true, fields: { app: "string", ip: "string", port: "number", protocol: "string", reason: "string", deleted: "number" } },
  "conntrack.failed": { level: "error", audit: true, fields: { app: "string", ip: "string", port: "number", protocol: "string", reason: "string", error: "string", stderr: "string?" } },
  "conntrack.dropped": { level: "warn", fields: { app: "string", ip: "string", reason: "string" } },
} as const satisfies EventCatalogue;
