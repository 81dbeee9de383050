/**
 * The whole helper API, as data: one row per method with the socket allowed to call it, the schema of
 * its params, the named errors it may answer and what it does; its result schema is the method's entry
 * in RESULTS (results.ts, which the helper does not load). The helper dispatches only through this
 * table (dispatch.ts enforces every column) and the client validates results against RESULTS, so
 * nothing outside it crosses a socket. Adding a row widens what a caller can do: review it as such.
 */
import type { Infer, ObjectSchema } from "./schema.js";
import type { RESULTS } from "./results.js";
import type { HelperErrorName } from "./errors.js";
import { checkParams, closeParams, emptyParams, grantParams, openParams } from "./shapes.js";

export * from "./shapes.js";

export const PROTOCOL_VERSION = 2;
/** Largest request frame the helper reads: requests are small and come from the less trusted side. */
export const MAX_FRAME_BYTES = 64 * 1024;
/**
 * Unanswered requests one knock-socket connection may have; past it the helper drops the connection.
 * HelperClient never sends more: a burst of knocks waits in the client instead of failing together.
 */
export const MAX_IN_FLIGHT_PER_CONNECTION = 256;
/** Largest answer the client reads: `list` with 10,000 leases is about 1.5 MB. */
export const MAX_RESPONSE_FRAME_BYTES = 32 * 1024 * 1024;

/**
 * The helper's sockets. `knock`: the internet-facing server's (group knockport), which can at worst
 * open a configured app for some address. `admin`: root's (or an admin group's), for grants, revokes
 * and listings. `events`: read-only lease events (`watch`) for knockport-hooks' own group, which can
 * learn who holds a lease but change nothing.
 */
export type SocketName = "knock" | "admin" | "events";


export interface MethodRow {
  readonly socket: SocketName;
  readonly summary: string;
  readonly params: ObjectSchema;
  readonly errors: readonly HelperErrorName[];
  /** A subscription: after the result, the connection receives notifications of this method (no id; params: results.ts leaseEvent) until it closes. */
  readonly notifies?: string;
}

/** The JSON-RPC method name of `watch`'s notifications. */
export const LEASE_EVENT_METHOD = "lease";

const CHANGE_ERRORS = ["UNKNOWN_APP", "INVALID_ADDRESS", "FIREWALL_FAILED", "OVERLOADED"] as const;

export const METHODS = {
  hello: {
    socket: "knock",
    summary: "Version, firewall type and the knock and service ports, so the server listens where the helper guards.",
    params: emptyParams,
    errors: [],
  },
  open: {
    socket: "knock",
    summary:
      "A verified knock: open step 1 (the HTTPS port) or step 2 (the app's service port, only with a live step-1 lease) of a configured app for one address. Ports, protocol and duration come from the helper's config.",
    params: openParams,
    errors: [...CHANGE_ERRORS, "STEP1_REQUIRED", "TOO_MANY_LEASES"],
  },
  counters: {
    socket: "knock",
    summary: "Read-only figures for the server's /metrics: the stats counters and live leases by app and step, no addresses.",
    params: emptyParams,
    errors: [],
  },
  check: {
    socket: "knock",
    summary:
      "Whether one address holds a live service (step-2) lease of one app, for the server's auth-check listener (reverse proxies). Read-only; one address and one app per call, no listing.",
    params: checkParams,
    errors: ["UNKNOWN_APP", "INVALID_ADDRESS"],
  },
  release: {
    socket: "knock",
    summary:
      "A client's own revoke (a verified step 2 with `close=1`): closes one address's leases of one app, only while that address holds a live step-1 lease of it, as step 2 of `open` requires. So the server can close only what a fresh step 1 from that address could open again; cuts its flows as `close` does.",
    params: closeParams,
    errors: [...CHANGE_ERRORS, "STEP1_REQUIRED"],
  },
  grant: {
    socket: "admin",
    summary: "Let an address in by hand: a step-2 lease without a step 1, at most the app's duration; runs on_open.",
    params: grantParams,
    errors: [...CHANGE_ERRORS, "DURATION_TOO_LONG", "TOO_MANY_LEASES"],
  },
  close: {
    socket: "admin",
    summary: "Revoke an address's leases of an app now (both steps); runs on_close and cuts its flows.",
    params: closeParams,
    errors: CHANGE_ERRORS,
  },
  list: {
    socket: "admin",
    summary: "Every live lease with its address, time left and packet counters.",
    params: emptyParams,
    errors: [],
  },
  stats: {
    socket: "admin",
    summary: "The helper's self-heal and reconciliation counters since it started.",
    params: emptyParams,
    errors: [],
  },
  watch: {
    socket: "events",
    summary:
      "Subscribe to lease events: the result is every live lease, then one `lease` notification per open, refresh, close and expiry. A subscriber whose unread events pass the events socket's output limit (1 MiB) is dropped; the helper never waits for it.",
    params: emptyParams,
    errors: [],
    notifies: LEASE_EVENT_METHOD,
  },
} as const satisfies Record<string, MethodRow>;

export type MethodName = keyof typeof METHODS;
export type ParamsOf<M extends MethodName> = Infer<(typeof METHODS)[M]["params"]>;
export type ResultOf<M extends MethodName> = Infer<(typeof RESULTS)[M]>;

export const METHOD_NAMES = Object.keys(METHODS) as MethodName[];

export function isMethodName(name: unknown): name is MethodName {
  return typeof name === "string" && Object.prototype.hasOwnProperty.call(METHODS, name);
}

/** The methods a caller on `socket` may use. */
export function methodsOf(socket: SocketName): MethodName[] {
  return METHOD_NAMES.filter((m) => METHODS[m].socket === socket);
}
