import { createServer, type Server, type Socket } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseEvent, parseSnapshot, type WatchSnapshot } from "../src/stream.js";
import { WatchClient } from "../src/watch-client.js";
import type { LeaseEvent } from "../src/types.js";

const snapshot = {
  hooks: [{ app: "vpn", onOpen: ["/bin/true", "{ip}"], onClose: ["/bin/true"] }],
  leases: [
    { app: "vpn", ip: "198.51.100.7", step: 2, port: 1194, protocol: "udp", expiresAt: "2030-03-17T17:46:40.000Z" },
    { app: "vpn", ip: "198.51.100.8", step: 1, port: 8443, protocol: "tcp", expiresAt: "2030-03-17T17:46:40.000Z" },
  ],
};
const event = (o: Record<string, unknown> = {}) => ({
  jsonrpc: "2.0",
  method: "lease",
  params: { event: "expiry", app: "vpn", ip: "198.51.100.7", step: 2, port: 1194, protocol: "udp", expiresAt: "2030-03-17T17:46:40.000Z", ...o },
});

let dir: string;
let server: Server;
let connections: Socket[];
let onRequest: (socket: Socket, connection: number) => void;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "kp-watch-"));
  connections = [];
  server = createServer((socket) => {
    connections.push(socket);
    const n = connections.length;
    socket.once("data", () => onRequest(socket, n));
  });
  await new Promise<void>((r) => server.listen(join(dir, "admin.sock"), r));
});
afterEach(async () => {
  for (const s of connections) s.destroy();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300 && !cond(); i += 1) await new Promise((r) => setTimeout(r, 10));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

function client() {
  const seen = { snapshots: [] as WatchSnapshot[], events: [] as (LeaseEvent | null)[], problems: [] as string[], connected: [] as boolean[] };
  const c = new WatchClient<WatchSnapshot, LeaseEvent | null>(
    { socketPath: join(dir, "admin.sock"), backoff: { initialMs: 10, maxMs: 40 } },
    { snapshot: parseSnapshot, event: parseEvent },
    {
      onSnapshot: (s) => seen.snapshots.push(s),
      onEvent: (e) => seen.events.push(e),
      onConnected: (b) => seen.connected.push(b),
      onProblem: (m) => seen.problems.push(m),
    },
  );
  return { c, seen };
}

describe("WatchClient against a real Unix socket", () => {
  it("delivers the snapshot (service leases only) and events, and subscribes again after the helper went away", async () => {
    onRequest = (socket, n) => {
      socket.write(`${JSON.stringify({ jsonrpc: "2.0", id: 1, result: snapshot })}\n${JSON.stringify(event())}\n`);
      if (n === 1) setTimeout(() => socket.destroy(), 20);
    };
    const { c, seen } = client();
    c.start();
    await until(() => seen.snapshots.length >= 2, "a second subscription");
    c.stop();
    expect(seen.snapshots[0]?.leases.map((l) => l.ip)).toEqual(["198.51.100.7"]);
    expect(seen.snapshots[0]?.apps[0]?.onOpen).toEqual(["/bin/true", "{ip}"]);
    expect(seen.events[0]).toEqual({ kind: "close", reason: "expiry", app: "vpn", ip: "198.51.100.7", port: 1194, protocol: "udp" });
    expect(seen.connected.slice(0, 3)).toEqual([true, false, true]);
  });

  it("a malformed event or snapshot drops the connection and nothing of it reaches the handlers", async () => {
    onRequest = (socket, n) => {
      if (n === 1) socket.write(`${JSON.stringify({ jsonrpc: "2.0", id: 1, result: { ...snapshot, hooks: [{ ...snapshot.hooks[0], onOpen: ["relative-program"] }] } })}\n`);
      else if (n === 2) socket.write(`${JSON.stringify({ jsonrpc: "2.0", id: 1, result: snapshot })}\n${JSON.stringify(event({ ip: "not-an-ip" }))}\n${JSON.stringify(event())}\n`);
      else socket.write(`${JSON.stringify({ jsonrpc: "2.0", id: 1, result: snapshot })}\n`);
    };
    const { c, seen } = client();
    c.start();
    await until(() => connections.length >= 3 && seen.snapshots.length >= 2, "a third connection");
    c.stop();
    expect(seen.snapshots).toHaveLength(2);
    expect(seen.events, "the valid event after the malformed one was never read").toEqual([]);
    expect(seen.problems.join(" | ")).toMatch(/invalid snapshot.*invalid event/);
  });

  it("a refused watch (the helper's policy) is reported and retried with backoff, not spun on", async () => {
    onRequest = (socket) => socket.write(`${JSON.stringify({ jsonrpc: "2.0", id: 1, error: { code: -32009, message: "method not allowed on this socket" } })}\n`);
    const { c, seen } = client();
    c.start();
    await new Promise((r) => setTimeout(r, 300));
    c.stop();
    expect(seen.problems[0]).toBe("helper refused watch: method not allowed on this socket");
    // 10, 20, 40, 40, ... ms between attempts: well under 30 attempts in 300 ms.
    expect(connections.length).toBeGreaterThan(2);
    expect(connections.length).toBeLessThan(15);
  });
});
