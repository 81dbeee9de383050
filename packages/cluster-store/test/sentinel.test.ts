// A Sentinel url against a real redis-server and a real Sentinel (redis-server --sentinel) on loopback ports.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterFromRaw } from "@knockport/config";
import { ClusterStore, connectStore } from "../src/index.js";

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
let sentinelPort: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kp-sentinel-"));
  const masterPort = await freePort();
  sentinelPort = await freePort();
  children.push(spawn("redis-server", ["--port", String(masterPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], { stdio: "ignore" }));
  const conf = join(dir, "sentinel.conf");
  writeFileSync(conf, `port ${sentinelPort}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor kpmaster 127.0.0.1 ${masterPort} 1\n`);
  children.push(spawn("redis-server", [conf, "--sentinel"], { stdio: "ignore" }));
});
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

describe("a redis-sentinel:// url", () => {
  it("finds the master through the Sentinel and spends a token there", async () => {
    const config = clusterFromRaw({ url: `redis-sentinel://127.0.0.1:${sentinelPort}/kpmaster`, key_prefix: "s" }, (p) => p, (m) => {
      throw new Error(m);
    })!;
    const conn = connectStore(config, { queueWhileDisconnected: true });
    try {
      const store = new ClusterStore(conn, "s");
      let first: boolean | undefined;
      // bounded: the Sentinel needs a moment before it answers for the master
      for (let i = 0; i < 100 && first === undefined; i += 1) {
        first = await store.spendToken("id", 1, 10_000, "o").catch(() => undefined);
        if (first === undefined) await new Promise((r) => setTimeout(r, 50));
      }
      expect(first).toBe(true);
      expect(await store.spendToken("id", 1, 10_000, "o2")).toBe(false);
    } finally {
      conn.disconnect();
    }
  });
});
