// The helper's sockets under a hostile or careless peer, on a real Unix socket: a client that sends
// requests and never reads its answers is dropped once 1 MiB of answers waits for it (the helper's
// memory stays bounded), a socket takes a bounded number of connections, and an idle one is closed.
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RpcResponse } from "@knockport/protocol";
import { SOCKET_LIMITS, startRpcServer } from "../src/socket-server.js";

const silent = pino({ level: "silent" });

/** An answer of about 100 KB, like `list` with 700 leases. */
const BIG_RESULT = { leases: Array.from({ length: 700 }, (_, i) => ({ app: "ssh", ip: `198.51.100.${i % 250}`, pad: "x".repeat(100) })) };
const answerAll = async (frame: string): Promise<RpcResponse> => ({ jsonrpc: "2.0", id: (JSON.parse(frame) as { id: number }).id, result: BIG_RESULT });

const req = (id: number): string => `${JSON.stringify({ jsonrpc: "2.0", id, method: "list" })}\n`;

function connect(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ path });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

/** Resolves true when `s` is closed by the other side within `ms`, false otherwise. */
function closedWithin(s: Socket, ms: number): Promise<boolean> {
  if (s.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    s.once("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

describe("helper socket bounds", () => {
  let dir: string;
  let socketPath: string;
  let server: { close(): Promise<void> } | undefined;
  const sockets: Socket[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "kp-bounds-"));
    socketPath = join(dir, "helper.sock");
  });
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await server?.close();
    server = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it("drops a client that sends requests and never reads, and its answers do not pile up in the helper", async () => {
    server = await startRpcServer({ socketPath, socketGroup: undefined, dispatch: answerAll, log: silent });
    const s = await connect(socketPath);
    sockets.push(s);
    s.on("error", () => undefined);
    s.pause(); // never reads: the answers stay in the helper unless it bounds them
    const closed = closedWithin(s, 6000);
    let gone = false;
    void closed.then(() => (gone = true));
    const before = process.memoryUsage();
    let peakGrowth = 0;
    const deadline = Date.now() + 5000;
    let id = 0;
    // Bounded: 5 s, and the client's own send buffer is kept small so only the helper can grow.
    while (!gone && Date.now() < deadline) {
      if (s.writableLength < 64 * 1024) for (let i = 0; i < 20; i += 1) s.write(req(++id));
      await new Promise((r) => setTimeout(r, 5));
      const now = process.memoryUsage();
      peakGrowth = Math.max(peakGrowth, now.heapUsed + now.arrayBuffers - before.heapUsed - before.arrayBuffers);
    }
    expect(await closed, `connection still open after ${id} requests never read`).toBe(true);
    expect(peakGrowth, `helper memory grew by ${(peakGrowth / 1e6).toFixed(1)} MB`).toBeLessThan(40e6);
  }, 15_000);

  it("refuses the connection past the socket's limit, and takes a new one when a slot frees", async () => {
    const limit = SOCKET_LIMITS.knock.maxConnections;
    expect(limit).toBeLessThanOrEqual(16);
    server = await startRpcServer({ socketPath, socketGroup: undefined, dispatch: answerAll, log: silent, ...SOCKET_LIMITS.knock });
    for (let i = 0; i < limit; i += 1) sockets.push(await connect(socketPath));
    const extra = await connect(socketPath).catch(() => undefined);
    if (extra) {
      sockets.push(extra);
      extra.on("error", () => undefined);
      expect(await closedWithin(extra, 2000), `connection ${limit + 1} was kept`).toBe(true);
    }
    // The first `limit` are still served.
    const first = sockets[0]!;
    const answer = new Promise<string>((r) => first.once("data", (d: Buffer) => r(d.toString())));
    first.write(req(1));
    expect(await answer).toContain('"id":1');
    first.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const again = await connect(socketPath);
    sockets.push(again);
    expect(await closedWithin(again, 500)).toBe(false);
  });

  it("closes an idle connection; the knock socket's idle limit is at most 30 s", async () => {
    expect(SOCKET_LIMITS.knock.idleTimeoutMs).toBeLessThanOrEqual(30_000);
    server = await startRpcServer({ socketPath, socketGroup: undefined, dispatch: answerAll, log: silent, idleTimeoutMs: 300 });
    const s = await connect(socketPath);
    sockets.push(s);
    const started = Date.now();
    expect(await closedWithin(s, 3000)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });
});
