// A redis-cluster:// url against a real three-master Redis Cluster on loopback ports (no persistence).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterFromRaw } from "@knockport/config";
import type { IpAddress } from "@knockport/protocol";
import { ClusterStore, connectStore, subscribe } from "../src/index.js";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const children: ChildProcess[] = [];
let dir: string;
const ports: number[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kp-rcluster-"));
  for (let i = 0; i < 3; i += 1) {
    const port = await freePort();
    ports.push(port);
    const d = join(dir, String(port));
    mkdirSync(d);
    children.push(
      spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes", "--cluster-config-file", join(d, "nodes.conf"), "--save", "", "--appendonly", "no", "--dir", d], { stdio: "ignore" }),
    );
  }
  await new Promise((r) => setTimeout(r, 300));
  const create = spawnSync("redis-cli", ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-yes"], { encoding: "utf8", timeout: 30_000 });
  if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
}, 45_000);
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

describe("a redis-cluster:// url", () => {
  it("spends tokens, keeps leases and delivers channel messages across the cluster's nodes", async () => {
    const config = clusterFromRaw({ url: `redis-cluster://${ports.map((p) => `127.0.0.1:${p}`).join(",")}`, key_prefix: "c" }, (p) => p, (m) => {
      throw new Error(m);
    })!;
    const conn = connectStore(config, { queueWhileDisconnected: true });
    const got: string[] = [];
    let live = false;
    const sub = subscribe(config, { onMessage: (m) => got.push(m.kind), onGarbage: () => undefined, onLive: () => (live = true), onError: () => undefined });
    try {
      const store = new ClusterStore(conn, "c");
      let first: boolean | undefined;
      // bounded: the cluster needs a moment until every slot is served
      for (let i = 0; i < 100 && first === undefined; i += 1) {
        first = await store.spendToken("id", 1, 10_000, "o").catch(() => undefined);
        if (first === undefined) await new Promise((r) => setTimeout(r, 50));
      }
      expect(first).toBe(true);
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
