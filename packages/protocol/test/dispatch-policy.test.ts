// The dispatcher enforces the method table's socket and errors columns: a caller on the knock socket
// cannot reach an admin method (and the reverse), and a handler error outside its row's list is never
// passed on by name.
import { describe, expect, it } from "vitest";
import { HELPER_ERRORS, HelperError, METHODS, createDispatcher, methodsOf, zeroStatsCounters, type MethodHandlers, type MethodName } from "../src/index.js";

const STATS = { startedAt: "2030-01-01T00:00:00.000Z", ...zeroStatsCounters() };
const OPENED = { app: "ssh", ip: "198.51.100.7", step: 2 as const, durationSeconds: 60, expiresAt: "2030-01-01T00:01:00.000Z", refreshed: false };

/** Handlers that record what ran; `throwing` makes one method fail with the given error. */
function recording(throwing?: { method: MethodName; err: unknown }): { handlers: MethodHandlers<unknown>; ran: MethodName[] } {
  const ran: MethodName[] = [];
  const run = <R>(m: MethodName, value: R) => async (): Promise<R> => {
    ran.push(m);
    if (throwing?.method === m) throw throwing.err;
    return value;
  };
  return {
    ran,
    handlers: {
      hello: run("hello", { version: "t", protocolVersion: 2, firewallType: "nftables" as const, httpPort: 8080, httpsPort: 8443, services: [] }),
      open: run("open", OPENED),
      counters: run("counters", { ...STATS, openLeases: [] }),
      check: run("check", { open: false }),
      release: run("release", { closed: 1 }),
      grant: run("grant", OPENED),
      close: run("close", { closed: 1 }),
      list: run("list", { leases: [] }),
      stats: run("stats", STATS),
      watch: run("watch", { leases: [], hooks: [] }),
    },
  };
}

const frame = (method: string, params: unknown = {}): string => JSON.stringify({ jsonrpc: "2.0", id: 7, method, params });
const target = { app: "ssh", ip: "198.51.100.7" };
const paramsOf: Record<MethodName, unknown> = { hello: {}, open: { step: 1, ...target }, counters: {}, check: target, release: target, grant: target, close: target, list: {}, stats: {}, watch: {} };

describe("method table: who may call what", () => {
  it("the knock socket has hello, open, counters, check and release; the events socket watch alone; the rest is the admin socket's", () => {
    // Widening the knock or events socket widens what the server or knockport-hooks can do: change this on purpose.
    expect(methodsOf("knock").sort()).toEqual(["check", "counters", "hello", "open", "release"]);
    expect(methodsOf("events")).toEqual(["watch"]);
    expect(methodsOf("admin").sort()).toEqual(["close", "grant", "list", "stats"]);
  });

  it.each(["grant", "close", "list", "stats", "open"] as const)("events socket: %s answers METHOD_NOT_ALLOWED and runs nothing", async (method) => {
    const { handlers, ran } = recording();
    const dispatch = createDispatcher("events", handlers, { onInternalError: () => undefined });
    const answer = await dispatch(frame(method, paramsOf[method]), undefined);
    expect(answer).toMatchObject({ id: 7, error: { code: HELPER_ERRORS.METHOD_NOT_ALLOWED.code, data: { name: "METHOD_NOT_ALLOWED" } } });
    expect(ran).toEqual([]);
  });

  it.each(methodsOf("admin"))("knock socket: %s answers METHOD_NOT_ALLOWED and runs nothing", async (method) => {
    const { handlers, ran } = recording();
    const denied: string[] = [];
    const dispatch = createDispatcher("knock", handlers, { onInternalError: () => undefined, onNotAllowed: (m) => denied.push(m) });
    const answer = await dispatch(frame(method, paramsOf[method]), undefined);
    expect(answer).toEqual({
      jsonrpc: "2.0",
      id: 7,
      error: { code: HELPER_ERRORS.METHOD_NOT_ALLOWED.code, message: HELPER_ERRORS.METHOD_NOT_ALLOWED.message, data: { name: "METHOD_NOT_ALLOWED", detail: `${method} is a method of the admin socket` } },
    });
    expect(ran).toEqual([]);
    expect(denied).toEqual([method]);
  });

  it.each(methodsOf("knock"))("admin socket: %s answers METHOD_NOT_ALLOWED and runs nothing", async (method) => {
    const { handlers, ran } = recording();
    const dispatch = createDispatcher("admin", handlers, { onInternalError: () => undefined });
    const answer = await dispatch(frame(method, paramsOf[method]), undefined);
    expect(answer).toMatchObject({ id: 7, error: { code: HELPER_ERRORS.METHOD_NOT_ALLOWED.code, data: { name: "METHOD_NOT_ALLOWED" } } });
    expect(ran).toEqual([]);
  });

  it("each socket runs its own methods", async () => {
    for (const socket of ["knock", "admin", "events"] as const) {
      const { handlers, ran } = recording();
      const dispatch = createDispatcher(socket, handlers, { onInternalError: () => undefined });
      for (const m of methodsOf(socket)) expect(await dispatch(frame(m, paramsOf[m]), undefined), `${socket} ${m}`).toHaveProperty("result");
      expect(ran).toEqual(methodsOf(socket));
    }
  });

  it("a knock dispatcher holds no admin handler: built from a knock-only set of handlers it still works", async () => {
    const { handlers } = recording();
    const dispatch = createDispatcher("knock", { hello: handlers.hello, open: handlers.open, counters: handlers.counters, check: handlers.check, release: handlers.release }, { onInternalError: () => undefined });
    expect(await dispatch(frame("open", paramsOf.open), undefined)).toHaveProperty("result");
    expect(() => createDispatcher("admin", { hello: handlers.hello } as never, { onInternalError: () => undefined })).toThrow(/no handler for admin method/);
  });
});

describe("method table: the errors column", () => {
  it("a named error of the method's row is answered by name", async () => {
    const { handlers } = recording({ method: "open", err: new HelperError("STEP1_REQUIRED") });
    const internal: unknown[] = [];
    const dispatch = createDispatcher("knock", handlers, { onInternalError: (e) => internal.push(e) });
    expect(await dispatch(frame("open", paramsOf.open), undefined)).toMatchObject({ error: { code: HELPER_ERRORS.STEP1_REQUIRED.code, data: { name: "STEP1_REQUIRED" } } });
    expect(internal).toEqual([]);
  });

  it.each([
    ["hello", new HelperError("UNKNOWN_APP", "detail that must not leak")],
    ["open", new HelperError("DURATION_TOO_LONG")],
    ["counters", new HelperError("FIREWALL_FAILED")],
    ["open", new Error("ENOENT /var/lib/knockport/leases.json")],
  ] as const)("%s failing with %s (not in its row) answers a generic internal error and reports it", async (method, err) => {
    expect((METHODS[method].errors as readonly string[]).includes((err as { errorName?: string }).errorName ?? "")).toBe(false);
    const { handlers } = recording({ method, err });
    const internal: unknown[] = [];
    const dispatch = createDispatcher("knock", handlers, { onInternalError: (e, m) => internal.push([m, e]) });
    const answer = await dispatch(frame(method, paramsOf[method]), undefined);
    expect(answer).toEqual({ jsonrpc: "2.0", id: 7, error: { code: -32603, message: "Internal error" } });
    expect(internal).toEqual([[method, err]]);
  });
});
