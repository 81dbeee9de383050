// A redis-cluster:// url against a real three-master Redis Cluster on loopback ports (no persistence).
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { IpAddress } from "@knockport/protocol";
import { ClusterStore, connectStore, subscribe } from "../src/index.js";
import { clusterConfig, firstAnswer, freePort, loopbackRedis, type LoopbackRedis } from "./redis-server.js";

let redis: LoopbackRedis;
const ports: number[] = [];

beforeAll(async () => {
  redis = loopbackRedis();
  for (let i = 0; i < 3; i += 1) {
    const port = await freePort();
    ports.push(port);
    redis.clusterNode(port);
  }
  await new Promise((r) => setTimeout(r, 300));
  const create = spawnSync("redis-cli", ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-yes"], { encoding: "utf8", timeout: 30_000 });
  if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
}, 45_000);
afterAll(() => redis.stop());

describe("a redis-cluster:// url", () => {
  it("spends tokens, keeps leases and delivers channel messages across the cluster's nodes", async () => {
    const config = clusterConfig(`redis-cluster://${ports.map((p) => `127.0.0.1:${p}`).join(",")}`, "c");
    const conn = connectStore(config, { queueWhileDisconnected: true });
    const got: string[] = [];
    let live = false;
    const sub = subscribe(config, { onMessage: (m) => got.push(m.kind), onGarbage: () => undefined, onLive: () => (live = true), onError: () => undefined });
    try {
      const store = new ClusterStore(conn, "c");
      // bounded: the cluster needs a moment until every slot is served
      expect(await firstAnswer("the cluster to serve the token's slot", () => store.spendToken("id", 1, 10_000, "o"), 10_000)).toBe(true);
      // keys on other slots, hence other nodes
      for (let c = 2; c < 12; c += 1) expect(await store.spendToken("id", c, 10_000, "o")).toBe(true);
      expect(await store.spendToken("id", 1, 10_000, "o2")).toBe(false);
      for (let i = 0; i < 100 && !live; i += 1) await new Promise((r) => setTimeout(r, 20));
      await store.putLease({ app: "ssh", ip: "192.0.2.7" as IpAddress, deadline: Date.now() + 60_000 });
      expect((await store.liveLeases(Date.now())).leases).toHaveLength(1);
      for (let i = 0; i < 100 && got.length === 0; i += 1) await new Promise((r) => setTimeout(r, 20));
      expect(got).toEqual(["lease"]);
    } finally {
      await sub.close();
      conn.disconnect();
    }
  });
});
