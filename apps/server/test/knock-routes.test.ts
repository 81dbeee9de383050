import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import type { FastifyInstance } from "fastify";
import { Secret, TOTP } from "otpauth";
import { pino, type Logger } from "pino";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { HelperCallError } from "@knockport/helper-client";
import { buildKnockApp, createKnockContext, type KnockContext } from "../src/app.js";
import { FakeHelper, HTTPS_PATH, HTTP_PATH, KEYS, makeConfig, tempDir } from "./fixtures.js";

const CLIENT = "198.51.100.7";
const OTHER_CLIENT = "203.0.113.9";
const FORM = { "content-type": "application/x-www-form-urlencoded" };

const twoFaDir = tempDir("kp-2fa-");
afterAll(() => twoFaDir.remove());

interface Harness {
  helper: FakeHelper;
  context: KnockContext;
  step1: FastifyInstance;
  step2: FastifyInstance;
  clock: { t: number };
  close(): Promise<void>;
}

interface HarnessOptions {
  global?: Record<string, unknown>;
  apps?: Record<string, unknown>;
  logger?: Logger | false;
  startMs?: number;
}

async function harness(opts: HarnessOptions = {}): Promise<Harness> {
  const config = makeConfig({ "2fa_config_folder": twoFaDir.path, ...opts.global }, opts.apps);
  const helper = new FakeHelper();
  const clock = { t: opts.startMs ?? 1_700_000_000_000 };
  const context = createKnockContext(config, helper, () => clock.t);
  const logger = opts.logger ?? false;
  const step1 = await buildKnockApp({ step: 1, context, logger });
  const step2 = await buildKnockApp({ step: 2, context, logger });
  return {
    helper,
    context,
    step1,
    step2,
    clock,
    close: async () => {
      await step1.close();
      await step2.close();
    },
  };
}

function form(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString();
}

async function knock(
  app: FastifyInstance,
  path: string,
  payload: string,
  remoteAddress = CLIENT,
  headers: Record<string, string> = FORM,
): Promise<{ status: number; body: string }> {
  const res = await app.inject({ method: "POST", url: path, payload, headers, remoteAddress });
  return { status: res.statusCode, body: res.body };
}

const step1Knock = (h: Harness, fields: Record<string, string>, ip = CLIENT) => knock(h.step1, HTTP_PATH, form(fields), ip);
const step2Knock = (h: Harness, fields: Record<string, string>, ip = CLIENT) => knock(h.step2, HTTPS_PATH, form(fields), ip);

describe("knock routes", () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(async () => {
    await h.close();
  });

  describe("step 1", () => {
    it("answers 200 OK and asks the helper to open step 1 for the normalised client address", async () => {
      const res = await step1Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttp[1] }, `::ffff:${CLIENT}`);
      expect(res).toEqual({ status: 200, body: "OK\n" });
      expect(h.helper.calls).toEqual([{ method: "open", params: { step: 1, app: "openvpn", ip: CLIENT } }]);
    });

    it("normalises an IPv6 client address before calling the helper", async () => {
      const res = await step1Knock(h, { app: "ssh", access_key: KEYS.sshHttp[0] }, "2001:DB8:0:0::0:7");
      expect(res.status).toBe(200);
      expect(h.helper.opens()).toEqual([{ step: 1, app: "ssh", ip: "2001:db8::7" }]);
    });

    it("answers one identical 403 for a wrong app, a wrong key and another app's key, without calling the helper", async () => {
      const answers = [
        await step1Knock(h, { app: "nosuchapp", access_key: KEYS.openvpnHttp[0] }),
        await step1Knock(h, { app: "openvpn", access_key: "wrong-key-0000000" }),
        await step1Knock(h, { app: "openvpn", access_key: KEYS.sshHttp[0] }),
        await step1Knock(h, { app: "ssh", access_key: KEYS.openvpnHttp[0] }),
        // a step-2 key is not a step-1 key
        await step1Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttps[0] }),
      ];
      for (const a of answers) expect(a).toEqual({ status: 403, body: "Forbidden\n" });
      expect(h.helper.calls).toEqual([]);
    });

    it.each([
      ["missing app", form({ access_key: KEYS.openvpnHttp[0] })],
      ["missing access_key", form({ app: "openvpn" })],
      ["an extra field", form({ app: "openvpn", access_key: KEYS.openvpnHttp[0], extra: "1" })],
      ["a repeated field", `app=openvpn&app=ssh&access_key=${KEYS.openvpnHttp[0]}`],
      ["a repeated key field", `app=openvpn&access_key=${KEYS.openvpnHttp[0]}&access_key=${KEYS.openvpnHttp[1]}`],
      ["a too-short key", form({ app: "openvpn", access_key: "short" })],
      ["a token that is not 6 digits", form({ app: "openvpn", access_key: KEYS.openvpnHttp[0], token: "12ab56" })],
      ["an empty app", form({ app: "", access_key: KEYS.openvpnHttp[0] })],
    ])("answers 400 Bad Request for %s", async (_what, payload) => {
      const res = await knock(h.step1, HTTP_PATH, payload);
      expect(res).toEqual({ status: 400, body: "Bad Request\n" });
      expect(h.helper.calls).toEqual([]);
    });

    // A JSON body must not be a second way in: Fastify's own JSON parser is removed.
    it("answers 400 to a JSON body even with valid fields (the form is form-encoded only)", async () => {
      const payload = JSON.stringify({ app: "openvpn", access_key: KEYS.openvpnHttp[0] });
      const res = await knock(h.step1, HTTP_PATH, payload, CLIENT, { "content-type": "application/json" });
      expect(res.status).toBe(400);
      expect(h.helper.calls).toEqual([]);
    });

    it("answers 400 to a plain-text body or a body without content type", async () => {
      const valid = form({ app: "openvpn", access_key: KEYS.openvpnHttp[0] });
      expect((await knock(h.step1, HTTP_PATH, valid, CLIENT, { "content-type": "text/plain" })).status).toBe(400);
      expect((await knock(h.step1, HTTP_PATH, valid, CLIENT, {})).status).toBe(400);
      expect(h.helper.calls).toEqual([]);
    });

    it("answers 404 for other paths, other methods and step 2's path", async () => {
      const valid = form({ app: "openvpn", access_key: KEYS.openvpnHttp[0] });
      expect(await knock(h.step1, "/", valid)).toEqual({ status: 404, body: "Not Found\n" });
      expect((await knock(h.step1, `${HTTP_PATH}x`, valid)).status).toBe(404);
      expect((await knock(h.step1, HTTPS_PATH, form({ app: "openvpn", access_key: KEYS.openvpnHttps[0] }))).status).toBe(404);
      const get = await h.step1.inject({ method: "GET", url: HTTP_PATH, remoteAddress: CLIENT });
      expect(get.statusCode).toBe(404);
      expect(h.helper.calls).toEqual([]);
    });

    it("answers 200 for the healthcheck app without a key and without calling the helper", async () => {
      expect(await step1Knock(h, { app: "health" })).toEqual({ status: 200, body: "OK\n" });
      expect(await step2Knock(h, { app: "health" })).toEqual({ status: 200, body: "OK\n" });
      expect(h.helper.calls).toEqual([]);
    });

    it("answers 500 when the helper is unreachable and records nothing for step 2", async () => {
      h.helper.failNext(new HelperCallError("HELPER_UNREACHABLE", "cannot reach the helper"));
      const res = await step1Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttp[0] });
      expect(res).toEqual({ status: 500, body: "Internal Server Error\n" });
      const step2 = await step2Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttps[0] });
      expect(step2.status).toBe(403);
      expect(h.helper.opens()).toEqual([{ step: 1, app: "openvpn", ip: CLIENT }]);
    });

    it("answers 500 when the helper rejects step 1 (e.g. the firewall failed)", async () => {
      h.helper.failNext(new HelperCallError("HELPER_REJECTED", "helper refused open", "FIREWALL_FAILED", -32003));
      expect((await step1Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttp[0] })).status).toBe(500);
      expect((await step2Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttps[0] })).status).toBe(403);
    });
  });

  describe("step 2", () => {
    it("answers 403 without a prior step 1 from that address", async () => {
      const res = await step2Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttps[0] });
      expect(res).toEqual({ status: 403, body: "Forbidden\n" });
      expect(h.helper.calls).toEqual([]);
    });

    it("answers 200 with the paired key after step 1 and asks the helper to open step 2", async () => {
      expect((await step1Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttp[1] })).status).toBe(200);
      const res = await step2Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttps[1] });
      // the plain OK line first (the original's curl scripts), then the lease's end in unix seconds and
      // the address the lease is for (what a client behind a NAT cannot see itself)
      expect(res).toEqual({ status: 200, body: `OK\nexpires=1893456030\naddress=${CLIENT}\n` });
      expect(h.helper.opens()).toEqual([
        { step: 1, app: "openvpn", ip: CLIENT },
        { step: 2, app: "openvpn", ip: CLIENT },
      ]);
    });

    it("close=1 with the paired key after step 1 asks the helper to release that address's lease (no open), answers OK", async () => {
      expect((await step1Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttp[1] })).status).toBe(200);
      const res = await step2Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttps[1], close: "1" });
      expect(res).toEqual({ status: 200, body: "OK\n" });
      expect(h.helper.calls.map((c) => [c.method, c.params])).toEqual([
        ["open", { step: 1, app: "openvpn", ip: CLIENT }],
        ["release", { app: "openvpn", ip: CLIENT }],
      ]);
    });

    it("close=1 never reaches the helper without the paired key and a step 1 from that address; close on step 1, or close=0/yes, is a bad form", async () => {
      expect((await step2Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttps[1], close: "1" })).status, "no step 1").toBe(403);
      expect((await step1Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttp[1] })).status).toBe(200);
      expect((await step2Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttps[0], close: "1" })).status, "not the paired key").toBe(403);
      expect((await step2Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttps[1], close: "1" }, "198.51.100.99")).status, "another address").toBe(403);
      for (const close of ["0", "yes", "11"]) {
        expect((await step2Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttps[1], close })).status, close).toBe(400);
      }
      expect((await step1Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttp[1], close: "1" })).status).toBe(400);
      expect(h.helper.calls.map((c) => c.method)).toEqual(["open"]);
    });

    it("answers 403 for the HTTPS key paired with a different HTTP key", async () => {
      expect((await step1Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttp[0] })).status).toBe(200);
      expect((await step2Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttps[1] })).status).toBe(403);
      // the pair still works afterwards
      expect((await step2Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttps[0] })).status).toBe(200);
      expect(h.helper.opens().map((o) => o.step)).toEqual([1, 2]);
    });

    it("answers 403 for another app's step-2 key, and for a step 1 of another app", async () => {
      expect((await step1Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttp[0] })).status).toBe(200);
      expect((await step2Knock(h, { app: "openvpn", access_key: KEYS.sshHttps[0] })).status).toBe(403);
      expect((await step2Knock(h, { app: "ssh", access_key: KEYS.sshHttps[0] })).status).toBe(403);
      expect(h.helper.opens().map((o) => o.step)).toEqual([1]);
    });

    it("answers 403 to another address than the one that did step 1", async () => {
      expect((await step1Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttp[0] })).status).toBe(200);
      expect((await step2Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttps[0] }, OTHER_CLIENT)).status).toBe(403);
      // an IPv4-mapped spelling of the step-1 address is the same client
      expect((await step2Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttps[0] }, `::ffff:${CLIENT}`)).status).toBe(200);
    });

    it("answers 403 once step2_https_duration has elapsed", async () => {
      expect((await step1Knock(h, { app: "ssh", access_key: KEYS.sshHttp[0] })).status).toBe(200);
      h.clock.t += 10_000; // ssh: step2_https_duration 10
      expect((await step2Knock(h, { app: "ssh", access_key: KEYS.sshHttps[0] })).status).toBe(403);
      expect(h.helper.opens().map((o) => o.step)).toEqual([1]);
    });

    it("answers 200 just before step2_https_duration has elapsed", async () => {
      expect((await step1Knock(h, { app: "ssh", access_key: KEYS.sshHttp[0] })).status).toBe(200);
      h.clock.t += 9_999;
      expect((await step2Knock(h, { app: "ssh", access_key: KEYS.sshHttps[0] })).status).toBe(200);
    });

    it("answers 403 when the helper says STEP1_REQUIRED", async () => {
      expect((await step1Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttp[0] })).status).toBe(200);
      h.helper.failNext(new HelperCallError("HELPER_REJECTED", "helper refused open", "STEP1_REQUIRED", -32002));
      const res = await step2Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttps[0] });
      expect(res).toEqual({ status: 403, body: "Forbidden\n" });
    });

    it("answers 500 when the helper is unreachable at step 2", async () => {
      expect((await step1Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttp[0] })).status).toBe(200);
      h.helper.failNext(new HelperCallError("HELPER_UNREACHABLE", "cannot reach the helper"));
      expect((await step2Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttps[0] })).status).toBe(500);
    });

    it("answers 404 for step 1's path and 400 for a bad form", async () => {
      const s1 = await knock(h.step2, HTTP_PATH, form({ app: "openvpn", access_key: KEYS.openvpnHttp[0] }));
      expect(s1.status).toBe(404);
      const bad = await knock(h.step2, HTTPS_PATH, form({ app: "openvpn", access_key: KEYS.openvpnHttps[0], x: "y" }));
      expect(bad.status).toBe(400);
      expect(h.helper.calls).toEqual([]);
    });
  });
});

describe("rate limit", () => {
  it("answers 429 after step1_2_rate_limit_per_minute requests from one address while another is still served", async () => {
    const h = await harness({ global: { step1_2_rate_limit_per_minute: 3 } });
    try {
      const valid = { app: "openvpn", access_key: KEYS.openvpnHttp[0] };
      for (let i = 0; i < 3; i += 1) expect((await step1Knock(h, valid)).status).toBe(200);
      expect(await step1Knock(h, valid)).toEqual({ status: 429, body: "Too Many Requests\n" });
      // wrong keys count too, and stay limited
      expect((await step1Knock(h, { app: "openvpn", access_key: "wrong-key-0000000" })).status).toBe(429);
      expect((await step1Knock(h, valid, OTHER_CLIENT)).status).toBe(200);
      // the IPv4-mapped spelling of the limited address is the same address
      expect((await step1Knock(h, valid, `::ffff:${CLIENT}`)).status).toBe(429);
      // step 2 has its own budget
      expect((await step2Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttps[0] })).status).toBe(200);
      expect(h.helper.opens().filter((o) => o.step === 1)).toHaveLength(4);
    } finally {
      await h.close();
    }
  });
});

describe("rate limit for IPv6: one budget per /64 by default", () => {
  const valid = { app: "openvpn", access_key: KEYS.openvpnHttp[0] };

  it("two addresses of one /64 share the budget; the next /64 has its own", async () => {
    const h = await harness({ global: { step1_2_rate_limit_per_minute: 2 } });
    try {
      expect((await step1Knock(h, valid, "2001:db8:1:2::1")).status).toBe(200);
      expect((await step1Knock(h, valid, "2001:db8:1:2:ffff:ffff:ffff:fffe")).status).toBe(200);
      expect((await step1Knock(h, valid, "2001:db8:1:2:abcd::7")).status, "a third address of the same /64").toBe(429);
      expect((await step1Knock(h, valid, "2001:db8:1:3::1")).status, "the neighbouring /64").toBe(200);
    } finally {
      await h.close();
    }
  });

  it("rate_limit_ipv6_prefix: 128 limits each address on its own; 48 groups a whole /48", async () => {
    const per128 = await harness({ global: { step1_2_rate_limit_per_minute: 1, rate_limit_ipv6_prefix: 128 } });
    try {
      expect((await step1Knock(per128, valid, "2001:db8:1:2::1")).status).toBe(200);
      expect((await step1Knock(per128, valid, "2001:db8:1:2::2")).status).toBe(200);
      expect((await step1Knock(per128, valid, "2001:db8:1:2::2")).status).toBe(429);
    } finally {
      await per128.close();
    }
    const per48 = await harness({ global: { step1_2_rate_limit_per_minute: 1, rate_limit_ipv6_prefix: 48 } });
    try {
      expect((await step1Knock(per48, valid, "2001:db8:1:2::1")).status).toBe(200);
      expect((await step1Knock(per48, valid, "2001:db8:1:ff00::1")).status).toBe(429);
      expect((await step1Knock(per48, valid, "2001:db8:2::1")).status).toBe(200);
      // IPv4 stays per address
      expect((await step1Knock(per48, valid, "198.51.100.1")).status).toBe(200);
      expect((await step1Knock(per48, valid, "198.51.100.2")).status).toBe(200);
    } finally {
      await per48.close();
    }
  });
});

describe("logs", () => {
  it("never contain an access key, a token or the HTTPS path", async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString("utf8"));
        done();
      },
    });
    const logger = pino({ level: "debug" }, sink);
    const secret = new Secret({ size: 20 });
    const keyWith2fa = KEYS.openvpnHttp[1];
    writeFileSync(join(twoFaDir.path, `${keyWith2fa}.json`), JSON.stringify({ secret: secret.base32 }));
    const h = await harness({ logger, global: { step1_2_rate_limit_per_minute: 12 } });
    const token = new TOTP({ secret, period: 30, digits: 6 }).generate({ timestamp: h.clock.t });
    try {
      await step1Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttp[0] });
      await step2Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttps[0] });
      await step2Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttps[1] });
      await step1Knock(h, { app: "openvpn", access_key: keyWith2fa, token });
      await step1Knock(h, { app: "openvpn", access_key: keyWith2fa, token }); // replay
      await step1Knock(h, { app: KEYS.sshHttp[0], access_key: KEYS.sshHttps[0] }); // key typed into `app`
      await step1Knock(h, { app: "ssh", access_key: KEYS.sshHttp[0], extra: KEYS.sshHttps[0] });
      await knock(h.step1, HTTP_PATH, JSON.stringify({ app: "ssh", access_key: KEYS.sshHttp[0] }), CLIENT, {
        "content-type": "application/json",
      });
      await knock(h.step1, HTTPS_PATH, form({ app: "ssh", access_key: KEYS.sshHttps[0] }));
      await knock(h.step2, `${HTTPS_PATH}/x`, form({ app: "ssh", access_key: KEYS.sshHttps[0] }));
      h.helper.failNext(new HelperCallError("HELPER_UNREACHABLE", "cannot reach the helper"));
      await step1Knock(h, { app: "ssh", access_key: KEYS.sshHttp[0] });
      h.helper.failNext(new HelperCallError("HELPER_REJECTED", "helper refused open", "FIREWALL_FAILED", -32003));
      await step2Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttps[0] });
      for (let i = 0; i < 13; i += 1) await step1Knock(h, { app: "ssh", access_key: KEYS.sshHttp[0] }, OTHER_CLIENT); // 429s
    } finally {
      await h.close();
      rmSync(join(twoFaDir.path, `${keyWith2fa}.json`));
    }
    // the capture works: outcomes were logged, including denials and helper failures
    const text = lines.join("");
    expect(text).toContain('"event":"knock.accepted"');
    expect(text).toContain('"event":"knock.refused"');
    expect(text).toContain('"cause":"helper-failed"');
    expect(text).toContain('"event":"knock.rate_limited"');
    const secrets = [
      ...KEYS.openvpnHttp,
      ...KEYS.openvpnHttps,
      ...KEYS.sshHttp,
      ...KEYS.sshHttps,
      token,
      HTTPS_PATH,
      HTTPS_PATH.slice(1),
    ];
    for (const line of lines) for (const s of secrets) expect(line, `log line leaks a secret: ${line}`).not.toContain(s);
  });
});

describe("2FA", () => {
  const key = KEYS.openvpnHttp[0];
  const file = join(twoFaDir.path, `${key}.json`);
  const secret = new Secret({ size: 20 });
  const totp = new TOTP({ secret, period: 30, digits: 6 });
  let h: Harness;

  beforeEach(async () => {
    writeFileSync(file, JSON.stringify({ secret: secret.base32 }));
    // middle of a 30 s period, so "now" and the token agree
    h = await harness({ startMs: 1_700_000_010_000 });
  });
  afterEach(async () => {
    await h.close();
    rmSync(file, { force: true });
  });

  it("refuses a knock without a token", async () => {
    expect(await step1Knock(h, { app: "openvpn", access_key: key })).toEqual({ status: 403, body: "Forbidden\n" });
    expect(h.helper.calls).toEqual([]);
  });

  it("accepts a valid token once; the same token again is refused", async () => {
    const token = totp.generate({ timestamp: h.clock.t });
    expect((await step1Knock(h, { app: "openvpn", access_key: key, token })).status).toBe(200);
    expect((await step1Knock(h, { app: "openvpn", access_key: key, token })).status).toBe(403);
    // from another address too
    expect((await step1Knock(h, { app: "openvpn", access_key: key, token }, OTHER_CLIENT)).status).toBe(403);
    expect(h.helper.opens()).toHaveLength(1);
    // the next period's token works
    h.clock.t += 30_000;
    const next = totp.generate({ timestamp: h.clock.t });
    expect(next).not.toBe(token);
    expect((await step1Knock(h, { app: "openvpn", access_key: key, token: next })).status).toBe(200);
  });

  it("refuses a token of another period", async () => {
    const old = totp.generate({ timestamp: h.clock.t - 60_000 });
    const current = totp.generate({ timestamp: h.clock.t });
    if (old === current) return; // astronomically unlikely collision
    expect((await step1Knock(h, { app: "openvpn", access_key: key, token: old })).status).toBe(403);
  });

  it("does not burn a token presented with a wrong key, another app or another key's pair", async () => {
    const token = totp.generate({ timestamp: h.clock.t });
    expect((await step1Knock(h, { app: "openvpn", access_key: "wrong-key-0000000", token })).status).toBe(403);
    expect((await step1Knock(h, { app: "ssh", access_key: key, token })).status).toBe(403);
    expect((await step1Knock(h, { app: "openvpn", access_key: KEYS.sshHttp[0], token })).status).toBe(403);
    // another valid key of the app has no 2FA file: it works without a token and does not spend this one
    expect((await step1Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttp[1], token })).status).toBe(200);
    expect((await step1Knock(h, { app: "openvpn", access_key: key, token })).status).toBe(200);
  });

  it("applies only to the key whose file exists", async () => {
    expect((await step1Knock(h, { app: "openvpn", access_key: KEYS.openvpnHttp[1] })).status).toBe(200);
    expect((await step1Knock(h, { app: "ssh", access_key: KEYS.sshHttp[0] })).status).toBe(200);
  });

  it("is switched off by removing the file, without a restart", async () => {
    expect((await step1Knock(h, { app: "openvpn", access_key: key })).status).toBe(403);
    rmSync(file);
    expect((await step1Knock(h, { app: "openvpn", access_key: key })).status).toBe(200);
    // and on again by creating it
    writeFileSync(file, JSON.stringify({ secret: secret.base32 }));
    expect((await step1Knock(h, { app: "openvpn", access_key: key })).status).toBe(403);
  });

  it.each([
    ["not JSON", "{ secret: "],
    ["no secret", JSON.stringify({ seed: "JBSWY3DPEHPK3PXP" })],
    ["a secret that is not base32", JSON.stringify({ secret: "not base32!" })],
    ["a bad interval", JSON.stringify({ secret: "JBSWY3DPEHPK3PXP", interval: 0 })],
  ])("fails closed on a malformed file (%s), even with a token", async (_what, content) => {
    writeFileSync(file, content);
    const token = totp.generate({ timestamp: h.clock.t });
    expect((await step1Knock(h, { app: "openvpn", access_key: key })).status).toBe(403);
    expect((await step1Knock(h, { app: "openvpn", access_key: key, token })).status).toBe(403);
    expect(h.helper.calls).toEqual([]);
  });
});

describe("2FA for every key the config accepts", () => {
  // Every key the config accepts must find its 2FA file: a key the lookup skipped would silently
  // need no token (fail open).
  it("the config accepts these keys (so the test below checks the 2FA lookup, not config parsing)", () => {
    for (const key of ["vpn~key~0000001", ".vpn-key-0000001"]) {
      const config = makeConfig({}, { vpn2: { port: 3333, access_key_http: [key], access_key_https: ["vpn2-https-key-0001"], duration: 60 } });
      expect(config.apps.find((a) => a.name === "vpn2")?.accessKeysHttp).toEqual([key]);
    }
  });

  // Tildes, a leading dot, dots, dashes and underscores: each a valid key whose 2FA file name must still be found.
  it.each([["vpn~key~0000001"], [".vpn-key-0000001"], ["vpn.key_with-0001"]])("still requires a token for key %s when its file exists", async (key) => {
    const file = join(twoFaDir.path, `${key}.json`);
    writeFileSync(file, JSON.stringify({ secret: new Secret({ size: 20 }).base32 }));
    const h = await harness({
      apps: { vpn2: { port: 3333, access_key_http: [key], access_key_https: ["vpn2-https-key-0001"], duration: 60 } },
    });
    try {
      expect((await step1Knock(h, { app: "vpn2", access_key: key })).status).toBe(403);
    } finally {
      await h.close();
      rmSync(file, { force: true });
    }
  });

});

describe("a step 2 that arrives while step 1 is still being answered", () => {
  // The helper opens the HTTPS port inside the step-1 call; a fast client can connect and send
  // step 2 before the helper's answer reaches the server. Step 2 must still be accepted.
  it("is accepted: the step-1 record exists before the helper call returns", async () => {
    const h = await harness();
    try {
      const original = h.helper.call.bind(h.helper);
      let step2During: { status: number; body: string } | undefined;
      h.helper.call = async (method, params) => {
        const result = await original(method, params);
        if (method === "open" && (params as { step: number }).step === 1 && step2During === undefined) {
          step2During = await step2Knock(h, { app: "ssh", access_key: KEYS.sshHttps[0] });
        }
        return result;
      };
      const first = await step1Knock(h, { app: "ssh", access_key: KEYS.sshHttp[0] });
      expect(first.status).toBe(200);
      expect(step2During).toEqual({ status: 200, body: `OK\nexpires=1893456030\naddress=${CLIENT}\n` });
    } finally {
      await h.close();
    }
  });

  it("is refused when the helper then fails step 1: the record is withdrawn", async () => {
    const h = await harness();
    try {
      h.helper.failNext(new HelperCallError("HELPER_UNREACHABLE", "down"));
      const first = await step1Knock(h, { app: "ssh", access_key: KEYS.sshHttp[0] });
      expect(first.status).toBe(500);
      const second = await step2Knock(h, { app: "ssh", access_key: KEYS.sshHttps[0] });
      expect(second.status).toBe(403);
    } finally {
      await h.close();
    }
  });
});
