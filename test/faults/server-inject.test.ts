// Hostile input against the knock server through fastify.inject(): generated methods, paths,
// headers, content types and bodies on both listeners, with a fake helper that always works.
// Expected: only the answers in docs/guide.md (200/400/403/404/429, never 500), a helper call only for a
// configured app with one of its keys from the caller's own address, no throw, no secret in logs.
import { Writable } from "node:stream";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildKnockApp, createKnockContext } from "../../apps/server/src/app.js";
import { FAKE_EXPIRES_AT, FakeHelper, HTTPS_PATH, HTTP_PATH, KEYS, makeConfig } from "../../apps/server/test/fixtures.js";
import { parseIpAddress } from "../../packages/protocol/src/index.js";

type FastifyInstance = Awaited<ReturnType<typeof buildKnockApp>>;
import { INJECTIONS, faultSeed, figure, pino, tempDir } from "./support.js";

const RUNS_PER_STEP = Number(process.env.FAULTS_SERVER_RUNS ?? 5500);
const ALLOWED = new Set([200, 400, 403, 404, 429]);

const APP_KEYS: Record<string, { http: readonly string[]; https: readonly string[] }> = {
  openvpn: { http: KEYS.openvpnHttp, https: KEYS.openvpnHttps },
  ssh: { http: KEYS.sshHttp, https: KEYS.sshHttps },
};
const ALL_KEYS = Object.values(APP_KEYS).flatMap((k) => [...k.http, ...k.https]);
const SECRETS = [...ALL_KEYS, HTTP_PATH, HTTPS_PATH];


const CLIENTS = ["198.51.100.7", "198.51.100.8", "203.0.113.9", "2001:db8::7", "2001:db8::8", "::ffff:198.51.100.9"];
// Peers no knock may be accepted from (the helper only takes unicast addresses without scope).
const ODD_PEERS = ["fe80::1%eth0", "0.0.0.0", "ff02::1", "", "not-an-ip"];

const printable = (max: number) => fc.stringMatching(new RegExp(`^[\\x20-\\x7e]{0,${max}}$`));
const anyText = fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: "binary", maxLength: 200 }), fc.constantFrom(...INJECTIONS));

const fieldName = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("app", "access_key", "token") },
  { weight: 1, arbitrary: fc.constantFrom("App", "app[]", "access_key[]", "", "extra", "__proto__", "constructor", "app ", "token[0]") },
  { weight: 1, arbitrary: anyText },
);
const fieldValue = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom("openvpn", "ssh", "health", "nosuchapp", "OpenVPN", "ssh ") },
  { weight: 3, arbitrary: fc.constantFrom(...ALL_KEYS, "wrong-key-0000000", "x".repeat(129), "y".repeat(10)) },
  { weight: 1, arbitrary: fc.stringMatching(/^[0-9]{0,8}$/) },
  { weight: 2, arbitrary: anyText },
);

/** Percent-encodes the UTF-8 bytes (lone surrogates become U+FFFD, as on the wire). */
const pct = (s: string): string => [...Buffer.from(s, "utf8")].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("");

/** How a field is written: URL-encoded, raw (injection characters as they are), or half-encoded. */
const encodedPair = fc.tuple(fieldName, fieldValue, fc.constantFrom("enc", "raw", "mixed")).map(([n, v, how]) =>
  how === "enc" ? `${pct(n)}=${pct(v)}` : how === "raw" ? `${n}=${v}` : `${n}=${pct(v)}%`,
);

const body: fc.Arbitrary<string | Buffer> = fc.oneof(
  { weight: 8, arbitrary: fc.array(encodedPair, { maxLength: 6 }).chain((pairs) => fc.constantFrom("&", ";", "&&", "\n").map((sep) => pairs.join(sep))) },
  { weight: 2, arbitrary: anyText },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.dictionary(fieldName, fc.oneof(fieldValue, fc.array(fieldValue, { maxLength: 3 }), fc.integer(), fc.constant(null))).map((o) => JSON.stringify(o)) },
  { weight: 1, arbitrary: fc.integer({ min: 900, max: 80_000 }).map((n) => `app=ssh&access_key=${KEYS.sshHttp[0]}&token=${"1".repeat(n)}`) },
  { weight: 1, arbitrary: fc.constantFrom("", "=", "&", "app", "app=", "%", "%zz", "%%%", "app=%E0%A4%A", "+++", "app=ssh&app=ssh") },
);

const contentType = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom("application/x-www-form-urlencoded") },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      "application/x-www-form-urlencoded; charset=utf-8",
      "APPLICATION/X-WWW-FORM-URLENCODED",
      "application/x-www-form-urlencoded; charset=latin1",
      "application/x-www-form-urlencoded;;;",
      "application/json",
      "text/plain",
      "multipart/form-data; boundary=xyz",
      "application/octet-stream",
      "",
    ),
  },
  { weight: 1, arbitrary: printable(80) },
  { weight: 1, arbitrary: fc.constant(undefined) },
);

const extraHeaders = fc.dictionary(
  fc.oneof(
    fc.stringMatching(/^[a-z][a-z0-9-]{0,30}$/).filter((n) => !["host", "content-length", "content-type", "transfer-encoding", "connection"].includes(n)),
    fc.constantFrom("x-forwarded-for", "x-real-ip", "forwarded", "expect", "content-encoding", "cookie", "authorization"),
  ),
  fc.oneof(printable(200), fc.constantFrom("198.51.100.99", "127.0.0.1", "for=10.0.0.1", "gzip", "100-continue", "2001:db8::99")),
  { maxKeys: 6 },
);

function urlFor(own: string, other: string): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 12, arbitrary: fc.constant(own) },
    {
      weight: 4,
      arbitrary: fc.constantFrom(
        other,
        `${own}/`,
        own.toUpperCase(),
        `${own}?app=ssh`,
        `/${own}`,
        `${own}%00`,
        `${own}/../${own.slice(1)}`,
        "/",
        "/healthz",
        `${own}#x`,
        `${own}.php`,
        encodeURI(own).replace("k", "%6b"),
      ),
    },
    { weight: 2, arbitrary: fc.stringMatching(/^\/[A-Za-z0-9._~%/-]{0,80}$/) },
  );
}

const method = fc.oneof(
  { weight: 12, arbitrary: fc.constant("POST") },
  { weight: 2, arbitrary: fc.constantFrom("GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD") },
);

const peer = fc.oneof({ weight: 12, arbitrary: fc.constantFrom(...CLIENTS) }, { weight: 1, arbitrary: fc.constantFrom(...ODD_PEERS) });

interface Case {
  method: string;
  url: string;
  contentType: string | undefined;
  headers: Record<string, string>;
  body: string | Buffer;
  peer: string;
  /** Built to be accepted: must answer 200 and call the helper once. */
  valid?: { app: string; keyIndex: number };
}

function cases(step: 1 | 2): fc.Arbitrary<Case> {
  const own = step === 1 ? HTTP_PATH : HTTPS_PATH;
  const other = step === 1 ? HTTPS_PATH : HTTP_PATH;
  const fuzzed = fc.record({ method, url: urlFor(own, other), contentType, headers: extraHeaders, body, peer });
  const valid = fc
    .record({
      app: fc.constantFrom("openvpn", "ssh"),
      pick: fc.nat(),
      peer: fc.constantFrom(...CLIENTS),
      headers: extraHeaders,
    })
    .map(({ app, pick, peer: p, headers }): Case => {
      const keys = APP_KEYS[app] ?? { http: [], https: [] };
      const keyIndex = pick % keys.http.length;
      const key = (step === 1 ? keys.http : keys.https)[keyIndex] ?? "";
      return {
        method: "POST",
        url: own,
        contentType: "application/x-www-form-urlencoded",
        headers,
        body: new URLSearchParams({ app, access_key: key }).toString(),
        peer: p,
        valid: { app, keyIndex },
      };
    });
  // Well-formed knocks with keys from the pool (wrong app, other step, other pair, injections).
  const nearValid = fc
    .record({
      app: fc.constantFrom("openvpn", "ssh", "nosuchapp", "health"),
      key: fc.oneof(fc.constantFrom(...ALL_KEYS, "wrong-key-0000000"), fc.constantFrom(...INJECTIONS).map((s) => `key-${s}-0000000`)),
      token: fc.option(fc.stringMatching(/^[0-9]{6}$/), { nil: undefined }),
      peer,
      headers: extraHeaders,
    })
    .map(({ app, key, token, peer: p, headers }): Case => ({
      method: "POST",
      url: own,
      contentType: "application/x-www-form-urlencoded",
      headers,
      body: new URLSearchParams({ app, access_key: key, ...(token === undefined ? {} : { token }) }).toString(),
      peer: p,
    }));
  return fc.oneof({ weight: 6, arbitrary: fuzzed }, { weight: 3, arbitrary: nearValid }, { weight: 1, arbitrary: valid });
}

describe("knock server under generated hostile requests (inject)", () => {
  const twoFa = tempDir("kp-faults-2fa-");
  const logLines: string[] = [];
  const helper = new FakeHelper();
  let step1: FastifyInstance;
  let step2: FastifyInstance;
  /** Key index of the last accepted step 1, by `${app}|${ip}`, to check what step 2 may accept. */
  const step1Index = new Map<string, number>();
  const statuses = new Map<number, number>();
  let requests = 0;

  beforeAll(async () => {
    const config = makeConfig({ "2fa_config_folder": twoFa.path, step1_2_rate_limit_per_minute: 100_000 });
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(chunk.toString("utf8"));
        done();
      },
    });
    const logger = pino({ level: "debug" }, sink);
    // A frozen clock for the step-1 memory: step 2 never fails for expiry in the middle of a run.
    const context = createKnockContext(config, helper, () => 1_800_000_000_000);
    step1 = await buildKnockApp({ step: 1, context, logger });
    step2 = await buildKnockApp({ step: 2, context, logger });
  });
  afterAll(async () => {
    await step1?.close();
    await step2?.close();
    twoFa.remove();
  });

  async function send(app: FastifyInstance, c: Case): Promise<{ status: number; body: string }> {
    const headers: Record<string, string> = { ...c.headers };
    if (c.contentType !== undefined) headers["content-type"] = c.contentType;
    const res = await app.inject({
      method: c.method as "POST",
      url: c.url,
      headers,
      payload: c.body,
      remoteAddress: c.peer,
    });
    requests += 1;
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
    return { status: res.statusCode, body: res.body };
  }

  /** The property both steps share; `step` says which listener and which keys. */
  async function check(step: 1 | 2, c: Case): Promise<void> {
    const app = step === 1 ? step1 : step2;
    if (step === 2 && c.valid) {
      // Step 2 needs a step 1 with the paired key from the same address first.
      const keys = APP_KEYS[c.valid.app];
      const primed = await send(step1, {
        method: "POST",
        url: HTTP_PATH,
        contentType: "application/x-www-form-urlencoded",
        headers: {},
        body: new URLSearchParams({ app: c.valid.app, access_key: keys?.http[c.valid.keyIndex] ?? "" }).toString(),
        peer: c.peer,
      });
      expect(primed.status).toBe(200);
      const ip = parseIpAddress(c.peer);
      step1Index.set(`${c.valid.app}|${ip}`, c.valid.keyIndex);
    }
    const before = helper.calls.length;
    const res = await send(app, c);
    const calls = helper.calls.slice(before);
    expect(ALLOWED.has(res.status), `status ${res.status} (${JSON.stringify(res.body)}) is not one of the answers in docs/guide.md`).toBe(true);
    expect(calls.length).toBeLessThanOrEqual(1);
    const text = Buffer.isBuffer(c.body) ? c.body.toString("latin1") : c.body;
    if (calls.length === 1) {
      const call = calls[0];
      const params = call?.params as { step: number; app: string; ip: string };
      expect(call?.method).toBe("open");
      expect(res.status, "a helper call is only made for an accepted knock").toBe(200);
      expect(params.step).toBe(step);
      expect(params.ip, "the helper gets the peer address, never a header").toBe(parseIpAddress(c.peer));
      const keys = APP_KEYS[params.app];
      expect(keys, `helper asked to open unknown app ${params.app}`).toBeDefined();
      const form = new URLSearchParams(text);
      expect(form.getAll("app")).toEqual([params.app]);
      const given = form.getAll("access_key");
      expect(given).toHaveLength(1);
      if (step === 1) {
        const index = keys?.http.indexOf(given[0] ?? "") ?? -1;
        expect(index, "step 1 accepted without one of the app's HTTP keys").toBeGreaterThanOrEqual(0);
        step1Index.set(`${params.app}|${params.ip}`, index);
      } else {
        const paired = step1Index.get(`${params.app}|${params.ip}`);
        expect(paired, "step 2 accepted without a step 1 from this address for this app").toBeDefined();
        expect(given[0], "step 2 accepted with a key other than the paired HTTPS key").toBe(keys?.https[paired ?? -1]);
      }
    } else if (res.status === 200) {
      expect(new URLSearchParams(text).get("app"), "200 without a helper call is only for the healthcheck app").toBe("health");
    }
    if (c.valid) {
      expect(res, "a well-formed knock with a valid key must be accepted").toEqual({ status: 200, body: step === 1 ? "OK\n" : `OK\nexpires=${Date.parse(FAKE_EXPIRES_AT) / 1000}\naddress=${parseIpAddress(c.peer)}\n` });
      expect(calls).toHaveLength(1);
    }
  }

  for (const step of [1, 2] as const) {
    it(`step ${step}: ${RUNS_PER_STEP} generated requests get only 200/400/403/404/429 and open only what a valid knock may`, async () => {
      const seed = faultSeed(step);
      const before = requests;
      await fc.assert(
        fc.asyncProperty(cases(step), (c) => check(step, c)),
        { numRuns: RUNS_PER_STEP, seed, endOnFailure: true },
      );
      figure(`server-inject-step${step}`, { seed, requests: requests - before });
    });
  }

  it("nothing it logged carries an access key or a knock path; the figures", () => {
    expect(logLines.length, "the run logs (so the leak check means something)").toBeGreaterThan(requests / 10);
    const leaks = logLines.filter((l) => SECRETS.some((s) => l.includes(s)));
    expect(leaks.slice(0, 3)).toEqual([]);
    expect(requests).toBeGreaterThanOrEqual(10_000);
    expect(statuses.get(500) ?? 0).toBe(0);
    // The run reached every kind of answer it is meant to exercise.
    for (const s of [200, 400, 403, 404] as const) expect(statuses.get(s) ?? 0, `no ${s} answer in ${requests} requests`).toBeGreaterThan(0);
    figure("server-inject", { requests, statuses: Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])), helperCalls: helper.calls.length, logLines: logLines.length });
  });
});

describe("rate limit under generated hostile requests (inject)", () => {
  const LIMIT = 5;
  const RUNS = Number(process.env.FAULTS_RATE_RUNS ?? 1500);
  const twoFa = tempDir("kp-faults-2fa-rl-");
  afterAll(() => twoFa.remove());

  it(`${RUNS} generated requests from 4 addresses, limit ${LIMIT}/min: at most ${LIMIT} key checks per address and listener, then 429`, async () => {
    const helper = new FakeHelper();
    const config = makeConfig({ "2fa_config_folder": twoFa.path, step1_2_rate_limit_per_minute: LIMIT });
    const context = createKnockContext(config, helper, () => 1_800_000_000_000);
    const apps = { 1: await buildKnockApp({ step: 1, context, logger: false }), 2: await buildKnockApp({ step: 2, context, logger: false }) };
    const peers = ["198.51.100.7", "198.51.100.8", "2001:db8::7", "::ffff:203.0.113.9"];
    const served = new Map<string, number>();
    const limited = new Set<string>();
    const statuses = new Map<number, number>();
    try {
      const seed = faultSeed(31);
      const arb = fc.record({
        step: fc.constantFrom(1 as const, 2 as const),
        peer: fc.constantFrom(...peers),
        c: fc.oneof(cases(1), cases(2)),
      });
      await fc.assert(
        fc.asyncProperty(arb, async ({ step, peer, c }) => {
          const key = `${step}|${parseIpAddress(peer)}`;
          const before = helper.calls.length;
          const res = await apps[step].inject({
            method: c.method as "POST",
            url: c.url,
            headers: { ...c.headers, ...(c.contentType === undefined ? {} : { "content-type": c.contentType }) },
            payload: c.body,
            remoteAddress: peer,
          });
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
          expect(ALLOWED.has(res.statusCode), `status ${res.statusCode}`).toBe(true);
          if (res.statusCode === 429) {
            limited.add(key);
            expect(helper.calls.length, "a rate-limited request reached the helper").toBe(before);
          } else if (res.statusCode === 200 || res.statusCode === 403) {
            // a key was checked: that is what the limit protects (a malformed URL is answered 400
            // by the router before the limiter; it checks no key)
            expect(limited.has(key), `${key} had a key checked after a 429`).toBe(false);
            served.set(key, (served.get(key) ?? 0) + 1);
            expect(served.get(key) ?? 0, `${key} had more than ${LIMIT} keys checked`).toBeLessThanOrEqual(LIMIT);
          }
        }),
        { numRuns: RUNS, seed, endOnFailure: true },
      );
      // every address hit the limit on both listeners
      for (const p of peers) for (const s of [1, 2]) expect(limited.has(`${s}|${parseIpAddress(p)}`), `${s}|${p} never limited`).toBe(true);
      expect(helper.calls.length).toBeLessThanOrEqual(peers.length * 2 * LIMIT);
      figure("server-inject-rate-limit", { seed, requests: RUNS, statuses: Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])), helperCalls: helper.calls.length });
    } finally {
      await apps[1].close();
      await apps[2].close();
    }
  });
});
