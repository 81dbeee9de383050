/**
 * The schemas of the helper's answers and of `watch`'s notifications: what its clients validate. The
 * helper builds its answers to the types derived from them but never loads this module (it trusts
 * itself; a client must not).
 */
import type { Infer, ObjectSchema } from "./schema.js";
import type { MethodName } from "./methods.js";
import { STATS_COUNTERS, STATS_COUNTER_NAMES, appName, ipText, knockStep, type StatsCounterName } from "./shapes.js";

export const isoTime = { type: "string", maxLength: 40 } as const;
export const port = { type: "integer", minimum: 1, maximum: 65535 } as const;
export const transport = { type: "string", enum: ["tcp", "udp"] } as const;
export const count = { type: "integer", minimum: 0 } as const;

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


export const openResult = {
  type: "object",
  additionalProperties: false,
  required: ["app", "ip", "step", "durationSeconds", "expiresAt", "refreshed"],
  properties: { app: appName, ip: ipText, step: knockStep, durationSeconds: { type: "integer", minimum: 1 }, expiresAt: isoTime, refreshed: { type: "boolean" } },
} as const;
export type OpenResult = Infer<typeof openResult>;

export const grantResult = openResult;
export type GrantResult = Infer<typeof grantResult>;

export const closeResult = {
  type: "object",
  additionalProperties: false,
  required: ["closed"],
  properties: { closed: count },
} as const;
export type CloseResult = Infer<typeof closeResult>;
export const checkResult = { type: "object", additionalProperties: false, required: ["open"], properties: { open: { type: "boolean" } } } as const;
export type CheckResult = Infer<typeof checkResult>;

/** One live lease as `watch` reports it at subscription; `list` adds its time left and counters. */
const watchedLease = {
  type: "object",
  additionalProperties: false,
  required: ["app", "ip", "step", "port", "protocol", "expiresAt"],
  properties: { app: appName, ip: ipText, step: knockStep, port, protocol: transport, expiresAt: isoTime },
} as const;
export const leaseInfo = {
  type: "object",
  additionalProperties: false,
  required: [...watchedLease.required, "remainingSeconds"],
  properties: {
    ...watchedLease.properties,
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

/** The result column of the method table (methods.ts): one schema per method, none missing. */
export const RESULTS = {
  hello: helloResult,
  open: openResult,
  counters: countersResult,
  check: checkResult,
  release: closeResult,
  grant: grantResult,
  close: closeResult,
  list: listResult,
  stats: statsResult,
  watch: watchResult,
} as const satisfies { readonly [M in MethodName]: ObjectSchema };
