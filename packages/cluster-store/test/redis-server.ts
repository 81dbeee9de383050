/**
 * Throw-away redis-servers for the tests (no persistence): one on a Unix socket of its own (the
 * testbed's, which the bench and the e2e test share), and Sentinel or Cluster setups on loopback ports
 * (Sentinel and Cluster hand out host:port addresses, so those need TCP).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clusterFromRaw, type ClusterConfig } from "@knockport/config";

export { startTestRedis, type TestRedis } from "../../testbed/src/redis.js";

/** The master name every test Sentinel monitors. */
export const SENTINEL_MASTER = "kpmaster";

/** A port that was free on 127.0.0.1 a moment ago (the OS picked it; closed again for redis-server to take). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** redis-servers and Sentinels on 127.0.0.1, their files in one temporary directory. */
export interface LoopbackRedis {
  readonly dir: string;
  /** A redis-server on `port`; `extra` are more arguments (`--replicaof` ...). */
  server(port: number, ...extra: string[]): ChildProcess;
  /** A redis-server listening as a Cluster node on `port`. */
  clusterNode(port: number): ChildProcess;
  /** A Sentinel on `port` monitoring the master at `masterPort` (quorum 1); `conf` are more sentinel.conf lines. */
  sentinel(port: number, masterPort: number, ...conf: string[]): ChildProcess;
  /** Kills every process started here and removes the directory. */
  stop(): void;
}

export function loopbackRedis(): LoopbackRedis {
  const dir = mkdtempSync(join(tmpdir(), "kp-loopback-redis-"));
  const children: ChildProcess[] = [];
  const started = (child: ChildProcess): ChildProcess => {
    children.push(child);
    return child;
  };
  // every file named after the port: the servers share the directory (a replica's full sync writes the rdb)
  const server = (port: number, ...extra: string[]): ChildProcess =>
    started(spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--dbfilename", `${port}.rdb`, ...extra], { stdio: "ignore" }));
  return {
    dir,
    server,
    clusterNode: (port) => server(port, "--cluster-enabled", "yes", "--cluster-config-file", join(dir, `${port}-nodes.conf`)),
    sentinel: (port, masterPort, ...conf) => {
      const file = join(dir, `sentinel-${port}.conf`);
      writeFileSync(file, [`port ${port}`, "bind 127.0.0.1", `dir ${dir}`, `sentinel monitor ${SENTINEL_MASTER} 127.0.0.1 ${masterPort} 1`, ...conf, ""].join("\n"));
      return started(spawn("redis-server", [file, "--sentinel"], { stdio: "ignore" }));
    },
    stop: () => {
      for (const c of children) c.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** global.cluster for `url` as the config loader makes it; a rejected url fails the test at once. */
export function clusterConfig(url: string, keyPrefix: string): ClusterConfig {
  return clusterFromRaw({ url, key_prefix: keyPrefix }, (p) => p, (m) => {
    throw new Error(m);
  })!;
}

/** Checks every 50 ms until `check` holds; throws after `ms`, naming `what`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The first answer of `call`, tried every 50 ms while it throws (a store just started, or failing over, needs a moment). */
export async function firstAnswer<T>(what: string, call: () => Promise<T>, ms: number): Promise<T> {
  let answer: { value: T } | undefined;
  await until(
    what,
    async () => {
      answer = await call().then(
        (value) => ({ value }),
        () => undefined,
      );
      return answer !== undefined;
    },
    ms,
  );
  return answer!.value;
}
