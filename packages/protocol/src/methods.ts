/**
 * The whole helper API, as data. Each entry names a method, the JSON schema of its params and of
 * its result, and the named errors it may answer. The helper dispatches only through this table
 * and the client validates results against it, so nothing outside it crosses the socket.
 */
import type { JSONSchemaType } from "ajv";

export const PROTOCOL_VERSION = 1;
/** Largest request frame the helper reads: requests are small and come from the less trusted side. */
export const MAX_FRAME_BYTES = 64 * 1024;
/** Largest answer the client reads: `list` with 10,000 leases is about 1.5 MB. */
export const MAX_RESPONSE_FRAME_BYTES = 32 * 1024 * 1024;

/** App names are YAML keys; the same pattern is enforced by the config schema. */
export const APP_NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$";

export type FirewallType = "nftables" | "iptables" | "vyos";
export type KnockStep = 1 | 2;

export interface ServicePortInfo {
  app: string;
  port: number;
  protocol: "tcp" | "udp";
}
export interface HelloParams {
  [k: string]: never;
}
export interface HelloResult {
  version: string;
  protocolVersion: number;
  firewallType: FirewallType;
  httpPort: number;
  httpsPort: number;
  /** WAF mode: the public ports nginx listens on, which the helper guards; absent otherwise. */
  waf?: { httpPort: number; httpsPort: number };
  services: ServicePortInfo[];
}
export interface OpenParams {
  step: KnockStep;
  app: string;
  ip: string;
}
export interface OpenResult {
  app: string;
  ip: string;
  step: KnockStep;
  durationSeconds: number;
  expiresAt: string;
  refreshed: boolean;
}
export interface CloseParams {
  app: string;
  ip: string;
}
export interface CloseResult {
  closed: number;
  /** on_close hook commands run for the closed service lease, when the app has them. */
  hooks?: HookReport;
}
/** An admin lets an address in by hand: a step-2 lease without a step 1. */
export interface GrantParams {
  app: string;
  ip: string;
  /** At most the app's configured `duration` (its default), so the socket grants no more than a knock. */
  durationSeconds?: number;
}
export interface GrantResult extends OpenResult {
  /** on_open hook commands run for a new lease, when the app has them. */
  hooks?: HookReport;
}
/** Outcome of an app's on_open / on_close commands: how many ran and how many failed (details in the helper log). */
export interface HookReport {
  ran: number;
  failed: number;
}
export interface ListParams {
  [k: string]: never;
}
export interface LeaseInfo {
  app: string;
  ip: string;
  step: KnockStep;
  port: number;
  protocol: "tcp" | "udp";
  expiresAt: string;
  remainingSeconds: number;
  /**
   * Packets and bytes the client sent that matched the lease's set element (incoming direction, IP
   * length), since the element was last written (knock, refresh, restart, re-apply). Absent when the
   * backend has no reading for it yet.
   */
  packets?: number;
  bytes?: number;
}
export interface ListResult {
  leases: LeaseInfo[];
  /** When the helper read the counters from the kernel; absent before its first reading. */
  countersAt?: string;
}
export interface StatsParams {
  [k: string]: never;
}
/** The helper's self-heal and reconciliation counts since it started (read-only). */
export interface StatsResult {
  startedAt: string;
  /** Leases put back from the journal at start. */
  leasesRestored: number;
  /** Times the whole firewall was re-applied because its rules were gone. */
  reinstalls: number;
  /** Times the sets' elements were listed and compared with the leases. */
  reconciliations: number;
  /** Elements the reconciliations re-added (missing), reset (wrong timeout) or removed (strays). */
  elementsAdded: number;
  elementsRetimed: number;
  elementsRemoved: number;
  /** Self-heal checks or re-applies that failed. */
  selfHealFailures: number;
}

const emptyParams = {
  type: "object",
  additionalProperties: false,
  properties: {},
  required: [],
} as unknown as JSONSchemaType<HelloParams>;

const appName = { type: "string", pattern: APP_NAME_PATTERN, maxLength: 32 } as const;
const ipText = { type: "string", minLength: 2, maxLength: 45, pattern: "^[0-9A-Fa-f:.]+$" } as const;
const isoTime = { type: "string", maxLength: 40 } as const;
const step = { type: "integer", enum: [1, 2] } as const;
const port = { type: "integer", minimum: 1, maximum: 65535 } as const;
const transport = { type: "string", enum: ["tcp", "udp"] } as const;
/** Longest manual grant the protocol carries (366 days, the config's longest `duration`). */
export const MAX_GRANT_SECONDS = 366 * 24 * 3600;
const hookReport = {
  type: "object",
  additionalProperties: false,
  required: ["ran", "failed"],
  properties: { ran: { type: "integer", minimum: 0 }, failed: { type: "integer", minimum: 0 } },
  nullable: true,
} as const;

const helloResult: JSONSchemaType<HelloResult> = {
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
      nullable: true,
    },
    services: {
      type: "array",
      maxItems: 1024,
      items: {
        type: "object",
        additionalProperties: false,
        required: ["app", "port", "protocol"],
        properties: { app: appName, port, protocol: transport },
      },
    },
  },
};

const openParams: JSONSchemaType<OpenParams> = {
  type: "object",
  additionalProperties: false,
  required: ["step", "app", "ip"],
  properties: { step: step as JSONSchemaType<KnockStep>, app: appName, ip: ipText },
};
const openResult: JSONSchemaType<OpenResult> = {
  type: "object",
  additionalProperties: false,
  required: ["app", "ip", "step", "durationSeconds", "expiresAt", "refreshed"],
  properties: {
    app: appName,
    ip: ipText,
    step: step as JSONSchemaType<KnockStep>,
    durationSeconds: { type: "integer", minimum: 1 },
    expiresAt: isoTime,
    refreshed: { type: "boolean" },
  },
};
const closeParams: JSONSchemaType<CloseParams> = {
  type: "object",
  additionalProperties: false,
  required: ["app", "ip"],
  properties: { app: appName, ip: ipText },
};
const closeResult: JSONSchemaType<CloseResult> = {
  type: "object",
  additionalProperties: false,
  required: ["closed"],
  properties: { closed: { type: "integer", minimum: 0 }, hooks: hookReport },
} as unknown as JSONSchemaType<CloseResult>;
const grantParams: JSONSchemaType<GrantParams> = {
  type: "object",
  additionalProperties: false,
  required: ["app", "ip"],
  properties: {
    app: appName,
    ip: ipText,
    durationSeconds: { type: "integer", minimum: 1, maximum: MAX_GRANT_SECONDS, nullable: true },
  },
};
const grantResult = {
  ...openResult,
  properties: { ...openResult.properties, hooks: hookReport },
} as unknown as JSONSchemaType<GrantResult>;
const count = { type: "integer", minimum: 0 } as const;
const listResult: JSONSchemaType<ListResult> = {
  type: "object",
  additionalProperties: false,
  required: ["leases"],
  properties: {
    countersAt: { ...isoTime, nullable: true },
    leases: {
      type: "array",
      items: {
        type: "object",
        additionalProperties: false,
        required: ["app", "ip", "step", "port", "protocol", "expiresAt", "remainingSeconds"],
        properties: {
          app: appName,
          ip: ipText,
          step: step as JSONSchemaType<KnockStep>,
          port,
          protocol: transport,
          expiresAt: isoTime,
          remainingSeconds: { type: "number", minimum: 0 },
          packets: { ...count, nullable: true },
          bytes: { ...count, nullable: true },
        },
      },
    },
  },
};
const statsResult: JSONSchemaType<StatsResult> = {
  type: "object",
  additionalProperties: false,
  required: [
    "startedAt",
    "leasesRestored",
    "reinstalls",
    "reconciliations",
    "elementsAdded",
    "elementsRetimed",
    "elementsRemoved",
    "selfHealFailures",
  ],
  properties: {
    startedAt: isoTime,
    leasesRestored: count,
    reinstalls: count,
    reconciliations: count,
    elementsAdded: count,
    elementsRetimed: count,
    elementsRemoved: count,
    selfHealFailures: count,
  },
};

/** Errors a handler may answer besides the JSON-RPC standard ones. Codes are stable. */
export const HELPER_ERRORS = {
  UNKNOWN_APP: { code: -32001, message: "unknown app" },
  STEP1_REQUIRED: { code: -32002, message: "step 2 requires a live step-1 lease for this app and address" },
  FIREWALL_FAILED: { code: -32003, message: "the firewall refused the change" },
  INVALID_ADDRESS: { code: -32004, message: "not a unicast IPv4 or IPv6 address" },
  OVERLOADED: { code: -32005, message: "helper is busy, retry later" },
  STATE_FAILED: { code: -32006, message: "the lease journal could not be written; nothing was opened" },
  DURATION_TOO_LONG: { code: -32007, message: "durationSeconds exceeds the app's configured duration" },
} as const;
export type HelperErrorName = keyof typeof HELPER_ERRORS;

export interface MethodSpec<P, R> {
  readonly params: JSONSchemaType<P>;
  readonly result: JSONSchemaType<R>;
  readonly errors: readonly HelperErrorName[];
}

export interface MethodTypes {
  hello: { params: HelloParams; result: HelloResult };
  open: { params: OpenParams; result: OpenResult };
  close: { params: CloseParams; result: CloseResult };
  list: { params: ListParams; result: ListResult };
  grant: { params: GrantParams; result: GrantResult };
  stats: { params: StatsParams; result: StatsResult };
}
export type MethodName = keyof MethodTypes;
export type ParamsOf<M extends MethodName> = MethodTypes[M]["params"];
export type ResultOf<M extends MethodName> = MethodTypes[M]["result"];
export type MethodTable = { readonly [M in MethodName]: MethodSpec<ParamsOf<M>, ResultOf<M>> };

export const METHODS: MethodTable = {
  hello: { params: emptyParams, result: helloResult, errors: [] },
  open: {
    params: openParams,
    result: openResult,
    errors: ["UNKNOWN_APP", "INVALID_ADDRESS", "STEP1_REQUIRED", "FIREWALL_FAILED", "STATE_FAILED", "OVERLOADED"],
  },
  close: {
    params: closeParams,
    result: closeResult,
    errors: ["UNKNOWN_APP", "INVALID_ADDRESS", "FIREWALL_FAILED", "STATE_FAILED", "OVERLOADED"],
  },
  list: { params: emptyParams as unknown as JSONSchemaType<ListParams>, result: listResult, errors: [] },
  grant: {
    params: grantParams,
    result: grantResult,
    errors: ["UNKNOWN_APP", "INVALID_ADDRESS", "DURATION_TOO_LONG", "FIREWALL_FAILED", "STATE_FAILED", "OVERLOADED"],
  },
  stats: { params: emptyParams as unknown as JSONSchemaType<StatsParams>, result: statsResult, errors: [] },
};

export function isMethodName(name: unknown): name is MethodName {
  return typeof name === "string" && Object.prototype.hasOwnProperty.call(METHODS, name);
}
