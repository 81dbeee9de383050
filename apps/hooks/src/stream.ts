import { Ajv } from "ajv";
import { checkHookArgv } from "@knockport/config";
import { LEASE_EVENT_METHOD, parseIpAddress, type IpAddress, type LeaseEvent as ProtocolLeaseEvent, type WatchResult } from "@knockport/protocol";
import { RESULTS, leaseEvent } from "@knockport/protocol/client";
import type { HookApp, LeaseEvent, LiveLease } from "./types.js";

/** What `watch` answers, as far as hooks need it. */
export interface WatchSnapshot {
  readonly apps: readonly HookApp[];
  readonly leases: readonly LiveLease[];
}

type WireApp = WatchResult["hooks"][number];

// The method table's own schemas: what the helper promises is exactly what is accepted here.
const ajv = new Ajv({ allErrors: false });
const validSnapshot = ajv.compile<WatchResult>(RESULTS.watch);
const validEvent = ajv.compile<ProtocolLeaseEvent>(leaseEvent);

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
  if (method !== LEASE_EVENT_METHOD || !validEvent(params)) return undefined;
  const ip: IpAddress | undefined = parseIpAddress(params.ip);
  const expiresAtMs = epochMs(params.expiresAt);
  if (ip === undefined || expiresAtMs === undefined) return undefined;
  if (params.step !== 2) return null;
  const reason = params.event === "expiry" ? "expiry" : params.event === "close" ? "revoke" : (params.via ?? "knock");
  if (params.event === "close" || params.event === "expiry") return { kind: "close", reason, app: params.app, ip, port: params.port, protocol: params.protocol };
  return { kind: params.event, reason, app: params.app, ip, expiresAtMs, durationSeconds: params.durationSeconds ?? Math.max(1, Math.ceil((expiresAtMs - Date.now()) / 1000)), port: params.port, protocol: params.protocol };
}
