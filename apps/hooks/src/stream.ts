import { Ajv, type JSONSchemaType } from "ajv";
import { checkHookArgv } from "@knockport/config";
import { parseIpAddress, type IpAddress } from "@knockport/protocol";
import type { HookApp, LeaseEvent, LiveLease } from "./types.js";

/** What `watch` answers, as far as hooks need it. */
export interface WatchSnapshot {
  readonly apps: readonly HookApp[];
  readonly leases: readonly LiveLease[];
}

interface WireApp {
  app: string;
  onOpen?: string[];
  onClose?: string[];
}
interface WireLease {
  app: string;
  ip: string;
  step: number;
  port: number;
  protocol: "tcp" | "udp";
  expiresAt: string;
}
interface WireEvent extends WireLease {
  event: "open" | "refresh" | "close" | "expiry";
  durationSeconds?: number;
  via?: "knock" | "admin";
}

const name = { type: "string", minLength: 1, maxLength: 256 } as const;
const argv = { type: "array", items: { type: "string", maxLength: 4096 }, minItems: 1, maxItems: 64, nullable: true } as const;
const leaseProps = {
  app: name,
  ip: { type: "string", maxLength: 64 },
  step: { type: "integer", enum: [1, 2] },
  port: { type: "integer", minimum: 1, maximum: 65535 },
  protocol: { type: "string", enum: ["tcp", "udp"] },
  expiresAt: { type: "string", maxLength: 40 },
} as const;
const appSchema: JSONSchemaType<WireApp> = {
  type: "object",
  additionalProperties: false,
  required: ["app"],
  properties: { app: name, onOpen: argv, onClose: argv },
};
const leaseSchema: JSONSchemaType<WireLease> = {
  type: "object",
  additionalProperties: false,
  required: ["app", "ip", "step", "port", "protocol", "expiresAt"],
  properties: leaseProps,
};
const snapshotSchema: JSONSchemaType<{ hooks: WireApp[]; leases: WireLease[] }> = {
  type: "object",
  additionalProperties: false,
  required: ["hooks", "leases"],
  properties: { hooks: { type: "array", items: appSchema, maxItems: 10_000 }, leases: { type: "array", items: leaseSchema } },
};
const eventSchema: JSONSchemaType<WireEvent> = {
  type: "object",
  additionalProperties: false,
  required: ["event", "app", "ip", "step", "port", "protocol", "expiresAt"],
  properties: {
    ...leaseProps,
    event: { type: "string", enum: ["open", "refresh", "close", "expiry"] },
    durationSeconds: { type: "integer", minimum: 1, nullable: true },
    via: { type: "string", enum: ["knock", "admin"], nullable: true },
  },
};

const ajv = new Ajv({ allErrors: false });
const validSnapshot = ajv.compile(snapshotSchema);
const validEvent = ajv.compile(eventSchema);

function toApps(hooks: readonly WireApp[]): HookApp[] | undefined {
  const apps: HookApp[] = [];
  for (const w of hooks) {
    for (const a of [w.onOpen, w.onClose]) if (a !== undefined && checkHookArgv(a) !== undefined) return undefined;
    apps.push({ name: w.app, onOpen: w.onOpen, onClose: w.onClose });
  }
  return apps;
}

function epochMs(iso: string): number | undefined {
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms : undefined;
}

/** A watch answer, checked: undefined when anything in it is malformed (the stream is then dropped). */
export function parseSnapshot(value: unknown, now = Date.now()): WatchSnapshot | undefined {
  if (!validSnapshot(value)) return undefined;
  const apps = toApps(value.hooks);
  if (apps === undefined) return undefined;
  const leases: LiveLease[] = [];
  for (const l of value.leases) {
    const ip = parseIpAddress(l.ip);
    const expiresAtMs = epochMs(l.expiresAt);
    if (ip === undefined || expiresAtMs === undefined) return undefined;
    const durationSeconds = Math.max(1, Math.ceil((expiresAtMs - now) / 1000));
    if (l.step === 2) leases.push({ app: l.app, ip, expiresAtMs, durationSeconds, port: l.port, protocol: l.protocol });
  }
  return { apps, leases };
}

/** A lease notification, checked; step-1 (HTTPS port) leases have no hooks and come back as null. */
export function parseEvent(method: string, params: unknown): LeaseEvent | null | undefined {
  if (method !== "lease" || !validEvent(params)) return undefined;
  const ip: IpAddress | undefined = parseIpAddress(params.ip);
  const expiresAtMs = epochMs(params.expiresAt);
  if (ip === undefined || expiresAtMs === undefined) return undefined;
  if (params.step !== 2) return null;
  const reason = params.event === "expiry" ? "expiry" : params.event === "close" ? "revoke" : (params.via ?? "knock");
  if (params.event === "close" || params.event === "expiry") return { kind: "close", reason, app: params.app, ip, port: params.port, protocol: params.protocol };
  return { kind: params.event, reason, app: params.app, ip, expiresAtMs, durationSeconds: params.durationSeconds ?? Math.max(1, Math.ceil((expiresAtMs - Date.now()) / 1000)), port: params.port, protocol: params.protocol };
}
