import type { IpAddress, TransportProtocol } from "@knockport/protocol";

/** What the runner needs of an app: its hook commands and the values their placeholders take. */
export interface HookApp {
  readonly name: string;
  readonly port: number;
  readonly protocol: TransportProtocol;
  readonly onOpen: readonly string[] | undefined;
  readonly onClose: readonly string[] | undefined;
}

/** A live service lease as the helper reports it. */
export interface LiveLease {
  readonly app: string;
  readonly ip: IpAddress;
  readonly expiresAtMs: number;
  readonly durationSeconds: number;
}

/**
 * A change to a service lease. `open`: a new lease (knock or admin grant); `refresh`: a live lease
 * was extended (no hook runs); `close`: it ended (expiry, revoke, expired while the helper was down).
 */
export type LeaseEvent =
  | ({ readonly kind: "open" | "refresh"; readonly reason: string } & LiveLease)
  | { readonly kind: "close"; readonly reason: string; readonly app: string; readonly ip: IpAddress };

export type HookKind = "on_open" | "on_close";

/** Why a hook run ended the way it did; also the metric and audit label. */
export type HookOutcome = "ok" | "failed" | "timeout" | "not-started";
