// A Sentinel url against a real redis-server and a real Sentinel (redis-server --sentinel) on loopback ports.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClusterStore, connectStore } from "../src/index.js";
import { SENTINEL_MASTER, clusterConfig, firstAnswer, freePort, loopbackRedis, type LoopbackRedis } from "./redis-server.js";

let redis: LoopbackRedis;
let sentinelPort: number;

beforeAll(async () => {
  redis = loopbackRedis();
  const masterPort = await freePort();
  sentinelPort = await freePort();
  redis.server(masterPort);
  redis.sentinel(sentinelPort, masterPort);
});
afterAll(() => redis.stop());

describe("a redis-sentinel:// url", () => {
  it("finds the master through the Sentinel and spends a token there", async () => {
    const config = clusterConfig(`redis-sentinel://127.0.0.1:${sentinelPort}/${SENTINEL_MASTER}`, "s");
    const conn = connectStore(config, { queueWhileDisconnected: true });
    try {
      const store = new ClusterStore(conn, "s");
      // bounded: the Sentinel needs a moment before it answers for the master
      expect(await firstAnswer("the Sentinel to answer for the master", () => store.spendToken("id", 1, 10_000, "o"), 10_000)).toBe(true);
      expect(await store.spendToken("id", 1, 10_000, "o2")).toBe(false);
    } finally {
      conn.disconnect();
    }
  });
});
