// Hostile bytes against a real listening knock server on 127.0.0.1 (fake helper): raw TCP garbage,
// request-shaped junk, partial requests, huge and numerous headers, bad framing, TLS garbage.
// Expected: the server answers with a 4xx (never 5xx) or resets/closes, keeps serving, opens only
// for valid knocks, and returns to its fd count once the clients are gone.
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HTTPS_PATH, HTTP_PATH, KEYS } from "../../apps/server/test/fixtures.js";
import { connectionsOf, knockListeners } from "./listeners.js";
import { INJECTIONS, faultSeed, fdCount, figure, pool, waitFor } from "./support.js";

const STEP1_CONNECTIONS = Number(process.env.FAULTS_SOCKET_STEP1 ?? 1200);
const STEP2_CONNECTIONS = Number(process.env.FAULTS_SOCKET_STEP2 ?? 600);
/** Answers a client may get on a raw socket: those in docs/guide.md, plus Node's own 408/413/431 for broken HTTP. */
const ALLOWED = new Set([200, 400, 403, 404, 408, 413, 429, 431]);

interface RawCase {
  bytes: Buffer;
  /** Write in pieces of these sizes (cycled); empty: one write. */
  pieces: number[];
  /** Half-close after writing (a complete exchange); otherwise the client gives up after a short wait. */
  end: boolean;
  /** Plain TCP to the TLS port (step 2 only). */
  noTls: boolean;
  /** A well-formed valid knock: must be answered 200. */
  valid: boolean;
}

const printable = (max: number) => fc.stringMatching(new RegExp(`^[\\x21-\\x7e]{1,${max}}$`));

function requestShaped(path: string, other: string): fc.Arbitrary<Buffer> {
  const line = fc.tuple(
    fc.constantFrom("POST", "POST", "POST", "GET", "PUT", "CONNECT", "PRI", "post", "POST ", "X".repeat(300), ""),
    fc.oneof(fc.constantFrom(path, path, `${path}?a=b`, other, "*", "/", `http://127.0.0.1${path}`, `${path} ${path}`, "/".repeat(9000)), printable(100)),
    fc.constantFrom("HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1x", "HTTP/0.9", "", "HTTP/1.1\r\n\r\n"),
  );
  const header = fc.oneof(
    fc.tuple(printable(30).map((n) => n.replace(/:/g, "")), fc.oneof(printable(100), fc.constantFrom(...INJECTIONS))).map(([n, v]) => `${n}: ${v}`),
    fc.constantFrom(
      "Content-Type: application/x-www-form-urlencoded",
      "Content-Length: 10",
      "Content-Length: -1",
      "Content-Length: 99999999999999999999",
      "Content-Length: 5\r\nContent-Length: 6",
      "Transfer-Encoding: chunked",
      "Transfer-Encoding: chunked\r\nContent-Length: 3",
      "Transfer-Encoding: gzip, chunked",
      "Expect: 100-continue",
      "Connection: keep-alive",
      "Connection: upgrade\r\nUpgrade: websocket",
      "X-Forwarded-For: 198.51.100.7",
      " folded: header",
      "NoColonHeader",
      "Host:",
      "\u0000: x",
    ),
    fc.integer({ min: 1, max: 120 }).map((k) => `X-Huge: ${"h".repeat(k * 1024)}`),
    fc.integer({ min: 50, max: 400 }).map((n) => Array.from({ length: n }, (_, i) => `X-Many-${i}: ${i}`).join("\r\n")),
  );
  const body = fc.oneof(
    fc.constantFrom("", `app=ssh&access_key=${KEYS.sshHttp[0]}`, "5\r\nhello\r\n0\r\n\r\n", "zz\r\nxx\r\n", "0\r\n\r\n"),
    fc.string({ maxLength: 300 }),
    fc.integer({ min: 1000, max: 200_000 }).map((n) => "b".repeat(n)),
  );
  return fc
    .tuple(line, fc.array(header, { maxLength: 8 }), body, fc.constantFrom("\r\n", "\n", "\r"))
    .map(([[m, p, v], hs, b, eol]) => Buffer.from([`${m} ${p} ${v}`, "Host: 127.0.0.1", ...hs, "", b].join(eol), "latin1"));
}

function rawCases(step: 1 | 2): fc.Arbitrary<RawCase> {
  const own = step === 1 ? HTTP_PATH : HTTPS_PATH;
  const other = step === 1 ? HTTPS_PATH : HTTP_PATH;
  const validKey = step === 1 ? KEYS.sshHttp[0] : KEYS.sshHttps[0];
  const validBody = `app=ssh&access_key=${validKey}`;
  const valid = Buffer.from(
    `POST ${own} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${validBody.length}\r\nConnection: close\r\n\r\n${validBody}`,
  );
  const bytes = fc.oneof(
    { weight: 2, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 3000 }).map((a) => Buffer.from(a)) },
    { weight: 6, arbitrary: requestShaped(own, other) },
    // a valid request cut short: the server waits for the rest until the client gives up
    { weight: 2, arbitrary: fc.nat().map((n) => valid.subarray(0, 1 + (n % (valid.length - 1)))) },
  );
  const pieces = fc.oneof(fc.constant<number[]>([]), fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 5 }));
  const fuzzed = fc.record({ bytes, pieces, end: fc.boolean(), noTls: step === 2 ? fc.integer({ min: 0, max: 9 }).map((n) => n < 3) : fc.constant(false), valid: fc.constant(false) });
  const control = fc.record({ bytes: fc.constant(valid), pieces, end: fc.constant(true), noTls: fc.constant(false), valid: fc.constant(true) });
  return fc.oneof({ weight: 12, arbitrary: fuzzed }, { weight: 1, arbitrary: control });
}

interface RawResult {
  status: number | undefined;
  /** How the connection ended from the client's side. */
  ended: "closed" | "reset" | "gave-up";
}

function exchange(port: number, step: 1 | 2, c: RawCase): Promise<RawResult> {
  return new Promise((resolve) => {
    const socket: Socket =
      step === 2 && !c.noTls
        ? tlsConnect({ host: "127.0.0.1", port, rejectUnauthorized: false })
        : netConnect({ host: "127.0.0.1", port });
    let received = "";
    let done = false;
    let status: number | undefined;
    const finish = (ended: RawResult["ended"]): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ status, ended });
    };
    // A complete exchange gets 2 s; a client that stops mid-request gives up after 150 ms.
    const timer = setTimeout(() => finish("gave-up"), c.end ? 2000 : 150);
    socket.on("data", (d: Buffer) => {
      received += d.toString("latin1");
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(received);
      if (m && status === undefined) status = Number(m[1]);
    });
    socket.on("error", (e: NodeJS.ErrnoException) => finish(e.code === "ECONNRESET" ? "reset" : "closed"));
    socket.on("close", () => finish("closed"));
    socket.once(step === 2 && !c.noTls ? "secureConnect" : "connect", () => {
      void (async () => {
        if (c.pieces.length === 0) socket.write(c.bytes);
        else {
          let off = 0;
          for (let i = 0; off < c.bytes.length && !done; i++) {
            const n = c.pieces[i % c.pieces.length] ?? 1;
            socket.write(c.bytes.subarray(off, off + n));
            off += n;
            if (i % 4 === 3) await new Promise((r) => setImmediate(r));
          }
        }
        if (c.end && !done) socket.end();
      })();
    });
  });
}

describe("knock server under hostile bytes on real sockets (127.0.0.1)", () => {
  const srv = knockListeners("kp-faults-sock-");

  it(`${STEP1_CONNECTIONS} + ${STEP2_CONNECTIONS} hostile connections: 4xx answers or resets, never 5xx, no fd left behind`, async () => {
    const fdsBefore = fdCount();
    const tally = { connections: 0, answered: 0, reset: 0, closed: 0, gaveUp: 0, valid: 0 };
    const statuses = new Map<number, number>();
    for (const step of [1, 2] as const) {
      const seed = faultSeed(20 + step);
      const list = fc.sample(rawCases(step), { numRuns: step === 1 ? STEP1_CONNECTIONS : STEP2_CONNECTIONS, seed });
      const failures: string[] = [];
      await pool(list, 40, async (c) => {
        const r = await exchange(srv.ports[step], step, c);
        tally.connections += 1;
        if (r.status !== undefined) {
          tally.answered += 1;
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          if (!ALLOWED.has(r.status)) failures.push(`step ${step}: status ${r.status} for ${JSON.stringify(c.bytes.subarray(0, 200).toString("latin1"))}`);
        }
        if (r.ended === "reset") tally.reset += 1;
        else if (r.ended === "closed") tally.closed += 1;
        else tally.gaveUp += 1;
        if (c.valid) {
          tally.valid += 1;
          if (r.status !== 200) failures.push(`step ${step}: valid knock answered ${String(r.status)} (${r.ended})`);
        }
      });
      expect(failures.slice(0, 5), `seed ${seed}`).toEqual([]);
      figure(`server-sockets-step${step}`, { seed, connections: list.length });
    }
    // Only what a valid knock may open was asked of the helper.
    const expectedApps = new Set(["ssh"]);
    for (const call of srv.helper.calls) {
      const p = call.params as { app: string; ip: string };
      expect(call.method).toBe("open");
      expect(expectedApps.has(p.app)).toBe(true);
      expect(p.ip).toBe("127.0.0.1");
    }
    expect(srv.helper.calls.length).toBeLessThanOrEqual(statuses.get(200) ?? 0);
    expect(statuses.get(200) ?? 0).toBeGreaterThanOrEqual(tally.valid);

    // The server lets go of every connection, and the process of every fd.
    expect(await waitFor(async () => (await connectionsOf(srv.step1)) === 0 && (await connectionsOf(srv.step2)) === 0, 8000)).toBe(true);
    expect(await waitFor(() => fdCount() <= fdsBefore + 2, 5000), `fds before ${fdsBefore}, after ${fdCount()}`).toBe(true);
    // Still serving: one more valid knock on each listener.
    const body1 = `app=ssh&access_key=${KEYS.sshHttp[0]}`;
    const ok1 = await exchange(srv.ports[1], 1, {
      bytes: Buffer.from(`POST ${HTTP_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body1.length}\r\n\r\n${body1}`),
      pieces: [],
      end: true,
      noTls: false,
      valid: true,
    });
    expect(ok1.status).toBe(200);
    figure("server-sockets", { ...tally, statuses: Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])), helperCalls: srv.helper.calls.length, fdsBefore, fdsAfter: fdCount() });
  });
});
