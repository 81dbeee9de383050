// Hostile frames against the helper's Unix socket: the real socket server, dispatcher and
// HelperService over a recording fake firewall. Every generated frame carries the answer it must
// get, by construction: malformed JSON, wrong envelopes, unknown methods, wrong types, injection
// strings in every field, IPs with scope IDs, plus a few valid requests as controls. Frames travel
// whole, split at random points, byte-trickled by slow writers, with a dangling partial frame, or
// followed by an oversized one. Expected: one clear JSON-RPC answer per frame, in order; no crash;
// a firewall change only for a valid open/close of a configured app; bounded fds and heap.
import { createConnection, type Socket } from "node:net";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FirewallBackend, SetChange } from "../../apps/helper/src/backend.js";
import { HelperService } from "../../apps/helper/src/service.js";
import type { RpcPeer } from "../../apps/helper/src/helper-context.js";
import { startRpcServer } from "../../apps/helper/src/socket-server.js";
import { parseConfig } from "../../packages/config/src/index.js";
import { httpsSetName, serviceSetName } from "../../packages/firewall/src/index.js";
import { HELPER_ERRORS, MAX_FRAME_BYTES, createDispatcher, type RpcResponse } from "../../packages/protocol/src/index.js";
import { INJECTIONS, faultSeed, fdCount, figure, heapAfterGc, pino, sleep, tempDir, waitFor } from "./support.js";

const RUNS = Number(process.env.FAULTS_HELPER_RUNS ?? 800);
const APPS = ["openvpn", "ssh"] as const;
/** Step 1 is opened and closed for these (already in normal form). */
const VALID_IPS = ["198.51.100.7", "198.51.100.8", "203.0.113.20", "2001:db8::7", "2001:db8::abcd"];
/** Never opened for step 1, so step 2 for them must answer STEP1_REQUIRED. */
const STEP2_IPS = ["192.0.2.33", "2001:db8:ffff::33"];
/** Match the params pattern ^[0-9A-Fa-f:.]+$ but are not unicast addresses. */
const BAD_ADDRESSES = [
  "0.0.0.0", "255.255.255.255", "224.0.0.1", "239.1.2.3", "ff02::1", "FF00::", "::", "1.2.3", "999.1.1.1", "1.2.3.4.5",
  "::ffff:0.0.0.0", "0.1.2.3", "1:2:3:4:5:6:7:8:9", "::ffff:224.0.0.1", "12345::", "1..2.3", ":::", "0:0:0:0:0:0:0:0",
  "01.02.03.04", "::ffff:255.255.255.255", "..", "1.2.3.4.", "198.51.100.7:22", "2001:db8::7:80:1:2:3:4",
];
/** Break the params schema of the ip field. */
const BAD_IP_TEXT = [
  "fe80::1%eth0", "fe80::1%1", "198.51.100.7/32", "[2001:db8::1]", " 198.51.100.7", "198.51.100.7 ",
  "1", "a".repeat(46), "x.y", "198.51.100.7\n", "198.51.100.7\u0000", "198.51.100.7; nft flush ruleset", "",
];

const CODE = { durationTooLong: -32007, parse: -32700, invalidRequest: -32600, methodNotFound: -32601, invalidParams: -32602, unknownApp: -32001, step1Required: -32002, invalidAddress: -32004 } as const;

interface Labelled {
  text: string | Buffer;
  /** "ok" or the JSON-RPC error code it must get. */
  expect: "ok" | number;
  /** The id the answer must carry. */
  id: string | number | null;
  /** A valid open/close: exactly one firewall transaction. */
  changes: boolean;
}

let nextId = 1;
const envelope = (method: unknown, params?: unknown, id: unknown = nextId++): Record<string, unknown> => ({
  jsonrpc: "2.0",
  id,
  method,
  ...(params === undefined ? {} : { params }),
});
/** Set changes a valid request makes: open and grant one element; close the service element and the HTTPS one. */
function firewallChangesOf(f: Labelled): number {
  const method = typeof f.text === "string" ? (JSON.parse(f.text) as { method?: unknown }).method : undefined;
  return method === "close" ? 2 : 1;
}

const frame = (obj: unknown, expectAs: Labelled["expect"], changes = false): Labelled => {
  const id = (obj as { id?: unknown }).id;
  return { text: JSON.stringify(obj), expect: expectAs, id: typeof id === "number" || typeof id === "string" ? id : null, changes };
};

const hostileText = fc.oneof(fc.constantFrom(...INJECTIONS), fc.string({ maxLength: 60 }), fc.string({ unit: "binary", maxLength: 60 }));
const notAStep = fc.constantFrom<unknown>(0, 3, -1, 1.5, "1", "2", null, true, [1], { step: 1 }, 1e308);
const notAnApp = fc.oneof(
  fc.constantFrom<unknown>("", "a".repeat(33), "-ssh", "_x", "ssh\n", "ssh ", "ssh.", 1, null, {}, [], ["ssh"], "x".repeat(60_000)),
  hostileText.filter((s) => !/^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/.test(s)),
);
const notIpText = fc.oneof(fc.constantFrom<unknown>(...BAD_IP_TEXT, 7, null, ["198.51.100.7"]), hostileText.filter((s) => !/^[0-9A-Fa-f:.]{2,45}$/.test(s)));
const app = fc.constantFrom(...APPS);
const validIp = fc.constantFrom(...VALID_IPS);

const okFrame: fc.Arbitrary<Labelled> = fc.oneof(
  fc.constant(null).map(() => frame(envelope("hello"), "ok")),
  fc.constant(null).map(() => frame(envelope("list", {}), "ok")),
  fc.tuple(app, validIp).map(([a, ip]) => frame(envelope("open", { step: 1, app: a, ip }), "ok", true)),
  fc.tuple(app, validIp).map(([a, ip]) => frame(envelope("close", { app: a, ip }), "ok", true)),
  fc.tuple(app, validIp, fc.option(fc.integer({ min: 1, max: 3600 }), { nil: undefined })).map(([a, ip, d]) =>
    frame(envelope("grant", { app: a, ip, ...(d === undefined ? {} : { durationSeconds: d }) }), "ok", true),
  ),
);

const errorFrame: fc.Arbitrary<Labelled> = fc.oneof(
  // unparseable text (checked with JSON.parse; blank frames are skipped by design, so none here)
  fc
    .oneof(
      hostileText,
      fc.constantFrom('{"jsonrpc":"2.0","id":1,"method":"open"', "{", "}", "[", "nul", "{'a':1}", '{"a":1}}', "\u0000", '"}'),
      fc.tuple(app, fc.nat()).map(([a, n]) => {
        const t = JSON.stringify(envelope("open", { step: 1, app: a, ip: "198.51.100.7" }, 0));
        return t.slice(0, n % t.length);
      }),
    )
    .filter((s) => s.trim() !== "" && !s.includes("\n") && !parses(s))
    .map((s) => ({ text: s, expect: CODE.parse, id: null, changes: false })),
  fc
    .uint8Array({ minLength: 1, maxLength: 200 })
    .map((a) => Buffer.from(a.filter((b) => b !== 0x0a)))
    .filter((b) => b.toString("utf8").trim() !== "" && !parses(b.toString("utf8")))
    .map((b) => ({ text: b, expect: CODE.parse, id: null, changes: false })),
  // JSON, but not one request object
  fc
    .oneof(fc.constantFrom<unknown>(null, true, 1, "open", [], [envelope("hello", undefined, 1)]), fc.array(fc.integer(), { maxLength: 3 }))
    .map((v) => ({ text: JSON.stringify(v), expect: CODE.invalidRequest, id: null, changes: false })),
  // broken envelopes (the id is echoed only when it is itself valid)
  fc
    .tuple(
      fc.constantFrom("jsonrpc", "id", "method", "extra"),
      fc.constantFrom<unknown>(undefined, null, "1.0", 2, 1.5, {}, [], "x".repeat(65), true, "; flush ruleset"),
    )
    .map(([field, value]): Labelled => {
      const e = envelope("open", { step: 1, app: "ssh", ip: "198.51.100.7" });
      if (field === "extra") e[value === undefined ? "result" : String(value).slice(0, 20)] = value ?? 1;
      else if (value === undefined) delete e[field];
      else e[field] = value;
      const id = e.id;
      const idOk = (typeof id === "string" && id.length <= 64) || (typeof id === "number" && Number.isSafeInteger(id));
      const envelopeOk = e.jsonrpc === "2.0" && idOk && typeof e.method === "string" && Object.keys(e).length <= 4;
      const text = JSON.stringify(e);
      const idOut = idOk ? (id as string | number) : null;
      if (!envelopeOk) return { text, expect: CODE.invalidRequest, id: idOut, changes: false };
      // a string "method" other than a method name is a method-not-found; an id swapped for another valid one is a valid open
      if (e.method !== "open") return { text, expect: CODE.methodNotFound, id: idOut, changes: false };
      return { text, expect: "ok", id: idOut, changes: true };
    }),
  // methods outside the table
  fc
    .oneof(
      fc.constantFrom("OPEN", "open ", " open", "__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", "open; flush ruleset",
        "open\u0000", "rpc.discover", "install", "uninstall", "apply", "flush", "exec", "reload", ""),
      hostileText,
    )
    .filter((m) => !["hello", "open", "counters", "close", "list", "grant", "stats", "watch"].includes(m))
    .map((m) => frame(envelope(m, { step: 1, app: "ssh", ip: "198.51.100.7" }), CODE.methodNotFound)),
  // params that break the schema, one field at a time or as a whole
  fc
    .oneof(
      fc.tuple(notAStep, app, validIp).map(([s, a, ip]) => envelope("open", { step: s, app: a, ip })),
      fc.tuple(fc.constantFrom(1, 2), notAnApp, validIp).map(([s, a, ip]) => envelope("open", { step: s, app: a, ip })),
      fc.tuple(fc.constantFrom(1, 2), app, notIpText).map(([s, a, ip]) => envelope("open", { step: s, app: a, ip })),
      fc.tuple(notAnApp, validIp).map(([a, ip]) => envelope("close", { app: a, ip })),
      fc.tuple(notAnApp, validIp).map(([a, ip]) => envelope("grant", { app: a, ip })),
      fc.tuple(app, notIpText).map(([a, ip]) => envelope("grant", { app: a, ip })),
      fc
        .tuple(app, validIp, fc.constantFrom<unknown>(0, -1, 1.5, "10", 366 * 24 * 3600 + 1, 1e12, [60], {}))
        .map(([a, ip, d]) => envelope("grant", { app: a, ip, durationSeconds: d })),
      fc.tuple(app, notIpText).map(([a, ip]) => envelope("close", { app: a, ip })),
      fc
        .tuple(fc.constantFrom("open", "close"), app, validIp, fc.constantFrom("port", "protocol", "duration", "cmd", "__proto__", "Step", ""), hostileText)
        .map(([m, a, ip, k, v]) => envelope(m, { ...(m === "open" ? { step: 1 } : {}), app: a, ip, [k]: v })),
      fc.tuple(fc.constantFrom("open", "close"), fc.constantFrom("step", "app", "ip")).map(([m, drop]) => {
        const p: Record<string, unknown> = { step: 1, app: "ssh", ip: "198.51.100.7" };
        if (m === "close") delete p.step;
        delete p[drop === "step" && m === "close" ? "app" : drop];
        return envelope(m, p);
      }),
      fc.tuple(fc.constantFrom("open", "close", "hello", "list", "grant"), fc.constantFrom<unknown>(null, [], "x", 1, [1, "ssh", "198.51.100.7"])).map(([m, p]) => envelope(m, p)),
      fc.tuple(fc.constantFrom("hello", "list"), fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }), hostileText, { minKeys: 1, maxKeys: 3 })).map(([m, p]) => envelope(m, p)),
    )
    .map((e) => frame(e, CODE.invalidParams)),
  // schema-valid, refused by the service
  fc
    .tuple(
      fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/).filter((a) => !(APPS as readonly string[]).includes(a)),
      fc.constantFrom(1, 2),
      validIp,
      fc.boolean(),
    )
    .map(([a, s, ip, close]) => frame(envelope(close ? "close" : "open", close ? { app: a, ip } : { step: s, app: a, ip }), CODE.unknownApp)),
  fc
    .tuple(app, fc.constantFrom(...BAD_ADDRESSES), fc.boolean())
    .map(([a, ip, close]) => frame(envelope(close ? "close" : "open", close ? { app: a, ip } : { step: 1, app: a, ip }), CODE.invalidAddress)),
  fc.tuple(app, fc.constantFrom(...STEP2_IPS)).map(([a, ip]) => frame(envelope("open", { step: 2, app: a, ip }), CODE.step1Required)),
  // a grant longer than the app's duration (ssh: 3600 s, openvpn: 86400 s)
  fc
    .tuple(app, validIp, fc.integer({ min: 86_401, max: 366 * 24 * 3600 }))
    .map(([a, ip, d]) => frame(envelope("grant", { app: a, ip, durationSeconds: a === "ssh" ? d - 80_000 : d }), CODE.durationTooLong)),
);

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

type Transport = { kind: "whole" } | { kind: "chunks"; cuts: number[] } | { kind: "slow"; cuts: number[]; delays: number[] } | { kind: "dangling"; tail: string } | { kind: "crlf" };

const transport: fc.Arbitrary<Transport> = fc.oneof(
  { weight: 3, arbitrary: fc.constant<Transport>({ kind: "whole" }) },
  { weight: 3, arbitrary: fc.array(fc.nat(), { minLength: 1, maxLength: 30 }).map((cuts): Transport => ({ kind: "chunks", cuts })) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.array(fc.nat(), { minLength: 5, maxLength: 40 }), fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 40, maxLength: 40 }))
      .map(([cuts, delays]): Transport => ({ kind: "slow", cuts, delays })),
  },
  { weight: 1, arbitrary: fc.oneof(hostileText, fc.constant('{"jsonrpc":"2.0","id":9,"method":"open","params":{"step":1,')).map((tail): Transport => ({ kind: "dangling", tail: tail.replace(/\n/g, "") })) },
  { weight: 1, arbitrary: fc.constant<Transport>({ kind: "crlf" }) },
);

const batch = fc.record({
  frames: fc.array(fc.oneof({ weight: 1, arbitrary: okFrame }, { weight: 6, arbitrary: errorFrame }), { minLength: 10, maxLength: 80 }),
  transport,
  /** Append an oversized frame after the answers: the connection must end with one error. */
  oversized: fc.oneof(
    { weight: 9, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.integer({ min: MAX_FRAME_BYTES + 1, max: 3 * MAX_FRAME_BYTES }) },
  ),
});

type Batch = typeof batch extends fc.Arbitrary<infer T> ? T : never;

/** Records every change the service asks for. */
class RecordingFirewall implements FirewallBackend {
  readonly type = "nftables" as const;
  readonly applied: SetChange[][] = [];
  installs = 0;
  renderRuleset(): string {
    return "";
  }
  async install(): Promise<void> {
    this.installs += 1;
  }
  async apply(changes: readonly SetChange[]): Promise<void> {
    this.applied.push([...changes]);
  }
  async uninstall(): Promise<boolean> {
    return false;
  }
}

class Client {
  readonly answers: Record<string, unknown>[] = [];
  closed = false;
  private buffer = "";
  private wake: (() => void)[] = [];
  private constructor(readonly socket: Socket) {
    socket.setEncoding("utf8");
    socket.on("data", (t: string) => {
      this.buffer += t;
      for (let nl = this.buffer.indexOf("\n"); nl >= 0; nl = this.buffer.indexOf("\n")) {
        this.answers.push(JSON.parse(this.buffer.slice(0, nl)) as Record<string, unknown>);
        this.buffer = this.buffer.slice(nl + 1);
      }
      this.notify();
    });
    socket.on("close", () => {
      this.closed = true;
      this.notify();
    });
    socket.on("error", () => undefined);
  }
  static open(path: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = createConnection({ path });
      s.once("connect", () => resolve(new Client(s)));
      s.once("error", reject);
    });
  }
  private notify(): void {
    const w = this.wake;
    this.wake = [];
    for (const f of w) f();
  }
  /** Resolves true as soon as `cond` holds (checked on every answer and on close), false after `timeoutMs`. */
  until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(cond()), timeoutMs);
      const check = (): void => {
        if (cond()) {
          clearTimeout(timer);
          resolve(true);
        } else this.wake.push(check);
      };
      check();
    });
  }
  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) resolve();
      else this.socket.write(data, () => resolve());
    });
  }
}

function cutAt(data: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, data.length]) {
    if (p > prev) out.push(data.subarray(prev, p));
    prev = Math.max(prev, p);
  }
  return out;
}

describe("helper socket under generated hostile frames", () => {
  const dir = tempDir("kp-faults-helper-");
  const socketPath = join(dir.path, "helper.sock");
  const firewall = new RecordingFirewall();
  const internalErrors: unknown[] = [];
  let service: HelperService;
  let rpc: { close(): Promise<void> };
  const counts = { frames: 0, answered: 0, okChanges: 0, connections: 0, oversized: 0, dangling: 0, slow: 0 };
  const codes = new Map<string, number>();

  beforeAll(async () => {
    const config = parseConfig(
      {
        global: { http_post_path: "/knock-one-path", https_post_path: "/knock-two-path", interface_ext: "eth0" },
        openvpn: { port: 1194, protocol: "udp", access_key_http: ["ovpn-http-key-000"], access_key_https: ["ovpn-https-key-000"], duration: 86400 },
        ssh: { port: 2222, access_key_http: ["ssh-http-key-0000"], access_key_https: ["ssh-https-key-0000"], duration: 3600 },
      },
      "faults.yaml",
    );
    const log = pino({ level: "silent" });
    service = new HelperService(config, firewall, log);
    await service.start();
    // The generated frames mix both sockets' methods: one socket stands in for both, each frame going
    // to the admin dispatcher when the knock one refuses it as another socket's method.
    const options = { onInternalError: (err: unknown) => internalErrors.push(err) };
    const knock = createDispatcher<"knock", RpcPeer | undefined>("knock", service.handlers, options);
    const admin = createDispatcher<"admin", RpcPeer | undefined>("admin", service.handlers, options);
    const dispatch = async (f: string): Promise<RpcResponse> => {
      const r = await knock(f, undefined);
      return "error" in r && r.error.code === HELPER_ERRORS.METHOD_NOT_ALLOWED.code ? admin(f, undefined) : r;
    };
    rpc = await startRpcServer({ socketPath, socketGroup: undefined, dispatch, log, idleTimeoutMs: 5000 });
  });
  afterAll(async () => {
    service?.stop();
    await rpc?.close();
    dir.remove();
  });

  async function runBatch(b: Batch): Promise<void> {
    const frames = b.frames;
    const sep = b.transport.kind === "crlf" ? "\r\n" : "\n";
    const payload = Buffer.concat(frames.flatMap((f) => [Buffer.isBuffer(f.text) ? f.text : Buffer.from(f.text, "utf8"), Buffer.from(sep)]));
    const client = await Client.open(socketPath);
    counts.connections += 1;
    counts.frames += frames.length;
    try {
      const t = b.transport;
      if (t.kind === "chunks" || t.kind === "slow") {
        const pieces = cutAt(payload, t.cuts);
        if (t.kind === "slow") counts.slow += 1;
        for (const [i, piece] of pieces.entries()) {
          await client.write(piece);
          if (t.kind === "slow") await sleep(t.delays[i % t.delays.length] ?? 1);
        }
      } else {
        await client.write(payload);
      }
      if (t.kind === "dangling") {
        counts.dangling += 1;
        await client.write(t.tail); // no newline: never a frame, never an answer
      }
      const all = await client.until(() => client.answers.length >= frames.length || client.closed, 10_000);
      expect(all && !client.closed, `answers ${client.answers.length}/${frames.length}, closed ${client.closed}`).toBe(true);
      if (b.oversized !== undefined) {
        counts.oversized += 1;
        await client.write(Buffer.alloc(b.oversized, 0x41));
        expect(await client.until(() => client.closed, 5000), "an oversized frame ends the connection").toBe(true);
      } else {
        await sleep(1); // room for any unexpected extra answer
      }
      const extra = b.oversized === undefined ? 0 : 1;
      expect(client.answers.length, "one answer per frame").toBe(frames.length + extra);
      for (const [i, f] of frames.entries()) {
        const a = client.answers[i] ?? {};
        const what = `frame ${i} ${JSON.stringify(Buffer.isBuffer(f.text) ? f.text.toString("hex") : f.text).slice(0, 300)} -> ${JSON.stringify(a).slice(0, 300)}`;
        expect(a.jsonrpc, what).toBe("2.0");
        expect(a.id, what).toEqual(f.id);
        if (f.expect === "ok") {
          expect(a.error, what).toBeUndefined();
          expect(a.result, what).toBeDefined();
        } else {
          expect(a.result, what).toBeUndefined();
          expect((a.error as { code?: unknown } | undefined)?.code, what).toBe(f.expect);
          expect(typeof (a.error as { message?: unknown } | undefined)?.message, what).toBe("string");
        }
        const key = f.expect === "ok" ? "ok" : String(f.expect);
        codes.set(key, (codes.get(key) ?? 0) + 1);
        if (f.changes) counts.okChanges += firewallChangesOf(f);
      }
      if (extra === 1) {
        const last = client.answers[frames.length] as { id?: unknown; error?: { code?: number } };
        expect(last.id).toBeNull();
        expect(last.error?.code).toBe(CODE.invalidRequest);
      }
      counts.answered += frames.length;
    } finally {
      client.socket.destroy();
    }
  }

  it(`${RUNS} connections of generated frames (≥ 10,000 frames): one right answer each, firewall changed only by valid requests`, async () => {
    const seed = faultSeed(11);
    const fds = fdCount();
    const heap = heapAfterGc();
    await fc.assert(fc.asyncProperty(batch, runBatch), { numRuns: RUNS, seed, endOnFailure: true });

    // Every firewall change came from a valid open/close/grant, and touched only our sets for pool addresses.
    // (Counted per change, not per transaction: concurrent requests share group-committed transactions.)
    expect(firewall.applied.flat().length).toBe(counts.okChanges);
    const allowedSets = new Set([httpsSetName(4), httpsSetName(6), ...APPS.flatMap((a) => [serviceSetName(a, 4), serviceSetName(a, 6)])]);
    for (const change of firewall.applied.flat()) {
      expect(allowedSets.has(change.set), `change to ${change.set}`).toBe(true);
      expect(VALID_IPS, `change for ${change.ip}`).toContain(change.ip);
      if (change.op === "grant") expect(change.timeoutSeconds).toBeLessThanOrEqual(86400);
    }
    expect(firewall.installs).toBe(1);
    expect(internalErrors).toEqual([]);
    for (const l of service.list().leases) {
      expect(APPS as readonly string[]).toContain(l.app);
      expect(VALID_IPS).toContain(l.ip);
    }

    // Bounded resources once the clients are gone.
    const fdsBack = await waitFor(() => fdCount() <= fds + 2, 5000);
    const heapGrowth = heapAfterGc() - heap;
    expect(fdsBack, `fds before ${fds}, after ${fdCount()}`).toBe(true);
    expect(heapGrowth, `heap grew by ${heapGrowth} bytes`).toBeLessThan(32 * 1024 * 1024);
    expect(counts.frames).toBeGreaterThanOrEqual(10_000);

    // Still serving.
    const c = await Client.open(socketPath);
    await c.write(`${JSON.stringify(envelope("hello", undefined, "after"))}\n`);
    expect(await waitFor(() => c.answers.length === 1, 2000)).toBe(true);
    expect(c.answers[0]?.result).toBeDefined();
    c.socket.destroy();
    figure("helper-socket", {
      seed,
      ...counts,
      firewallTransactions: firewall.applied.length,
      answers: Object.fromEntries([...codes].sort()),
      fdsBefore: fds,
      fdsAfter: fdCount(),
      heapGrowthKiB: Math.round(heapGrowth / 1024),
    });
  });

  it("frame size limit: exactly 64 KiB is answered, one byte more ends the connection with an error", async () => {
    const pad = (n: number): string => {
      const head = '{"jsonrpc":"2.0","id":1,"method":"hello","params":{"x":"';
      const tail = '"}}';
      return head + "a".repeat(n - head.length - tail.length) + tail;
    };
    const atLimit = await Client.open(socketPath);
    await atLimit.write(`${pad(MAX_FRAME_BYTES)}\n`);
    expect(await waitFor(() => atLimit.answers.length === 1, 3000)).toBe(true);
    expect((atLimit.answers[0]?.error as { code?: number })?.code).toBe(CODE.invalidParams);
    atLimit.socket.destroy();
    const over = await Client.open(socketPath);
    await over.write(`${pad(MAX_FRAME_BYTES + 1)}\n`);
    expect(await waitFor(() => over.closed, 3000)).toBe(true);
    expect((over.answers[0]?.error as { code?: number })?.code).toBe(CODE.invalidRequest);
  });

  it("many idle connections: the cap holds and the helper still answers once they are gone", async () => {
    const idle: Client[] = [];
    for (let i = 0; i < 80; i++) idle.push(await Client.open(socketPath));
    // The server keeps at most its cap (16) and drops the rest on arrival.
    expect(await waitFor(() => idle.filter((c) => c.closed).length >= 64, 3000), `closed ${idle.filter((c) => c.closed).length}`).toBe(true);
    for (const c of idle) c.socket.destroy();
    await sleep(50);
    const c = await Client.open(socketPath);
    await c.write(`${JSON.stringify(envelope("list", {}, 5))}\n`);
    expect(await waitFor(() => c.answers.length === 1, 2000)).toBe(true);
    c.socket.destroy();
  });
});
