// LeaseSync against a real redis-server (own Unix socket, no persistence): gateways A and B, each
// with a fake admin socket that records grants and closes and answers like the helper.
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { parseConfig, type KnockportConfig } from "@knockport/config";
import { ClusterStore, connectStore, subscribe, type StoreConnection, type Subscription } from "@knockport/cluster-store";
import type { LeaseEvent } from "@knockport/protocol";
import { CATCH_UP_CONCURRENCY, LeaseSync, type AdminPort } from "../src/lease-sync.js";
import { startTestRedis, type TestRedis } from "../../../packages/cluster-store/test/redis-server.js";

const IP = "198.51.100.7";

class FakeAdmin {
  readonly calls: { method: string; params: Record<string, unknown>; at: number }[] = [];
  /** Each call answers after this long (the helper's transaction and journal write). */
  delayMs = 0;
  inFlight = 0;
  maxInFlight = 0;
  readonly call: AdminPort["call"] = (async (method: string, params: Record<string, unknown>) => {
    this.calls.push({ method, params, at: performance.now() });
    this.maxInFlight = Math.max(this.maxInFlight, (this.inFlight += 1));
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    this.inFlight -= 1;
    if (method === "grant") {
      const seconds = params.durationSeconds as number;
      return { app: params.app, ip: params.ip, step: 2, durationSeconds: seconds, expiresAt: new Date(Date.now() + seconds * 1000).toISOString(), refreshed: false };
    }
    if (method === "close") return { closed: 1 };
    throw new Error(`unexpected ${method}`);
  }) as AdminPort["call"];
  grants(): Record<string, unknown>[] {
    return this.calls.filter((c) => c.method === "grant").map((c) => c.params);
  }
}

let redis: TestRedis;
let raw: StoreConnection;
let prefix: string;
let n = 0;
const cleanups: (() => Promise<void> | void)[] = [];

function config(): KnockportConfig {
  return parseConfig(
    {
      global: { http_post_path: "/k-one", https_post_path: "/k-two", interface_ext: "eth0", cluster: { url: redis.url, key_prefix: prefix } },
      ssh: { port: 2222, access_key_http: ["ssh-http-key-0000"], access_key_https: ["ssh-https-key-0000"], duration: 600 },
    },
    "test.yaml",
  );
}

async function until(what: string, check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end && !check()) await new Promise((r) => setTimeout(r, 2));
  if (!check()) throw new Error(`timed out waiting for ${what}`);
}

/** One gateway's sync, subscribed like main.ts wires it. */
async function gateway(): Promise<{ sync: LeaseSync; admin: FakeAdmin; connection: StoreConnection }> {
  const c = config();
  const connection = connectStore(c.global.cluster!);
  const admin = new FakeAdmin();
  const sync = new LeaseSync(c, new ClusterStore(connection, prefix), admin, pino({ level: "silent" }));
  let live = false;
  const sub: Subscription = subscribe(c.global.cluster!, { onMessage: (m) => void sync.onMessage(m), onGarbage: () => undefined, onLive: () => (live = true), onError: () => undefined });
  cleanups.push(async () => {
    await sub.close();
    connection.disconnect();
  });
  await until("subscription", () => live && connection.status === "ready");
  sync.onSnapshot({ leases: [], hooks: [] });
  return { sync, admin, connection };
}

const knockEvent = (expiresAt: number, via: "knock" | "admin" = "knock"): LeaseEvent => ({
  event: "open",
  app: "ssh",
  ip: IP,
  step: 2,
  port: 2222,
  protocol: "tcp",
  expiresAt: new Date(expiresAt).toISOString(),
  durationSeconds: 600,
  via,
});

beforeAll(async () => {
  redis = await startTestRedis();
  prefix = "x";
  raw = connectStore(config().global.cluster!, { queueWhileDisconnected: true });
});
afterAll(async () => {
  raw.disconnect();
  await redis.stop();
});
beforeEach(() => {
  prefix = `s${(n += 1)}`;
});
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe("lease fan-out", () => {
  it("a knock at A opens at B with the same deadline (to the second, never later); A does not grant its own lease again", async () => {
    const a = await gateway();
    const b = await gateway();
    const deadline = Date.now() + 600_000;
    const t0 = performance.now();
    await a.sync.onLocalEvent(knockEvent(deadline));
    await until("B's grant", () => b.admin.grants().length === 1);
    const delayMs = b.admin.calls[0]!.at - t0;
    const g = b.admin.grants()[0]!;
    expect(g).toMatchObject({ app: "ssh", ip: IP });
    const seconds = g.durationSeconds as number;
    expect(seconds).toBeLessThanOrEqual(600);
    expect(seconds).toBeGreaterThanOrEqual(598);
    await new Promise((r) => setTimeout(r, 50));
    expect(a.admin.calls).toEqual([]);
    // B's own grant comes back from its watch as via admin: not published again
    await b.sync.onLocalEvent(knockEvent(Date.now() + seconds * 1000, "admin"));
    expect(b.sync.counts.published).toBe(0);
    expect(a.sync.counts.published).toBe(1);
    process.stdout.write(`fan-out (publish at A → grant call at B): ${delayMs.toFixed(2)} ms\n`);
  });

  it("a revoke at B closes at A; A's resulting close is not published back", async () => {
    const a = await gateway();
    const b = await gateway();
    await a.sync.onLocalEvent(knockEvent(Date.now() + 600_000));
    await until("B's grant", () => b.admin.grants().length === 1);
    await b.sync.onLocalEvent({ event: "close", app: "ssh", ip: IP, step: 2, port: 2222, protocol: "tcp", expiresAt: new Date().toISOString(), via: "admin" });
    await until("A's close", () => a.admin.calls.some((c) => c.method === "close"));
    expect(a.admin.calls.filter((c) => c.method === "close").map((c) => c.params)).toEqual([{ app: "ssh", ip: IP }]);
    await a.sync.onLocalEvent({ event: "close", app: "ssh", ip: IP, step: 2, port: 2222, protocol: "tcp", expiresAt: new Date().toISOString(), via: "admin" });
    expect(a.sync.counts.revokesPublished).toBe(0);
    expect(b.sync.counts.revokesPublished).toBe(1);
    expect(await raw.hlen(`${prefix}:leases`)).toBe(0);
  });

  it("catch-up at start: live leases are applied, ended ones and garbage are not; a deadline past the app's duration is clamped", async () => {
    const now = Date.now();
    await raw.hset(`${prefix}:leases`, `ssh ${IP}`, JSON.stringify({ deadline: now + 120_000 }));
    await raw.hset(`${prefix}:leases`, "ssh 198.51.100.8", JSON.stringify({ deadline: now - 1000 }));
    await raw.hset(`${prefix}:leases`, "ssh 198.51.100.9", JSON.stringify({ deadline: now + 10 * 365 * 86400_000 }));
    await raw.hset(`${prefix}:leases`, "other 198.51.100.10", JSON.stringify({ deadline: now + 60_000 }));
    await raw.hset(`${prefix}:leases`, "ssh 198.51.100.11", "{\"deadline\": \"soon\"}");
    await raw.hset(`${prefix}:leases`, "ssh 224.0.0.1", JSON.stringify({ deadline: now + 60_000 }));
    const b = await gateway();
    const result = await b.sync.catchUp();
    const grants = b.admin.grants().sort((x, y) => String(x.ip).localeCompare(String(y.ip)));
    expect(grants.map((g) => g.ip)).toEqual([IP, "198.51.100.9"]);
    expect(grants[0]!.durationSeconds).toBeGreaterThanOrEqual(118);
    expect(grants[0]!.durationSeconds).toBeLessThanOrEqual(120);
    expect(grants[1]!.durationSeconds).toBeLessThanOrEqual(600);
    expect(result).toMatchObject({ applied: 2, garbage: 2 });
    // a second catch-up (reconnect) grants nothing again
    await b.sync.catchUp();
    expect(b.admin.grants()).toHaveLength(2);
  });

  it("catch-up grants many leases at a time (the helper commits them in groups), never more than CATCH_UP_CONCURRENCY", async () => {
    const now = Date.now();
    const fields = Array.from({ length: 200 }, (_, i) => [`ssh 198.51.${100 + Math.floor(i / 250)}.${(i % 250) + 1}`, JSON.stringify({ deadline: now + 120_000 })]);
    await raw.hset(`${prefix}:leases`, Object.fromEntries(fields));
    const b = await gateway();
    b.admin.delayMs = 5;
    const t0 = performance.now();
    const result = await b.sync.catchUp();
    const ms = performance.now() - t0;
    expect(result).toMatchObject({ applied: 200, live: 200 });
    expect(new Set(b.admin.grants().map((g) => g.ip)).size).toBe(200);
    expect(b.admin.maxInFlight).toBeGreaterThan(1);
    expect(b.admin.maxInFlight).toBeLessThanOrEqual(CATCH_UP_CONCURRENCY);
    // one at a time, 200 grants of 5 ms would take at least a second
    expect(ms).toBeLessThan(900);
  });

  it("a store restarted empty (no persistence) gets this gateway's live knocked leases back at the next catch-up; a gateway joining after it applies them", async () => {
    const a = await gateway();
    const deadline = Date.now() + 600_000;
    await a.sync.onLocalEvent(knockEvent(deadline));
    await a.sync.onLocalEvent({ ...knockEvent(Date.now() + 600_000), ip: "198.51.100.8" });
    await a.sync.onLocalEvent({ event: "close", app: "ssh", ip: "198.51.100.8", step: 2, port: 2222, protocol: "tcp", expiresAt: new Date().toISOString(), via: "admin" });
    await redis.restart();
    expect(await raw.hlen(`${prefix}:leases`)).toBe(0);
    // what main.ts does once its subscription and its connection are live again
    await until("A's connection back", () => a.connection.status === "ready", 5000);
    await a.sync.catchUp();
    expect(await raw.hkeys(`${prefix}:leases`)).toEqual([`ssh ${IP}`]);
    const c = await gateway();
    await c.sync.catchUp();
    expect(c.admin.grants().map((g) => g.ip)).toEqual([IP]);
    // A does not grant its own lease to itself
    expect(a.admin.grants()).toEqual([]);
  });

  it("a knock closed here before its own message came back is not granted again by that echo", async () => {
    const a = await gateway();
    const b = await gateway();
    await a.sync.onLocalEvent(knockEvent(Date.now() + 600_000));
    await a.sync.onLocalEvent({ event: "close", app: "ssh", ip: IP, step: 2, port: 2222, protocol: "tcp", expiresAt: new Date().toISOString(), via: "admin" });
    await until("B's close", () => b.admin.calls.some((c) => c.method === "close") || b.sync.counts.granted === 1, 3000);
    await new Promise((r) => setTimeout(r, 100));
    expect(a.admin.grants()).toEqual([]);
  });

  it("garbage on the channel opens nothing", async () => {
    const b = await gateway();
    for (const m of [
      { kind: "lease", app: "ssh", ip: "0.0.0.0", deadline: Date.now() + 60_000 },
      { kind: "lease", app: "ssh", ip: IP, deadline: "tomorrow" },
      { kind: "lease", app: "ssh", ip: IP, deadline: Date.now() + 60_000, durationSeconds: 99999 },
      { kind: "grant", app: "ssh", ip: IP },
    ]) await raw.publish(`${prefix}:events`, JSON.stringify(m));
    await raw.publish(`${prefix}:events`, JSON.stringify({ kind: "lease", app: "ssh", ip: "198.51.100.20", deadline: Date.now() + 60_000 }));
    await until("the valid one", () => b.admin.grants().length > 0);
    expect(b.admin.grants().map((g) => g.ip)).toEqual(["198.51.100.20"]);
  });
});
