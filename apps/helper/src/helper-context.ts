import type { Logger } from "./log.js";
import type { FirewallConfig as KnockportConfig } from "@knockport/config/firewall";
import type { LeaseEvent, StatsResult } from "@knockport/protocol";
import type { FirewallBackend } from "./backend.js";
import type { ConntrackCutter } from "./conntrack.js";
import type { GroupCommitter } from "./group-commit.js";
import type { Lease, LeaseBook } from "./leases.js";

export interface Clock {
  now(): number;
}

/** What the `stats` method reports (server /metrics: knockport_helper_*), with the start as a number. */
export type HelperCounts = Omit<StatsResult, "startedAt"> & { startedAtMs: number };

/** What the lease logic needs of conntrack.ts's ConntrackCutter (`close_established`). */
export type Conntrack = Pick<ConntrackCutter, "applies" | "cut" | "idle">;

/** A connection that receives notifications: what `watch` needs of the socket it was called on. */
export interface RpcPeer {
  /** Queue a notification after every answer already due on this connection. */
  notify(method: string, params: unknown): void;
  /** Run `fn` once the connection is gone (at once if it already is). */
  onClose(fn: () => void): void;
  /** A subscriber may stay quiet for long: exempt the connection from the idle limit. */
  keepOpen(): void;
}

/** The state the lease, reconcile, self-heal and RPC-handler modules share: the HelperService. */
export interface HelperContext {
  readonly config: KnockportConfig;
  readonly firewall: FirewallBackend;
  readonly book: LeaseBook;
  readonly committer: GroupCommitter;
  readonly log: Logger;
  readonly clock: Clock;
  readonly counts: HelperCounts;
  readonly conntrack: Conntrack;
  /**
   * `watch` subscribers. Each only queues the event on its own connection (bounded there): a slow
   * subscriber never delays a knock.
   */
  readonly subscribers: Set<(event: LeaseEvent) => void>;
  /** Remove a restored / re-applied lease's element on its deadline (kernel timeouts are whole seconds). */
  closeOnTime(lease: Lease): void;
}
