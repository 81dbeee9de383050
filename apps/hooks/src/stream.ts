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
  name: string;
  port: number;
  protocol: "tcp" | "udp";
  onOpen?: string[];
  onClose?: string[];
}
interface WireLease {
  app: string;
  ip: string;
  step: number;
  expiresAtMs: number;
  durationSeconds: number;
}
interface WireEvent {
  kind: "open" | "refresh" | "close";
  reason: string;
  app: string;
  ip: string;
  step: number;
  expiresAtMs?: number;
  durationSeconds?: number;
}

const name = { type: "string", minLength: 1, maxLength: 256 } as const;
const argv = { type: "array", items: { type: "string", maxLength: 4096 }, minItems: 1, maxItems: 64, nullable: true } as const;
const appSchema: JSONSchemaType<WireApp> = {
  type: "object",
  additionalProperties: false,
  required: ["name", "port", "protocol"],
  properties: { name, port: { type: "integer", minimum: 1, maximum: 65535 }, protocol: { type: "string", enum: ["tcp", "udp"] }, onOpen: argv, onClose: argv },
};
const leaseSchema: JSONSchemaType<WireLease> = {
  type: "object",
  additionalProperties: false,
  required: ["app", "ip", "step", "expiresAtMs", "durationSeconds"],
  properties: {
    app: name,
    ip: { type: "string", maxLength: 64 },
    step: { type: "integer", enum: [1, 2] },
    expiresAtMs: { type: "number" },
    durationSeconds: { type: "integer", minimum: 0 },
  },
};
const snapshotSchema: JSONSchemaType<{ apps: WireApp[]; leases: WireLease[] }> = {
  type: "object",
  additionalProperties: true,
  required: ["apps", "leases"],
  properties: { apps: { type: "array", items: appSchema, maxItems: 10_000 }, leases: { type: "array", items: leaseSchema } },
};
const eventSchema: JSONSchemaType<WireEvent> = {
  type: "object",
  additionalProperties: false,
  required: ["kind", "reason", "app", "ip", "step"],
  properties: {
    kind: { type: "string", enum: ["open", "refresh", "close"] },
    reason: { type: "string", maxLength: 64 },
    app: name,
    ip: { type: "string", maxLength: 64 },
    step: { type: "integer", enum: [1, 2] },
    expiresAtMs: { type: "number", nullable: true },
    durationSeconds: { type: "integer", minimum: 0, nullable: true },
  },
};

const ajv = new Ajv({ allErrors: false });
const validSnapshot = ajv.compile(snapshotSchema);
const validEvent = ajv.compile(eventSchema);

function toApp(w: WireApp): HookApp | undefined {
  for (const a of [w.onOpen, w.onClose]) if (a !== undefined && checkHookArgv(a) !== undefined) return undefined;
  return { name: w.name, port: w.port, protocol: w.protocol, onOpen: w.onOpen, onClose: w.onClose };
}

/** A watch answer, checked: undefined when anything in it is malformed (the stream is then dropped). */
export function parseSnapshot(value: unknown): WatchSnapshot | undefined {
  if (!validSnapshot(value)) return undefined;
  const apps: HookApp[] = [];
  for (const w of value.apps) {
    const app = toApp(w);
    if (app === undefined) return undefined;
    apps.push(app);
  }
  const leases: LiveLease[] = [];
  for (const l of value.leases) {
    const ip = parseIpAddress(l.ip);
    if (ip === undefined) return undefined;
    if (l.step === 2) leases.push({ app: l.app, ip, expiresAtMs: l.expiresAtMs, durationSeconds: l.durationSeconds });
  }
  return { apps, leases };
}

/** A lease notification, checked; step-1 (HTTPS port) leases have no hooks and come back as null. */
export function parseEvent(method: string, params: unknown): LeaseEvent | null | undefined {
  if (method !== "lease" || !validEvent(params)) return undefined;
  const ip: IpAddress | undefined = parseIpAddress(params.ip);
  if (ip === undefined) return undefined;
  if (params.step !== 2) return null;
  if (params.kind === "close") return { kind: "close", reason: params.reason, app: params.app, ip };
  if (params.expiresAtMs === undefined || params.durationSeconds === undefined) return undefined;
  return { kind: params.kind, reason: params.reason, app: params.app, ip, expiresAtMs: params.expiresAtMs, durationSeconds: params.durationSeconds };
}
