/**
 * The schemas of the requests the helper validates (its results' are in results.ts, which it never
 * loads). Written `as const` so that `Infer` reads their TypeScript types from them.
 */
import type { Infer } from "./schema.js";

/** App names are YAML keys; the same pattern is enforced by the config schema. */
export const APP_NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$";
/** Longest manual grant the protocol carries (366 days, the config's longest `duration`). */
export const MAX_GRANT_SECONDS = 366 * 24 * 3600;

export const appName = { type: "string", pattern: APP_NAME_PATTERN, maxLength: 32 } as const;
export const ipText = { type: "string", minLength: 2, maxLength: 45, pattern: "^[0-9A-Fa-f:.]+$" } as const;
export const knockStep = { type: "integer", enum: [1, 2] } as const;
export type KnockStep = Infer<typeof knockStep>;

export const emptyParams = { type: "object", additionalProperties: false, required: [], properties: {} } as const;

/**
 * The helper's self-heal and reconciliation counters, listed once: the `stats` and `counters` results
 * carry each of them, the helper keeps them and the server's /metrics renders them with these texts.
 */
export const STATS_COUNTERS = {
  leasesRestored: "Leases read back from the kernel's sets at start.",
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

export const openParams = {
  type: "object",
  additionalProperties: false,
  required: ["step", "app", "ip"],
  properties: { step: knockStep, app: appName, ip: ipText },
} as const;
export type OpenParams = Infer<typeof openParams>;

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

export const closeParams = { type: "object", additionalProperties: false, required: ["app", "ip"], properties: { app: appName, ip: ipText } } as const;
export type CloseParams = Infer<typeof closeParams>;
/** `check`: one address and one app, so the answer says nothing about anyone else. */
export const checkParams = closeParams;
export type CheckParams = Infer<typeof checkParams>;
