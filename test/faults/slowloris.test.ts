// Slow-loris: 200 stalled connections on each listener (real sockets on 127.0.0.1, fake helper)
// must not delay a valid knock by more than 2x (medians), and the server must cut them loose.
import { request as httpsRequest, Agent } from "node:https";
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildKnockApp, createKnockContext } from "../../apps/server/src/app.js";
import { FakeHelper, HTTPS_PATH, HTTP_PATH, KEYS, makeConfig } from "../../apps/server/test/fixtures.js";
import { figure, makeCert, median, sleep, tempDir, waitFor } from "./support.js";

type App = Awaited<ReturnType<typeof buildKnockApp>>;

const STALLED_PER_LISTENER = 200;
const SAMPLES = 25;
const FORM = "application/x-www-form-urlencoded";

/** Step 1 over a raw socket (the server resets it after answering): ms until the status line. */
function knockStep1(port: number, body: string): Promise<{ ms: number; status: number | undefined }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = netConnect({ host: "127.0.0.1", port });
    let text = "";
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ ms: performance.now() - t0, status: m ? Number(m[1]) : undefined });
    };
    const timer = setTimeout(finish, 5000);
    s.on("connect", () =>
      s.write(`POST ${HTTP_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: ${FORM}\r\nContent-Length: ${body.length}\r\n\r\n${body}`),
    );
    s.on("data", (d: Buffer) => {
      text += d.toString("latin1");
      if (/^HTTP\/1\.1 \d{3}[^]*\r\n\r\n/.test(text)) finish();
    });
    s.on("error", finish);
    s.on("close", finish);
  });
}

/** Step 2 over a fresh TLS connection (no session reuse): ms until the whole answer. */
function knockStep2(port: number, body: string): Promise<{ ms: number; status: number | undefined }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = httpsRequest(
      {
        host: "127.0.0.1",
        port,
        method: "POST",
        path: HTTPS_PATH,
        rejectUnauthorized: false,
        agent: new Agent({ keepAlive: false, maxCachedSessions: 0 }),
        headers: { "content-type": FORM, "content-length": Buffer.byteLength(body) },
        timeout: 5000,
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve({ ms: performance.now() - t0, status: res.statusCode }));
      },
    );
    req.on("error", () => resolve({ ms: performance.now() - t0, status: undefined }));
    req.on("timeout", () => req.destroy());
    req.end(body);
  });
}

/** How the server ended each stalled connection. */
const endings = new Map<Socket, "reset" | "fin">();

/** Classic slow-loris: a request that never completes, kept alive by a byte now and then. */
function stall(port: number, kind: "headers" | "body" | "tls-handshake" | "tls-headers"): Socket {
  const head = kind === "body" ? `POST ${HTTP_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: ${FORM}\r\nContent-Length: 100\r\n\r\napp=` : `POST ${HTTP_PATH} HTTP/1.1\r\nHost: x\r\n`;
  const s: Socket =
    kind === "tls-headers"
      ? tlsConnect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => s.write(head.replace(HTTP_PATH, HTTPS_PATH)))
      : netConnect({ host: "127.0.0.1", port }, () => {
          if (kind !== "tls-handshake") s.write(head);
        });
  s.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "ECONNRESET") endings.set(s, "reset");
  });
  s.on("end", () => {
    if (!endings.has(s)) endings.set(s, "fin");
    s.destroy();
  });
  s.resume(); // read (and drop) whatever the server answers, so its FIN is seen
  return s;
}

describe("slow-loris", () => {
  const dir = tempDir("kp-faults-loris-");
  const helper = new FakeHelper();
  let step1: App;
  let step2: App;
  let p1 = 0;
  let p2 = 0;

  beforeAll(async () => {
    const config = makeConfig({ "2fa_config_folder": dir.path, step1_2_rate_limit_per_minute: 100_000 });
    const context = createKnockContext(config, helper);
    step1 = await buildKnockApp({ step: 1, context, logger: false });
    step2 = await buildKnockApp({ step: 2, context, logger: false, https: makeCert(dir.path) });
    await step1.listen({ host: "127.0.0.1", port: 0 });
    await step2.listen({ host: "127.0.0.1", port: 0 });
    p1 = (step1.server.address() as { port: number }).port;
    p2 = (step2.server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await step1?.close();
    await step2?.close();
    dir.remove();
  });

  async function measure(): Promise<{ step1: number[]; step2: number[] }> {
    const out = { step1: [] as number[], step2: [] as number[] };
    for (let i = 0; i < SAMPLES; i++) {
      const a = await knockStep1(p1, `app=openvpn&access_key=${KEYS.openvpnHttp[i % 2]}`);
      expect(a.status, `step 1 knock ${i}`).toBe(200);
      out.step1.push(a.ms);
      const b = await knockStep2(p2, `app=openvpn&access_key=${KEYS.openvpnHttps[i % 2]}`);
      expect(b.status, `step 2 knock ${i}`).toBe(200);
      out.step2.push(b.ms);
    }
    return out;
  }

  it(`${STALLED_PER_LISTENER} stalled connections on each listener delay a valid knock by less than 2x, and are cut loose`, async () => {
    // warm-up (JIT, TLS context), then the baseline
    await measure();
    const base = await measure();

    const stalled: Socket[] = [];
    const kinds1 = ["headers", "body"] as const;
    const kinds2 = ["tls-handshake", "tls-headers"] as const;
    for (let i = 0; i < STALLED_PER_LISTENER; i++) {
      stalled.push(stall(p1, kinds1[i % 2] ?? "headers"));
      stalled.push(stall(p2, kinds2[i % 2] ?? "tls-handshake"));
    }
    const conns = (a: App): Promise<number> => new Promise((r) => a.server.getConnections((_e, n) => r(n ?? 0)));
    const allOpen = await waitFor(async () => (await conns(step1)) >= STALLED_PER_LISTENER && (await conns(step2)) >= STALLED_PER_LISTENER, 10_000);
    expect(allOpen, `server sees ${await conns(step1)} + ${await conns(step2)} stalled connections`).toBe(true);
    // keep them alive the slow-loris way: one header byte each, twice a second
    const trickle = setInterval(() => {
      for (const s of stalled) if (!s.destroyed && s.writable) s.write("X");
    }, 500);
    try {
      const loaded = await measure();
      const m = {
        step1: { baseline: median(base.step1), stalled: median(loaded.step1) },
        step2: { baseline: median(base.step2), stalled: median(loaded.step2) },
      };
      figure("slowloris", {
        stalledPerListener: STALLED_PER_LISTENER,
        samples: SAMPLES,
        step1MedianMs: { baseline: +m.step1.baseline.toFixed(2), stalled: +m.step1.stalled.toFixed(2) },
        step2MedianMs: { baseline: +m.step2.baseline.toFixed(2), stalled: +m.step2.stalled.toFixed(2) },
      });
      expect(m.step1.stalled, `step 1 medians ${JSON.stringify(m.step1)}`).toBeLessThanOrEqual(2 * m.step1.baseline);
      expect(m.step2.stalled, `step 2 medians ${JSON.stringify(m.step2)}`).toBeLessThanOrEqual(2 * m.step2.baseline);

      // The server drops stalled requests on its own (request/connection timeouts), within bounded time.
      const t0 = Date.now();
      const cut = await waitFor(() => stalled.every((s) => s.destroyed || s.readableEnded), 10_000);
      const left = stalled.filter((s) => !(s.destroyed || s.readableEnded)).length;
      const step1Endings = stalled.filter((_s, i) => i % 2 === 0).map((s) => endings.get(s) ?? "none");
      figure("slowloris-cut", { cutAfterMs: Date.now() - t0, stillOpen: left, step1Resets: step1Endings.filter((e) => e === "reset").length });
      expect(cut, `${left} of ${stalled.length} stalled connections still open after 10 s`).toBe(true);
      // The stealth port resets (never a FIN that would sit in FIN-WAIT-1 behind the reply drop).
      expect(step1Endings.filter((e) => e !== "reset")).toEqual([]);
    } finally {
      clearInterval(trickle);
      for (const s of stalled) s.destroy();
      await sleep(10);
    }
  });
});
