import { spawnSync } from "node:child_process";
import { lstatSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createConnection, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createDispatcher, HelperError, MAX_FRAME_BYTES, zeroStatsCounters, type MethodHandlers, type OpenParams } from "@knockport/protocol";
import { SocketSetupError, startRpcServer } from "../src/socket-server.js";

const silent = pino({ level: "silent" });
const STATS = { startedAt: "2030-01-01T00:00:00.000Z", ...zeroStatsCounters() };

/** Fake handlers: `open` answers after a delay chosen by the app name's last digit, to shake up ordering. */
function fakeHandlers(): { handlers: MethodHandlers<unknown>; opened: OpenParams[] } {
  const opened: OpenParams[] = [];
  const handlers: MethodHandlers<unknown> = {
    hello: async () => ({
      version: "0.0.0-test",
      protocolVersion: 1,
      firewallType: "nftables",
      httpPort: 8080,
      httpsPort: 8443,
      services: [{ app: "ssh", port: 22, protocol: "tcp" }],
    }),
    open: async (p) => {
      opened.push(p);
      const delay = Number(/(\d)$/.exec(p.app)?.[1] ?? 0);
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      if (p.app === "refused") throw new HelperError("STEP1_REQUIRED");
      return { app: p.app, ip: p.ip, step: p.step, durationSeconds: 5, expiresAt: "2030-01-01T00:00:00.000Z", refreshed: false };
    },
    close: async () => ({ closed: 0 }),
    check: async () => ({ open: false }),
    release: async () => ({ closed: 0 }),
    list: async () => ({ leases: [] }),
    grant: async () => {
      throw new Error("an admin method");
    },
    stats: async () => {
      throw new Error("an admin method");
    },
    watch: async () => {
      throw new Error("an admin method");
    },
    counters: async () => ({ ...STATS, openLeases: [] }),
  };
  return { handlers, opened };
}

/** A client connection that collects newline-delimited frames and can wait for the next ones. */
class Conn {
  private buffer = "";
  private readonly frames: unknown[] = [];
  private waiters: (() => void)[] = [];
  closed = false;

  constructor(readonly socket: Socket) {
    socket.setEncoding("utf8");
    socket.on("data", (text: string) => {
      this.buffer += text;
      let nl: number;
      while ((nl = this.buffer.indexOf("\n")) >= 0) {
        this.frames.push(JSON.parse(this.buffer.slice(0, nl)));
        this.buffer = this.buffer.slice(nl + 1);
      }
      this.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("error", () => undefined);
  }

  static open(path: string): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const s = createConnection({ path });
      s.once("connect", () => resolve(new Conn(s)));
      s.once("error", reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(text: string): void {
    this.socket.write(text);
  }

  async next(count = 1, timeoutMs = 3000): Promise<any[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length < count) {
      if (this.closed) throw new Error(`connection closed after ${this.frames.length} frames`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${count} frames (have ${this.frames.length})`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
    return this.frames.splice(0, count);
  }

  async waitClosed(timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error("connection still open");
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  end(): void {
    this.socket.destroy();
  }
}

const req = (id: number, method: string, params?: unknown): string =>
  `${JSON.stringify({ jsonrpc: "2.0", id, method, ...(params === undefined ? {} : { params }) })}\n`;

describe("startRpcServer", () => {
  let dir: string;
  let socketPath: string;
  let server: { close(): Promise<void> } | undefined;
  let conns: Conn[];

  async function start(socketGroup?: string): Promise<void> {
    const { handlers } = fakeHandlers();
    const dispatch = createDispatcher("knock", handlers, { onInternalError: () => undefined });
    server = await startRpcServer({ socketPath, socketGroup, dispatch: (frame) => dispatch(frame, undefined), log: silent });
  }
  async function connect(): Promise<Conn> {
    const c = await Conn.open(socketPath);
    conns.push(c);
    return c;
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "kp-rpc-"));
    socketPath = join(dir, "run", "helper.sock");
    server = undefined;
    conns = [];
  });
  afterEach(async () => {
    for (const c of conns) c.end();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers a valid call", async () => {
    await start();
    const c = await connect();
    c.send(req(1, "open", { step: 1, app: "ssh", ip: "198.51.100.7" }));
    const [answer] = await c.next();
    expect(answer).toEqual({
      jsonrpc: "2.0",
      id: 1,
      result: { app: "ssh", ip: "198.51.100.7", step: 1, durationSeconds: 5, expiresAt: "2030-01-01T00:00:00.000Z", refreshed: false },
    });
  });

  it("answers a named helper error with its code and name", async () => {
    await start();
    const c = await connect();
    c.send(req(2, "open", { step: 2, app: "refused", ip: "198.51.100.7" }));
    const [answer] = await c.next();
    expect(answer).toMatchObject({ id: 2, error: { code: -32002, data: { name: "STEP1_REQUIRED" } } });
  });

  it("answers -32601 for an unknown method", async () => {
    await start();
    const c = await connect();
    c.send(req(3, "exec", { cmd: "id" }));
    c.send(req(4, "__proto__"));
    const answers = await c.next(2);
    expect(answers.map((a) => [a.id, a.error?.code])).toEqual([
      [3, -32601],
      [4, -32601],
    ]);
  });

  it.each([
    ["an extra property", { step: 1, app: "ssh", ip: "198.51.100.7", port: 22 }],
    ["step 3", { step: 3, app: "ssh", ip: "198.51.100.7" }],
    ["an app name with spaces", { step: 1, app: "ssh admin", ip: "198.51.100.7" }],
    ["a missing ip", { step: 1, app: "ssh" }],
    ["a string step", { step: "1", app: "ssh", ip: "198.51.100.7" }],
    ["an ip with a scope", { step: 1, app: "ssh", ip: "fe80::1%eth0" }],
  ])("answers -32602 for %s", async (_what, params) => {
    await start();
    const c = await connect();
    c.send(req(5, "open", params));
    const [answer] = await c.next();
    expect(answer).toMatchObject({ jsonrpc: "2.0", id: 5, error: { code: -32602 } });
    expect(answer.result).toBeUndefined();
  });

  it("answers -32700 for invalid JSON and keeps the connection usable", async () => {
    await start();
    const c = await connect();
    c.send('{"jsonrpc":"2.0","id":6,"method":\n');
    c.send(req(7, "hello"));
    const [bad, good] = await c.next(2);
    expect(bad).toMatchObject({ id: null, error: { code: -32700 } });
    expect(good).toMatchObject({ id: 7, result: { firewallType: "nftables" } });
    expect(c.closed).toBe(false);
  });

  it("answers -32600 for a batch array", async () => {
    await start();
    const c = await connect();
    c.send(`${JSON.stringify([JSON.parse(req(8, "hello")), JSON.parse(req(9, "counters"))])}\n`);
    const [answer] = await c.next();
    expect(answer).toMatchObject({ id: null, error: { code: -32600 } });
    c.send(req(10, "counters"));
    expect((await c.next())[0]).toEqual({ jsonrpc: "2.0", id: 10, result: { ...STATS, openLeases: [] } });
  });

  it("answers an error frame and closes the connection for a frame over 64 KiB without newline", async () => {
    await start();
    const c = await connect();
    c.send("x".repeat(MAX_FRAME_BYTES + 10));
    const [answer] = await c.next();
    expect(answer).toMatchObject({ jsonrpc: "2.0", id: null, error: { code: -32600 } });
    await c.waitClosed();
    // the server itself keeps serving others
    const other = await connect();
    other.send(req(11, "hello"));
    expect((await other.next())[0]).toMatchObject({ id: 11 });
  });

  it("accepts a frame just under 64 KiB split over many writes", async () => {
    await start();
    const c = await connect();
    const head = '{"jsonrpc":"2.0","id":12,"method":"counters","params":{},"pad":"';
    const frame = `${head}${"p".repeat(MAX_FRAME_BYTES - head.length - 2)}"}`;
    expect(Buffer.byteLength(frame)).toBe(MAX_FRAME_BYTES);
    for (let i = 0; i < frame.length; i += 4096) c.send(frame.slice(i, i + 4096));
    c.send("\n");
    const [answer] = await c.next();
    // parsed (so not dropped as too large), then refused for the extra member
    expect(answer).toMatchObject({ id: 12, error: { code: -32600 } });
    expect(c.closed).toBe(false);
  });

  it("answers many pipelined requests on one connection in order", async () => {
    await start();
    const c = await connect();
    const n = 60;
    let batch = "";
    for (let i = 0; i < n; i += 1) batch += req(100 + i, "open", { step: 1, app: `app${(n - i) % 10}`, ip: "198.51.100.7" });
    c.send(batch);
    const answers = await c.next(n, 5000);
    expect(answers.map((a) => a.id)).toEqual(Array.from({ length: n }, (_, i) => 100 + i));
    expect(answers.every((a) => a.result?.ip === "198.51.100.7")).toBe(true);
  });

  it("dispatches pipelined requests of one connection concurrently (so the helper can group-commit them)", async () => {
    // Each open waits until all 20 have been dispatched: one at a time, the first would never return.
    const n = 20;
    let dispatched = 0;
    let allIn: () => void = () => undefined;
    const everyoneIn = new Promise<void>((r) => (allIn = r));
    const { handlers } = fakeHandlers();
    const dispatch = createDispatcher(
      "knock",
      {
        ...handlers,
        open: async (p) => {
          if (++dispatched === n) allIn();
          await Promise.race([everyoneIn, new Promise((r) => setTimeout(r, 2000))]);
          return { app: p.app, ip: p.ip, step: p.step, durationSeconds: 5, expiresAt: "2030-01-01T00:00:00.000Z", refreshed: dispatched === n };
        },
      },
      { onInternalError: () => undefined },
    );
    server = await startRpcServer({ socketPath, socketGroup: undefined, dispatch: (frame) => dispatch(frame, undefined), log: silent });
    const c = await connect();
    const started = Date.now();
    c.send(Array.from({ length: n }, (_, i) => req(500 + i, "open", { step: 1, app: "ssh", ip: "198.51.100.7" })).join(""));
    const answers = await c.next(n, 5000);
    expect(Date.now() - started, "answered without waiting for the 2 s fallback").toBeLessThan(1500);
    expect(answers.map((a) => a.id)).toEqual(Array.from({ length: n }, (_, i) => 500 + i));
    expect(answers.every((a) => a.result?.refreshed === true)).toBe(true);
  });

  it("creates the socket with mode 0600 without a group", async () => {
    await start();
    const st = lstatSync(socketPath);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
  });

  it("creates the socket with mode 0660 and the group with socketGroup", async () => {
    // The test's own group: a user may give a file only a group it is in (root: any), and `pnpm test` runs without root.
    const gid = process.getgid?.() ?? 0;
    await start(String(gid));
    const st = lstatSync(socketPath);
    expect(st.mode & 0o777).toBe(0o660);
    expect(st.gid).toBe(gid);
    const c = await connect();
    c.send(req(13, "hello"));
    expect((await c.next())[0]).toMatchObject({ id: 13 });
  });

  it("refuses an unknown group name", async () => {
    await expect(start("no-such-group-kp")).rejects.toBeInstanceOf(SocketSetupError);
  });

  it("replaces a stale socket file", async () => {
    mkdirSync(join(dir, "run"));
    // a process that dies without cleaning up leaves a socket nobody listens on
    const r = spawnSync(process.execPath, [
      "-e",
      `require("net").createServer().listen(${JSON.stringify(socketPath)}, () => process.kill(process.pid, "SIGKILL"))`,
    ]);
    expect(r.signal).toBe("SIGKILL");
    expect(lstatSync(socketPath).isSocket()).toBe(true);
    await start();
    const c = await connect();
    c.send(req(14, "hello"));
    expect((await c.next())[0]).toMatchObject({ id: 14 });
  });

  it("refuses with SocketSetupError when a live server holds the socket, and leaves it alone", async () => {
    mkdirSync(join(dir, "run"));
    const live = createServer((s) => {
      s.on("error", () => undefined); // the helper's probe hangs up at once
      s.end("still here\n");
    });
    await new Promise<void>((resolve) => live.listen(socketPath, resolve));
    try {
      await expect(start()).rejects.toBeInstanceOf(SocketSetupError);
      const text = await new Promise<string>((resolve, reject) => {
        const s = createConnection({ path: socketPath });
        s.once("data", (d) => {
          s.destroy();
          resolve(String(d));
        });
        s.once("error", reject);
      });
      expect(text).toBe("still here\n");
    } finally {
      await new Promise<void>((resolve) => live.close(() => resolve()));
    }
  });

  it("refuses with SocketSetupError when the path is a regular file", async () => {
    mkdirSync(join(dir, "run"));
    writeFileSync(socketPath, "data");
    await expect(start()).rejects.toBeInstanceOf(SocketSetupError);
    expect(lstatSync(socketPath).isFile()).toBe(true);
  });
});
