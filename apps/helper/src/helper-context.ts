import type { Logger } from "./log.js";
import type { KnockportConfig } from "@knockport/config";
import type { StatsResult } from "@knockport/protocol";
import type { FirewallBackend } from "./backend.js";
import type { ConntrackCutter } from "./conntrack.js";
import type { GroupCommitter } from "./group-commit.js";
import type { LeaseEvents } from "./lease-events.js";
import type { Lease, LeaseBook } from "./leases.js";

export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

/** What the `stats` method reports (server /metrics: knockport_helper_*), with the start as a number. */
export type HelperCounts = Omit<StatsResult, "startedAt"> & { startedAtMs: number };

/** The state the lease, reconcile, self-heal and RPC-handler modules share (one per helper). */
export interface HelperContext {
  readonly config: KnockportConfig;
  readonly firewall: FirewallBackend;
  readonly book: LeaseBook;
  readonly committer: GroupCommitter;
  readonly log: Logger;
  readonly clock: Clock;
  readonly counts: HelperCounts;
  readonly conntrack: ConntrackCutter;
  /** Open, refresh, close and expiry of leases, for `watch` subscribers. */
  readonly events: LeaseEvents;
  /** Remove a restored / re-applied lease's element on its deadline (kernel timeouts are whole seconds). */
  closeOnTime(lease: Lease): void;
}
