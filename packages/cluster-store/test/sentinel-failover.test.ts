// A Sentinel failover for real: a master, its replica and a Sentinel (redis-server --sentinel) on
// loopback ports; the master is killed, the Sentinel promotes the replica, and the same clients (the
// server's command connection, the sync's subscription) carry on against the new master.
import { spawnSync, type ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { IpAddress } from "@knockport/protocol";
import { ClusterStore, connectStore, subscribe, type ClusterMessage } from "../src/index.js";
import { SENTINEL_MASTER, clusterConfig, firstAnswer, freePort, loopbackRedis, until, type LoopbackRedis } from "./redis-server.js";

/** redis-cli's answer (the store's own word, not the code under test). */
function cli(port: number, ...args: string[]): string {
  return spawnSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args], { encoding: "utf8", timeout: 5000 }).stdout.trim();
}

let redis: LoopbackRedis;
let master: ChildProcess;
let masterPort: number;
let replicaPort: number;
let sentinelPort: number;

beforeAll(async () => {
  redis = loopbackRedis();
  [masterPort, replicaPort, sentinelPort] = [await freePort(), await freePort(), await freePort()];
  master = redis.server(masterPort);
  redis.server(replicaPort, "--replicaof", "127.0.0.1", String(masterPort));
  await until("the replica in sync", () => /master_link_status:up/.test(cli(replicaPort, "INFO", "replication")), 10_000);
  redis.sentinel(sentinelPort, masterPort, `sentinel down-after-milliseconds ${SENTINEL_MASTER} 500`, `sentinel failover-timeout ${SENTINEL_MASTER} 5000`);
  await until("the Sentinel to know the replica", () => /slaves=1/.test(cli(sentinelPort, "INFO", "sentinel")), 10_000);
}, 30_000);
afterAll(() => redis.stop());

describe("a Sentinel failover", () => {
  it("commands fail at once while there is no master, then work on the promoted replica; spent tokens and leases survive; the subscription follows", async () => {
    const config = clusterConfig(`redis-sentinel://127.0.0.1:${sentinelPort}/${SENTINEL_MASTER}`, "f");
    // as the server and the sync connect: commands fail rather than queue; the subscription queues
    const conn = connectStore(config);
    const messages: ClusterMessage[] = [];
    let lives = 0;
    const sub = subscribe(config, { onMessage: (m) => messages.push(m), onGarbage: () => undefined, onLive: () => (lives += 1), onError: () => undefined });
    try {
      const store = new ClusterStore(conn, "f");
      await until("the client on the master", () => conn.status === "ready" && lives === 1, 10_000);
      expect(await store.spendToken("id", 1, 60_000, "o")).toBe(true);
      await store.putLease({ app: "ssh", ip: "198.51.100.7" as IpAddress, deadline: Date.now() + 60_000 });
      // replication is asynchronous: the test waits for the replica to hold both writes before the kill
      expect(Number(cli(masterPort, "WAIT", "1", "2000"))).toBe(1);

      master.kill("SIGKILL");
      const t0 = Date.now();
      const during = await store.spendToken("id", 2, 60_000, "o").then(
        () => "answered",
        () => "failed",
      );
      expect(during).toBe("failed");
      expect(Date.now() - t0).toBeLessThan(1500);

      await until("the Sentinel to promote the replica", () => cli(sentinelPort, "SENTINEL", "get-master-addr-by-name", SENTINEL_MASTER).includes(String(replicaPort)), 15_000);
      expect(cli(replicaPort, "ROLE").split("\n")[0]).toBe("master");
      const again = await firstAnswer("the client on the new master", () => store.spendToken("id", 1, 60_000, "o2"), 15_000);
      // the token spent before the failover is still spent: no replay through a failover
      expect(again).toBe(false);
      expect(await store.spendToken("id", 3, 60_000, "o")).toBe(true);
      expect((await store.liveLeases(Date.now())).leases.map((l) => l.ip)).toEqual(["198.51.100.7"]);
      await until("the subscription back", () => lives >= 2, 15_000);
      await store.putLease({ app: "ssh", ip: "198.51.100.8" as IpAddress, deadline: Date.now() + 60_000 });
      await until("the message through the new master", () => messages.some((m) => m.kind === "lease" && m.ip === "198.51.100.8"), 5000);
      expect(cli(replicaPort, "HEXISTS", "f:leases", "ssh 198.51.100.8")).toBe("1");
    } finally {
      await sub.close();
      conn.disconnect();
    }
  }, 60_000);
});
