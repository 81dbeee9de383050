// `watch` on the events socket, with the real lease logic and a real Unix socket: the snapshot first,
// then one event per open, refresh, close and expiry, in order; a subscriber that does not read is
// dropped once its unread events pass the output limit, while knocks and other subscribers go on.
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseConfig } from "@knockport/config";
import { createDispatcher, type LeaseEvent } from "@knockport/protocol";
import type { RpcPeer } from "../src/helper-context.js";
import { HelperService } from "../src/service.js";
import { SOCKET_LIMITS, startRpcServer } from "../src/socket-server.js";
import { RecordingFirewall } from "./recording-firewall.js";

const silent = pino({ level: "silent" });
const T0 = Date.UTC(2030, 0, 1);
const IP = "198.51.100.7";
const IP2 = "203.0.113.9";

/** A raw subscriber: collects every frame, answers and notifications alike. */
class Subscriber {
  readonly frames: { id?: number; result?: { leases: unknown[] }; method?: string; params?: LeaseEvent; error?: unknown }[] = [];
  closed = false;
  private buffer = "";
  constructor(readonly socket: Socket) {
    socket.setEncoding("utf8");
    socket.on("data", (t: string) => {
      this.buffer += t;
      for (let nl = this.buffer.indexOf("\n"); nl >= 0; nl = this.buffer.indexOf("\n")) {
        this.frames.push(JSON.parse(this.buffer.slice(0, nl)));
        this.buffer = this.buffer.slice(nl + 1);
      }
    });
    socket.on("close", () => (this.closed = true));
    socket.on("error", () => undefined);
  }
  static open(path: string): Promise<Subscriber> {
    return new Promise((resolve, reject) => {
      const s = createConnection({ path });
      s.once("connect", () => resolve(new Subscriber(s)));
      s.once("error", reject);
    });
  }
  watch(): void {
    this.socket.write(`${JSON.stringify({ jsonrpc: "2.0", id: 1, method: "watch" })}\n`);
  }
  events(): LeaseEvent[] {
    return this.frames.filter((f) => f.method === "lease").map((f) => f.params as LeaseEvent);
  }
  async until(cond: () => boolean, ms = 3000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 10));
    }
    return true;
  }
}

describe("watch", () => {
  let dir: string;
  let socketPath: string;
  let clock: { t: number; now(): number };
  let service: HelperService;
  let server: { close(): Promise<void> };
  const subs: Subscriber[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "kp-watch-"));
    socketPath = join(dir, "events.sock");
    clock = { t: T0, now: () => clock.t };
    const config = parseConfig(
      {
        global: { http_post_path: "/knock-one-path", https_post_path: "/knock-two-path", interface_ext: "eth0" },
        ssh: { port: 2222, access_key_http: ["ssh-http-key-0000"], access_key_https: ["ssh-https-key-0000"], duration: 3600, step2_https_duration: 10 },
      },
      "watch.yaml",
    );
    service = new HelperService(config, new RecordingFirewall(), silent, clock);
    await service.start();
    const dispatch = createDispatcher<"events", RpcPeer | undefined>("events", service.handlers, { onInternalError: () => undefined });
    server = await startRpcServer({ name: "events", socketPath, socketGroup: undefined, dispatch, log: silent, ...SOCKET_LIMITS.events });
  });
  afterEach(async () => {
    for (const s of subs.splice(0)) s.socket.destroy();
    service.stop();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const open = (step: 1 | 2, ip: string) => service.handlers.open({ step, app: "ssh", ip }, undefined);

  it("answers the live leases first, then one event per open, refresh, close and expiry, in order", async () => {
    await open(1, IP);
    const sub = await Subscriber.open(socketPath);
    subs.push(sub);
    sub.watch();
    expect(await sub.until(() => sub.frames.length >= 1)).toBe(true);
    expect(sub.frames[0]).toEqual({
      jsonrpc: "2.0",
      id: 1,
      result: { leases: [{ app: "ssh", ip: IP, step: 1, port: 8443, protocol: "tcp", expiresAt: new Date(T0 + 10_000).toISOString() }], hooks: [] },
    });
    await open(2, IP);
    await open(2, IP); // refresh
    await service.handlers.grant({ app: "ssh", ip: IP2, durationSeconds: 5 }, undefined);
    await service.handlers.close({ app: "ssh", ip: IP }, undefined); // both steps of IP
    service.startExpirySweep(10);
    clock.t = T0 + 6_000; // IP2's grant (5 s) ends
    expect(await sub.until(() => sub.events().length >= 6), JSON.stringify(sub.frames)).toBe(true);
    const at = (s: number) => new Date(T0 + s * 1000).toISOString();
    expect(sub.events()).toEqual([
      { event: "open", app: "ssh", ip: IP, step: 2, port: 2222, protocol: "tcp", expiresAt: at(3600), durationSeconds: 3600, via: "knock" },
      { event: "refresh", app: "ssh", ip: IP, step: 2, port: 2222, protocol: "tcp", expiresAt: at(3600), durationSeconds: 3600, via: "knock" },
      { event: "open", app: "ssh", ip: IP2, step: 2, port: 2222, protocol: "tcp", expiresAt: at(5), durationSeconds: 5, via: "admin" },
      { event: "close", app: "ssh", ip: IP, step: 1, port: 8443, protocol: "tcp", expiresAt: at(0), via: "admin" },
      { event: "close", app: "ssh", ip: IP, step: 2, port: 2222, protocol: "tcp", expiresAt: at(0), via: "admin" },
      { event: "expiry", app: "ssh", ip: IP2, step: 2, port: 2222, protocol: "tcp", expiresAt: at(5) },
    ]);
    expect(sub.closed).toBe(false);
  });

  it("drops a subscriber that does not read once its unread events pass 1 MiB; knocks and a reading subscriber are not held up", async () => {
    const warnings: string[] = [];
    const log = pino({ level: "warn" }, { write: (line: string) => void warnings.push(line) });
    await server.close();
    const dispatch = createDispatcher<"events", RpcPeer | undefined>("events", service.handlers, { onInternalError: () => undefined });
    server = await startRpcServer({ name: "events", socketPath, socketGroup: undefined, dispatch, log, ...SOCKET_LIMITS.events });
    const slow = await Subscriber.open(socketPath);
    const reader = await Subscriber.open(socketPath);
    subs.push(slow, reader);
    slow.watch();
    reader.watch();
    expect(await reader.until(() => reader.frames.length >= 1 && slow.frames.length >= 1)).toBe(true);
    slow.socket.pause(); // from here on it reads nothing
    const knocks = 12_000; // about 200 bytes of event each: well past 1 MiB plus the kernel's socket buffers
    const started = Date.now();
    for (let i = 0; i < knocks; i += 200) {
      await Promise.all(
        Array.from({ length: Math.min(200, knocks - i) }, (_, j) => {
          const n = i + j;
          return open(1, `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`);
        }),
      );
      // The reading subscriber lives in this process too: let it read between bursts.
      await new Promise((r) => setTimeout(r, 2));
    }
    const knockMs = Date.now() - started;
    expect(await reader.until(() => reader.events().length >= knocks, 10_000), `reader got ${reader.events().length}`).toBe(true);
    expect(reader.closed).toBe(false);
    expect(reader.events().every((e) => e.event === "open")).toBe(true);
    const dropped = warnings.map((l) => JSON.parse(l) as { event?: string; queuedBytes?: number }).filter((w) => w.event === "rpc.output_overrun");
    expect(dropped, "the helper dropped the subscriber that does not read, once").toHaveLength(1);
    expect(dropped[0]?.queuedBytes).toBeGreaterThan(1024 * 1024);
    expect(dropped[0]?.queuedBytes).toBeLessThan(1024 * 1024 + 4096);
    slow.socket.resume(); // only now does it read what the kernel kept, then the end
    expect(await slow.until(() => slow.closed, 5000)).toBe(true);
    expect(slow.events().length).toBeLessThan(knocks / 2);
    console.log(`[watch] ${knocks} knocks in ${knockMs} ms with one stalled and one reading subscriber; the stalled one got ${slow.events().length} events before it was dropped`);
  }, 60_000);
});
