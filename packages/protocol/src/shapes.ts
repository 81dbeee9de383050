/**
 * The schemas of every value that crosses a helper socket. Written `as const` so that `Infer` reads
 * their TypeScript types from them; methods.ts puts them in the method table.
 */
import type { Infer } from "./schema.js";

/** App names are YAML keys; the same pattern is enforced by the config schema. */
export const APP_NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$";
/** Longest manual grant the protocol carries (366 days, the config's longest `duration`). */
export const MAX_GRANT_SECONDS = 366 * 24 * 3600;

export const appName = { type: "string", pattern: APP_NAME_PATTERN, maxLength: 32 } as const;
export const ipText = { type: "string", minLength: 2, maxLength: 45, pattern: "^[0-9A-Fa-f:.]+$" } as const;
export const isoTime = { type: "string", maxLength: 40 } as const;
export const knockStep = { type: "integer", enum: [1, 2] } as const;
export const port = { type: "integer", minimum: 1, maximum: 65535 } as const;
export const transport = { type: "string", enum: ["tcp", "udp"] } as const;
export const count = { type: "integer", minimum: 0 } as const;

export const emptyParams = { type: "object", additionalProperties: false, required: [], properties: {} } as const;

/**
 * The helper's self-heal and reconciliation counters, listed once: the `stats` and `counters` results
 * carry each of them, the helper keeps them in this shape and the server's /metrics renders them.
 */
export const STATS_COUNTERS = {
  leasesRestored: "Leases put back from the journal at start.",
  reinstalls: "Times the whole firewall was re-applied because its rules were gone.",
  reconciliations: "Times the sets' elements were listed and compared with the leases.",
  elementsAdded: "Elements a reconciliation re-added (a live lease was missing).",
  elementsRetimed: "Elements a reconciliation reset (wrong timeout).",
  elementsRemoved: "Elements a reconciliation removed (no lease).",
  selfHealFailures: "Self-heal checks or re-applies that failed.",
} as const;
export type StatsCounterName = keyof typeof STATS_COUNTERS;
export const STATS_COUNTER_NAMES = Object.keys(STATS_COUNTERS) as StatsCounterName[];
/** Every counter at 0: a helper's counts at start. */
export function zeroStatsCounters(): Record<StatsCounterName, number> {
  return Object.fromEntries(STATS_COUNTER_NAMES.map((n) => [n, 0])) as Record<StatsCounterName, number>;
}

type CounterSchema = typeof count & { readonly description: string };
function counterSchemas(): { readonly [K in StatsCounterName]: CounterSchema } {
  const out: Partial<Record<StatsCounterName, CounterSchema>> = {};
  for (const name of STATS_COUNTER_NAMES) out[name] = { ...count, description: STATS_COUNTERS[name] };
  return out as Record<StatsCounterName, CounterSchema>;
}
const counterProperties = counterSchemas();

export const statsResult = {
  type: "object",
  additionalProperties: false,
  required: ["startedAt", ...STATS_COUNTER_NAMES] as readonly ["startedAt", ...StatsCounterName[]],
  properties: { startedAt: isoTime, ...counterProperties },
} as const;
export type StatsResult = Infer<typeof statsResult>;


export const helloResult = {
  type: "object",
  additionalProperties: false,
  required: ["version", "protocolVersion", "firewallType", "httpPort", "httpsPort", "services"],
  properties: {
    version: { type: "string", maxLength: 64 },
    protocolVersion: { type: "integer" },
    firewallType: { type: "string", enum: ["nftables", "iptables", "vyos"] },
    httpPort: port,
    httpsPort: port,
    waf: {
      type: "object",
      additionalProperties: false,
      required: ["httpPort", "httpsPort"],
      properties: { httpPort: port, httpsPort: port },
      description: "WAF mode: the public ports nginx listens on, which the helper guards; absent otherwise.",
    },
    services: {
      type: "array",
      maxItems: 1024,
      items: { type: "object", additionalProperties: false, required: ["app", "port", "protocol"], properties: { app: appName, port, protocol: transport } },
    },
  },
} as const;
export type HelloResult = Infer<typeof helloResult>;
export type FirewallType = HelloResult["firewallType"];
export type ServicePortInfo = HelloResult["services"][number];
export type KnockStep = Infer<typeof knockStep>;

export const openParams = {
  type: "object",
  additionalProperties: false,
  required: ["step", "app", "ip"],
  properties: { step: knockStep, app: appName, ip: ipText },
} as const;
export type OpenParams = Infer<typeof openParams>;

const openResultProperties = {
  app: appName,
  ip: ipText,
  step: knockStep,
  durationSeconds: { type: "integer", minimum: 1 },
  expiresAt: isoTime,
  refreshed: { type: "boolean" },
} as const;
const openResultRequired = ["app", "ip", "step", "durationSeconds", "expiresAt", "refreshed"] as const;
export const openResult = { type: "object", additionalProperties: false, required: openResultRequired, properties: openResultProperties } as const;
export type OpenResult = Infer<typeof openResult>;

export const grantParams = {
  type: "object",
  additionalProperties: false,
  required: ["app", "ip"],
  properties: {
    app: appName,
    ip: ipText,
    durationSeconds: {
      type: "integer",
      minimum: 1,
      maximum: MAX_GRANT_SECONDS,
      description: "At most the app's configured `duration` (its default), so an admin grant is no longer than a knock.",
    },
  },
} as const;
export type GrantParams = Infer<typeof grantParams>;
export const grantResult = {
  type: "object",
  additionalProperties: false,
  required: openResultRequired,
  properties: openResultProperties,
} as const;
export type GrantResult = Infer<typeof grantResult>;

export const closeParams = { type: "object", additionalProperties: false, required: ["app", "ip"], properties: { app: appName, ip: ipText } } as const;
export type CloseParams = Infer<typeof closeParams>;
export const closeResult = {
  type: "object",
  additionalProperties: false,
  required: ["closed"],
  properties: { closed: count },
} as const;
export type CloseResult = Infer<typeof closeResult>;

/** `check`: one address and one app, so the answer says nothing about anyone else. */
export const checkParams = closeParams;
export type CheckParams = Infer<typeof checkParams>;
export const checkResult = { type: "object", additionalProperties: false, required: ["open"], properties: { open: { type: "boolean" } } } as const;
export type CheckResult = Infer<typeof checkResult>;

export const leaseInfo = {
  type: "object",
  additionalProperties: false,
  required: ["app", "ip", "step", "port", "protocol", "expiresAt", "remainingSeconds"],
  properties: {
    app: appName,
    ip: ipText,
    step: knockStep,
    port,
    protocol: transport,
    expiresAt: isoTime,
    remainingSeconds: { type: "number", minimum: 0 },
    packets: {
      ...count,
      description:
        "Packets the client sent that matched the lease's set element since it was last written (knock, refresh, restart, re-apply); absent before the backend's first reading.",
    },
    bytes: { ...count, description: "Bytes (IP length) of those packets." },
  },
} as const;
export type LeaseInfo = Infer<typeof leaseInfo>;
export const listResult = {
  type: "object",
  additionalProperties: false,
  required: ["leases"],
  properties: {
    leases: { type: "array", items: leaseInfo },
    countersAt: { ...isoTime, description: "When the helper read the counters from the kernel; absent before its first reading." },
  },
} as const;
export type ListResult = Infer<typeof listResult>;

/** Read-only figures for the server's /metrics: the stats counters and live leases by app and step, no addresses. */
export const countersResult = {
  type: "object",
  additionalProperties: false,
  required: [...statsResult.required, "openLeases"],
  properties: {
    ...statsResult.properties,
    openLeases: {
      type: "array",
      maxItems: 2048,
      items: { type: "object", additionalProperties: false, required: ["app", "step", "count"], properties: { app: appName, step: knockStep, count } },
    },
  },
} as const;
export type CountersResult = Infer<typeof countersResult>;

/** One live lease as `watch` reports it at subscription. */
const watchedLease = {
  type: "object",
  additionalProperties: false,
  required: ["app", "ip", "step", "port", "protocol", "expiresAt"],
  properties: { app: appName, ip: ipText, step: knockStep, port, protocol: transport, expiresAt: isoTime },
} as const;
const hookArgv = { type: "array", items: { type: "string", maxLength: 4096 }, minItems: 1, maxItems: 64 } as const;
/** An app's on_open / on_close commands (argument vectors with placeholders), as configured. */
const appHooks = {
  type: "object",
  additionalProperties: false,
  required: ["app"],
  properties: { app: appName, onOpen: hookArgv, onClose: hookArgv },
} as const;
export const watchResult = {
  type: "object",
  additionalProperties: false,
  required: ["leases", "hooks"],
  properties: {
    leases: { type: "array", items: watchedLease, description: "Every live lease when the subscription started; events follow from there." },
    hooks: { type: "array", items: appHooks, description: "The hook commands of the apps that have any, so that knockport-hooks needs no config (and no keys)." },
  },
} as const;
export type WatchResult = Infer<typeof watchResult>;

/**
 * A `watch` notification (JSON-RPC method `lease`, no id): a lease opened, refreshed, closed (revoked
 * by an admin or at shutdown) or expired. The shape a hooks process runs on_open / on_close from.
 */
export const leaseEvent = {
  type: "object",
  additionalProperties: false,
  required: ["event", "app", "ip", "step", "port", "protocol", "expiresAt"],
  properties: {
    event: { type: "string", enum: ["open", "refresh", "close", "expiry"] },
    ...watchedLease.properties,
    port: { ...port, description: "Step 1: the public HTTPS knock port; step 2: the app's port." },
    expiresAt: { ...isoTime, description: "open / refresh: the lease's new end; close: when it was revoked; expiry: the deadline that passed." },
    durationSeconds: { type: "integer", minimum: 1, description: "open / refresh: the lease's length." },
    via: { type: "string", enum: ["knock", "admin"], description: "open / refresh: a knock or an admin's grant; close: always admin (a revoke or the shutdown cleanup)." },
  },
} as const;
export type LeaseEvent = Infer<typeof leaseEvent>;
