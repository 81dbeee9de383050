import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterFromRaw, type ClusterConfig } from "@knockport/config";
import type { IpAddress } from "@knockport/protocol";
import { ClusterStore, connectStore, subscribe, type ClusterMessage, type StoreConnection } from "../src/index.js";
import { startTestRedis, type TestRedis } from "./redis-server.js";

function configFor(url: string, prefix = "kp-test"): ClusterConfig {
  const problems: string[] = [];
  const c = clusterFromRaw({ url, key_prefix: prefix }, (p) => p, (m) => problems.push(m));
  if (!c) throw new Error(problems.join("; "));
  return c;
}

const ip = "192.0.2.7" as IpAddress;

describe("ClusterStore against a real redis-server", () => {
  let redis: TestRedis;
  let conn: StoreConnection;
  let raw: StoreConnection;
  let store: ClusterStore;

  beforeAll(async () => {
    redis = await startTestRedis();
    conn = connectStore(configFor(redis.url));
    raw = connectStore(configFor(redis.url), { queueWhileDisconnected: true });
    store = new ClusterStore(conn, "kp-test");
    await raw.ping();
    await untilReady(conn);
  });
  afterAll(async () => {
    conn.disconnect();
    raw.disconnect();
    await redis.stop();
  });

  it("a TOTP token is spent once cluster-wide; only its owner gives it back", async () => {
    expect(await store.spendToken("abc", 100, 60_000, "gw-a:1")).toBe(true);
    expect(await store.spendToken("abc", 100, 60_000, "gw-b:1")).toBe(false);
    await store.releaseToken("abc", 100, "gw-b:1");
    expect(await store.spendToken("abc", 100, 60_000, "gw-b:2")).toBe(false);
    await store.releaseToken("abc", 100, "gw-a:1");
    expect(await store.spendToken("abc", 100, 60_000, "gw-b:3")).toBe(true);
    const ttl = await raw.pttl("kp-test:totp:abc:100");
    expect(ttl).toBeGreaterThan(59_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it("a step-1 window round-trips; a record for another address or garbage is not one", async () => {
    const now = Date.now();
    await store.putStep1({ app: "ssh", ip, keyIndex: 2, deadline: now + 5000 }, now);
    expect(await store.getStep1("ssh", ip)).toEqual({ app: "ssh", ip, keyIndex: 2, deadline: now + 5000 });
    const pttl = await raw.pttl(`kp-test:step1:ssh:${ip}`);
    expect(pttl).toBeGreaterThan(4000);
    await raw.set("kp-test:step1:ssh:192.0.2.8", JSON.stringify({ app: "ssh", ip: "192.0.2.7", keyIndex: 0, deadline: now + 5000 }));
    expect(await store.getStep1("ssh", "192.0.2.8" as IpAddress)).toBeUndefined();
    for (const garbage of ["{", "null", JSON.stringify({ app: "ssh", ip: "192.0.2.9", keyIndex: -1, deadline: now + 5000 }), JSON.stringify({ app: "ssh", ip: "192.0.2.9", keyIndex: 0, deadline: now, extra: 1 }), "x".repeat(2000)]) {
      await raw.set("kp-test:step1:ssh:192.0.2.9", garbage);
      expect(await store.getStep1("ssh", "192.0.2.9" as IpAddress)).toBeUndefined();
    }
  });

  it("liveLeases returns live leases only and deletes ended and garbage entries", async () => {
    const now = Date.now();
    await store.putLease({ app: "ssh", ip, deadline: now + 60_000 });
    await store.putLease({ app: "ssh", ip: "192.0.2.10" as IpAddress, deadline: now - 1 });
    await raw.hset("kp-test:leases", "ssh 192.0.2.11", "{not json");
    await raw.hset("kp-test:leases", "ssh 10.0.0.1 extra", JSON.stringify({ deadline: now + 60_000 }));
    await raw.hset("kp-test:leases", "ssh 192.0.2.12", JSON.stringify({ deadline: now + 60_000, app: "other" }));
    const { leases, garbage } = await store.liveLeases(now);
    expect(leases).toEqual([{ app: "ssh", ip, deadline: now + 60_000 }]);
    expect(garbage).toBe(3);
    expect((await raw.hkeys("kp-test:leases")).sort()).toEqual([`ssh ${ip}`]);
    await store.removeLease("ssh", ip);
    expect(await raw.hlen("kp-test:leases")).toBe(0);
  });

  it("the subscription delivers schema-checked messages and reports garbage", async () => {
    const got: ClusterMessage[] = [];
    let garbage = 0;
    let live = 0;
    const sub = subscribe(configFor(redis.url), { onMessage: (m) => got.push(m), onGarbage: () => (garbage += 1), onLive: () => (live += 1), onError: () => undefined });
    try {
      // bounded wait until SUBSCRIBE is in place
      for (let i = 0; i < 100 && Number((await raw.pubsub("NUMSUB", "kp-test:events"))[1]) < 1; i += 1) await new Promise((r) => setTimeout(r, 20));
      await store.putLease({ app: "ssh", ip, deadline: 1_900_000_000_000 });
      await raw.publish("kp-test:events", JSON.stringify({ kind: "lease", app: "ssh", ip, deadline: 1, port: 22 }));
      await raw.publish("kp-test:events", JSON.stringify({ kind: "lease", app: "../x", ip, deadline: 1 }));
      await raw.publish("kp-test:events", JSON.stringify({ kind: "lease", app: "ssh", ip: "224.0.0.1", deadline: 1 }));
      await store.removeLease("ssh", ip);
      for (let i = 0; i < 100 && got.length + garbage < 5; i += 1) await new Promise((r) => setTimeout(r, 20));
      expect(got).toEqual([
        { kind: "lease", app: "ssh", ip, deadline: 1_900_000_000_000 },
        { kind: "revoke", app: "ssh", ip },
      ]);
      expect(garbage).toBe(3);
      expect(live).toBeGreaterThanOrEqual(1);
    } finally {
      await sub.close();
    }
  });

  it("a store that is down fails the call at once (no queueing); after a restart the same client works again", async () => {
    await redis.stop();
    const t0 = Date.now();
    await expect(store.spendToken("def", 1, 1000, "o")).rejects.toThrow();
    await expect(store.putLease({ app: "ssh", ip: "192.0.2.11" as IpAddress, deadline: Date.now() + 60_000 })).rejects.toThrow();
    await expect(store.removeLease("ssh", "192.0.2.11" as IpAddress)).rejects.toThrow();
    expect(Date.now() - t0).toBeLessThan(1500);
    redis = await startTestRedis();
    conn.disconnect();
    raw.disconnect();
    conn = connectStore(configFor(redis.url));
    raw = connectStore(configFor(redis.url), { queueWhileDisconnected: true });
    store = new ClusterStore(conn, "kp-test");
    await raw.ping();
    await untilReady(conn);
    await store.spendToken("ghi", 1, 60_000, "o");
    await redis.restart();
    // the restarted store lost everything (no persistence); the client reconnects on its own
    let answer: boolean | undefined;
    for (let i = 0; i < 100 && answer === undefined; i += 1) {
      answer = await store.spendToken("ghi", 1, 60_000, "o").catch(() => undefined);
      if (answer === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    expect(answer).toBe(true);
  });
});

async function untilReady(c: StoreConnection): Promise<void> {
  for (let i = 0; i < 100 && c.status !== "ready"; i += 1) await new Promise((r) => setTimeout(r, 20));
  expect(c.status).toBe("ready");
}
