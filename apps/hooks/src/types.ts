import type { AppConfig } from "@knockport/config";
import type { IpAddress, TransportProtocol } from "@knockport/protocol";

/** An app's hook commands, as the helper's config has them (handed over by `watch`). */
export type HookApp = Pick<AppConfig, "name" | "onOpen" | "onClose">;

/** Where a service lease lets its address in: the values of {port} and {protocol}. */
export interface LeaseTarget {
  readonly app: string;
  readonly ip: IpAddress;
  readonly port: number;
  readonly protocol: TransportProtocol;
}

/** A live service lease as the helper reports it. */
export interface LiveLease extends LeaseTarget {
  readonly expiresAtMs: number;
  readonly durationSeconds: number;
}

/**
 * A change to a service lease. `open`: a new lease (knock or admin grant); `refresh`: a live lease
 * was extended (no hook runs); `close`: it ended (expiry, revoke).
 */
export type LeaseEvent =
  | ({ readonly kind: "open" | "refresh"; readonly reason: string } & LiveLease)
  | ({ readonly kind: "close"; readonly reason: string } & LeaseTarget);

export type HookKind = "on_open" | "on_close";

/** Why a hook run ended the way it did; also the metric and audit label. */
export type HookOutcome = "ok" | "failed" | "timeout" | "not-started";
