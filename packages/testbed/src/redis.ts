/**
 * A throw-away redis-server on a Unix socket of its own (no TCP, no persistence): the store of the
 * cluster unit tests, the cluster e2e test and `pnpm bench --only cluster`. A Unix socket rather than
 * a port, so nothing else on the machine can reach it and no two runs fight over a port.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestRedis {
  /** The socket's path, in a temporary directory of its own that `stop` removes. */
  readonly socket: string;
  /** `unix:<socket>`, as global.cluster.url takes it. */
  readonly url: string;
  /** Stops it and removes its directory. */
  stop(): Promise<void>;
  /** Stops it and starts a fresh one on the same socket (a restart loses everything: no persistence). */
  restart(): Promise<void>;
  /** Stops it, keeping the socket path for `up`. */
  down(): Promise<void>;
  up(): Promise<void>;
}

/** Resolves once something accepts a connection on the Unix socket `path`; bounded by `timeoutMs`. */
async function waitForSocket(path: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(path, () => {
        s.destroy();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`redis-server did not listen on ${path} within ${timeoutMs} ms`);
}

/**
 * Starts one and resolves once it listens. The socket is for this user only (700) unless `extraArgs`
 * says otherwise (a later `--unixsocketperm` wins), e.g. for daemons that run as another user.
 */
export async function startTestRedis(extraArgs: string[] = []): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), "kp-redis-"));
  const socket = join(dir, "redis.sock");
  let proc: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    proc = spawn(
      "redis-server",
      ["--port", "0", "--unixsocket", socket, "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir", dir, ...extraArgs],
      { stdio: "ignore" },
    );
    await waitForSocket(socket, 5000);
  };
  const stop = async (): Promise<void> => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once("exit", () => resolve());
      p.kill("SIGKILL");
    });
    rmSync(socket, { force: true });
  };
  await start();
  return {
    socket,
    url: `unix:${socket}`,
    stop: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    restart: async () => {
      await stop();
      await start();
    },
    down: stop,
    up: start,
  };
}
