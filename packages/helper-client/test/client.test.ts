import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MAX_IN_FLIGHT_PER_CONNECTION } from "@knockport/protocol";
import { HelperCallError, HelperClient } from "../src/index.js";

interface Request {
  jsonrpc: string;
  id: number;
  method: string;
  params: unknown;
}

/** What the fake helper does with a request: answer a frame (object or raw text), or nothing. */
type Behaviour = (req: Request, socket: Socket) => object | string | undefined;

const HELLO = {
  version: "0.1.0",
  protocolVersion: 1,
  firewallType: "nftables",
  httpPort: 8080,
  httpsPort: 8443,
  services: [{ app: "ssh", port: 2222, protocol: "tcp" }],
};

/** A tiny NDJSON server on a Unix socket. */
class FakeHelper {
  readonly requests: Request[] = [];
  connections = 0;
  readonly sockets = new Set<Socket>();
  private readonly server: Server;

  constructor(
    readonly path: string,
    public behaviour: Behaviour,
  ) {
    this.server = createServer((socket) => {
      this.connections += 1;
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
      socket.on("error", () => undefined);
      let buffer = "";
      socket.setEncoding("utf8");
      socket.on("data", (text: string) => {
        buffer += text;
        let nl: number;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const req = JSON.parse(buffer.slice(0, nl)) as Request;
          buffer = buffer.slice(nl + 1);
          this.requests.push(req);
          const answer = this.behaviour(req, socket);
          if (answer === undefined || socket.destroyed) continue;
          socket.write(typeof answer === "string" ? answer : `${JSON.stringify(answer)}\n`);
        }
      });
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.server.listen(this.path, resolve));
  }

  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  close(): Promise<void> {
    this.dropConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const ok =
  (result: unknown): Behaviour =>
  (req) => ({ jsonrpc: "2.0", id: req.id, result });

async function callError(p: Promise<unknown>): Promise<HelperCallError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HelperCallError);
  return err as HelperCallError;
}

describe("HelperClient", () => {
  let dir: string;
  let path: string;
  let fake: FakeHelper | undefined;
  let client: HelperClient | undefined;

  async function serve(behaviour: Behaviour): Promise<FakeHelper> {
    fake = new FakeHelper(path, behaviour);
    await fake.listen();
    return fake;
  }
  function makeClient(timeoutMs = 2000): HelperClient {
    client = new HelperClient({ socketPath: path, timeoutMs });
    return client;
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "kp-client-"));
    path = join(dir, "helper.sock");
    fake = undefined;
    client = undefined;
  });
  afterEach(async () => {
    client?.close();
    await fake?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("sends a JSON-RPC request and returns a valid result", async () => {
    const helper = await serve(ok(HELLO));
    const hello = await makeClient().call("hello", {});
    expect(hello).toEqual(HELLO);
    expect(helper.requests).toEqual([{ jsonrpc: "2.0", id: expect.any(Number), method: "hello", params: {} }]);
  });

  it("matches answers to calls by id, also when they come back out of order", async () => {
    const held: Request[] = [];
    await serve((req, socket) => {
      held.push(req);
      if (held.length < 2) return undefined;
      // answer the second call first, then the first
      for (const r of [...held].reverse()) {
        const p = r.params as { ip: string; app: string; step: 1 | 2 };
        socket.write(
          `${JSON.stringify({
            jsonrpc: "2.0",
            id: r.id,
            result: { app: p.app, ip: p.ip, step: p.step, durationSeconds: 5, expiresAt: "x", refreshed: false },
          })}\n`,
        );
      }
      return undefined;
    });
    const c = makeClient();
    const [a, b] = await Promise.all([
      c.call("open", { step: 1, app: "ssh", ip: "198.51.100.1" }),
      c.call("open", { step: 1, app: "ssh", ip: "198.51.100.2" }),
    ]);
    expect(a.ip).toBe("198.51.100.1");
    expect(b.ip).toBe("198.51.100.2");
  });

  it.each([
    ["a missing field", { ...HELLO, services: undefined }],
    ["an extra field", { ...HELLO, shell: "/bin/sh" }],
    ["a wrong type", { ...HELLO, httpPort: "8080" }],
    ["null", null],
  ])("answers HELPER_PROTOCOL for an invalid result (%s)", async (_what, result) => {
    await serve(ok(result));
    const err = await callError(makeClient().call("hello", {}));
    expect(err.code).toBe("HELPER_PROTOCOL");
  });

  it("validates a result against the called method's schema, not another's", async () => {
    await serve(ok({ leases: [] })); // a valid `list` result
    const err = await callError(makeClient().call("close", { app: "ssh", ip: "198.51.100.1" }));
    expect(err.code).toBe("HELPER_PROTOCOL");
  });

  it("answers HELPER_REJECTED with the named error for a JSON-RPC error", async () => {
    await serve((req) => ({
      jsonrpc: "2.0",
      id: req.id,
      error: { code: -32002, message: "step 2 requires a live step-1 lease", data: { name: "STEP1_REQUIRED" } },
    }));
    const err = await callError(makeClient().call("open", { step: 2, app: "ssh", ip: "198.51.100.1" }));
    expect(err.code).toBe("HELPER_REJECTED");
    expect(err.helperError).toBe("STEP1_REQUIRED");
    expect(err.rpcCode).toBe(-32002);
  });

  it("answers HELPER_REJECTED without a name for a standard JSON-RPC error", async () => {
    await serve((req) => ({ jsonrpc: "2.0", id: req.id, error: { code: -32602, message: "Invalid params" } }));
    const err = await callError(makeClient().call("open", { step: 1, app: "ssh", ip: "198.51.100.1" }));
    expect(err.code).toBe("HELPER_REJECTED");
    expect(err.helperError).toBeUndefined();
    expect(err.rpcCode).toBe(-32602);
  });

  it("answers HELPER_UNREACHABLE when no helper listens", async () => {
    const err = await callError(makeClient().call("hello", {}));
    expect(err.code).toBe("HELPER_UNREACHABLE");
    expect(err.message).toContain(path);
    expect(err.requestSent, "nothing was written: the helper cannot have acted").toBe(false);
  });

  it("answers HELPER_TIMEOUT when the helper does not answer, and ignores a late answer", async () => {
    const held: Request[] = [];
    const helper = await serve((req) => {
      held.push(req);
      return undefined;
    });
    const c = makeClient(100);
    const started = Date.now();
    const err = await callError(c.call("hello", {}));
    expect(err.code).toBe("HELPER_TIMEOUT");
    expect(err.requestSent, "the helper got the request and may have acted").toBe(true);
    expect(Date.now() - started).toBeLessThan(1000);
    // the late answer for the timed-out call must not be taken for the next call's answer
    helper.behaviour = () => undefined;
    const next = c.call("hello", {});
    await new Promise((r) => setTimeout(r, 20));
    const socket = [...helper.sockets][0];
    socket?.write(`${JSON.stringify({ jsonrpc: "2.0", id: held[0]?.id, result: HELLO })}\n`);
    const err2 = await callError(next);
    expect(err2.code).toBe("HELPER_TIMEOUT");
  });

  it("fails pending calls with HELPER_UNREACHABLE when the helper drops the connection, then reconnects", async () => {
    let drop = true;
    const helper = await serve((req, socket) => {
      if (drop) {
        socket.destroy();
        return undefined;
      }
      return { jsonrpc: "2.0", id: req.id, result: HELLO };
    });
    const c = makeClient();
    const err = await callError(c.call("hello", {}));
    expect(err.code).toBe("HELPER_UNREACHABLE");
    expect(err.requestSent, "dropped after the request arrived: the helper may have acted").toBe(true);
    drop = false;
    expect(await c.call("hello", {})).toEqual(HELLO);
    expect(helper.connections).toBe(2);
  });

  it("reconnects after the helper closed an idle connection", async () => {
    const helper = await serve(ok(HELLO));
    const c = makeClient();
    expect(await c.call("hello", {})).toEqual(HELLO);
    helper.dropConnections();
    await new Promise((r) => setTimeout(r, 30));
    expect(await c.call("hello", {})).toEqual(HELLO);
    expect(helper.connections).toBe(2);
  });

  it("closes its own connection once idle for idleCloseMs (before the helper's idle limit can cut a call), and reconnects for the next call", async () => {
    const helper = await serve(ok(HELLO));
    client = new HelperClient({ socketPath: path, timeoutMs: 2000, idleCloseMs: 100 });
    expect(await client.call("hello", {})).toEqual(HELLO);
    expect(helper.sockets.size).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(helper.sockets.size, "the idle connection was closed by the client").toBe(0);
    expect(await client.call("hello", {})).toEqual(HELLO);
    expect(helper.connections).toBe(2);
  });

  it("reaches a helper that starts after a failed call", async () => {
    const c = makeClient();
    expect((await callError(c.call("hello", {}))).code).toBe("HELPER_UNREACHABLE");
    await new Promise((r) => setTimeout(r, 20));
    await serve(ok(HELLO));
    expect(await c.call("hello", {})).toEqual(HELLO);
  });

  // After a failed connect Node emits 'close' for the dead socket shortly after 'error'; a call made
  // in between runs on a new connection and must not be failed by the old socket's 'close'.
  it("does not fail a call on a new connection when the previous socket's close event arrives late", async () => {
    const c = makeClient();
    const helper = new FakeHelper(path, ok(HELLO));
    fake = helper;
    const second = c.call("hello", {}).then(
      () => {
        throw new Error("first call should have failed: nothing listens yet");
      },
      (err: HelperCallError) => {
        expect(err.code).toBe("HELPER_UNREACHABLE");
        void helper.listen(); // binds synchronously, before the dead socket's 'close' event
        return c.call("hello", {});
      },
    );
    expect(await second).toEqual(HELLO);
  });

  it("answers HELPER_PROTOCOL for a reply that is not JSON", async () => {
    await serve(() => "this is not json\n");
    const err = await callError(makeClient().call("hello", {}));
    expect(err.code).toBe("HELPER_PROTOCOL");
  });

  it("refuses calls after close()", async () => {
    const helper = await serve(ok(HELLO));
    const c = makeClient();
    c.close();
    const err = await callError(c.call("hello", {}));
    expect(err.code).toBe("HELPER_UNREACHABLE");
    expect(helper.requests).toEqual([]);
  });
  it("keeps at most MAX_IN_FLIGHT_PER_CONNECTION calls unanswered on its connection; the rest wait their turn", async () => {
    // A burst of knocks while the helper is slow must not trip the helper's per-connection limit (it
    // drops the connection, failing every call on it); the client holds the excess back instead.
    let outstanding = 0;
    let most = 0;
    await serve((req, socket) => {
      outstanding += 1;
      most = Math.max(most, outstanding);
      setTimeout(() => {
        outstanding -= 1;
        socket.write(`${JSON.stringify({ jsonrpc: "2.0", id: req.id, result: HELLO })}\n`);
      }, 30);
      return undefined;
    });
    const c = makeClient(10_000);
    const calls = Array.from({ length: MAX_IN_FLIGHT_PER_CONNECTION * 2 + 10 }, () => c.call("hello", {}));
    const results = await Promise.all(calls);
    expect(results.every((r) => r.version === "0.1.0")).toBe(true);
    expect(most).toBe(MAX_IN_FLIGHT_PER_CONNECTION);
  });
});
