import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { Secret, TOTP } from "otpauth";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { buildKnockApp, createKnockContext } from "../src/app.js";
import { FakeHelper, HTTPS_PATH, HTTP_PATH, KEYS, makeConfig, tempDir } from "./fixtures.js";

// Each knock's log line names what happened and to whom: the event fail2ban and operators read.
const CLIENT = "198.51.100.7";
const V6_CLIENT = "2001:db8::7";
const FLOODER = "203.0.113.9";

const twoFaDir = tempDir("kp-2fa-log-");
afterAll(() => twoFaDir.remove());

async function knockLines(run: (k: (step: 1 | 2, fields: Record<string, string>, ip?: string) => Promise<number>) => Promise<void>): Promise<Record<string, unknown>[]> {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString("utf8").split("\n")) if (l !== "") lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const logger = pino({ level: "info" }, sink);
  const clock = { t: 1_700_000_000_000 };
  const context = createKnockContext(makeConfig({ "2fa_config_folder": twoFaDir.path, step1_2_rate_limit_per_minute: 20 }), new FakeHelper(), () => clock.t);
  const apps = { 1: await buildKnockApp({ step: 1, context, logger }), 2: await buildKnockApp({ step: 2, context, logger }) };
  try {
    await run(async (step, fields, ip = CLIENT) => {
      const res = await apps[step].inject({
        method: "POST",
        url: step === 1 ? HTTP_PATH : HTTPS_PATH,
        payload: new URLSearchParams(fields).toString(),
        headers: { "content-type": "application/x-www-form-urlencoded" },
        remoteAddress: ip,
      });
      return res.statusCode;
    });
  } finally {
    await apps[1].close();
    await apps[2].close();
  }
  return lines.filter((l) => typeof l.event === "string" && l.event.startsWith("knock."));
}

const pick = (l: Record<string, unknown>) => ({ event: l.event, step: l.step, ip: l.ip, reason: l.reason, status: l.status });

describe("knock log lines", () => {
  it("a refused knock says why, with the client's address; an accepted one says knock.accepted", async () => {
    const secret = new Secret({ size: 20 });
    const keyWith2fa = KEYS.openvpnHttp[1];
    writeFileSync(join(twoFaDir.path, `${keyWith2fa}.json`), JSON.stringify({ secret: secret.base32 }));
    const token = new TOTP({ secret, period: 30, digits: 6 }).generate({ timestamp: 1_700_000_000_000 });
    const statuses: number[] = [];
    try {
      const lines = await knockLines(async (k) => {
        statuses.push(await k(1, { app: "ssh", access_key: KEYS.sshHttp[0] }));
        statuses.push(await k(2, { app: "ssh", access_key: KEYS.sshHttps[0] }));
        statuses.push(await k(1, { app: "ssh", access_key: "wrong-key-0000000" }));
        statuses.push(await k(1, { app: "nosuchapp", access_key: KEYS.sshHttp[0] }, V6_CLIENT));
        statuses.push(await k(1, { app: "openvpn", access_key: keyWith2fa }));
        statuses.push(await k(1, { app: "openvpn", access_key: keyWith2fa, token }));
        statuses.push(await k(1, { app: "openvpn", access_key: keyWith2fa, token })); // replayed
        statuses.push(await k(2, { app: "ssh", access_key: KEYS.sshHttps[0] }, V6_CLIENT)); // no step 1 from there
        statuses.push(await k(2, { app: "ssh", access_key: "wrong-key-0000000" }));
      });
      expect(statuses).toEqual([200, 200, 403, 403, 403, 200, 403, 403, 403]);
      expect(lines.map(pick)).toEqual([
        { event: "knock.accepted", step: 1, ip: CLIENT, reason: undefined, status: 200 },
        { event: "knock.accepted", step: 2, ip: CLIENT, reason: undefined, status: 200 },
        { event: "knock.refused", step: 1, ip: CLIENT, reason: "bad-key", status: 403 },
        { event: "knock.refused", step: 1, ip: V6_CLIENT, reason: "unknown-app", status: 403 },
        { event: "knock.refused", step: 1, ip: CLIENT, reason: "bad-2fa", status: 403 },
        { event: "knock.accepted", step: 1, ip: CLIENT, reason: undefined, status: 200 },
        { event: "knock.refused", step: 1, ip: CLIENT, reason: "bad-2fa", status: 403 },
        { event: "knock.refused", step: 2, ip: V6_CLIENT, reason: "no-step1", status: 403 },
        { event: "knock.refused", step: 2, ip: CLIENT, reason: "bad-key", status: 403 },
      ]);
      expect(lines.find((l) => l.reason === "unknown-app")?.app).toBe("(unknown)");
    } finally {
      rmSync(join(twoFaDir.path, `${keyWith2fa}.json`));
    }
  });

  it("a rate-limited knock is logged as knock.rate_limited with the client's address", async () => {
    const statuses: number[] = [];
    const lines = await knockLines(async (k) => {
      for (let i = 0; i < 22; i += 1) statuses.push(await k(1, { app: "ssh", access_key: "wrong-key-0000000" }, FLOODER));
    });
    expect(statuses.filter((s) => s === 429)).toHaveLength(2);
    expect(lines.filter((l) => l.event === "knock.rate_limited").map(pick)).toEqual([
      { event: "knock.rate_limited", step: 1, ip: FLOODER, reason: undefined, status: 429 },
      { event: "knock.rate_limited", step: 1, ip: FLOODER, reason: undefined, status: 429 },
    ]);
  });
});
