// The knock route with 2FA and the server's durable spent-code store, through fastify.inject().
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { HOTP, Secret } from "otpauth";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { twoFactorFileId } from "@knockport/config";
import { HelperCallError } from "@knockport/helper-client";
import { buildKnockApp, createKnockContext } from "../src/app.js";
import { DEFAULT_SERVER_STATE_DIR, parseServerArgs } from "../src/args.js";
import { FileUsedTokenStore } from "../src/used-tokens.js";
import { FakeHelper, HTTP_PATH, KEYS, makeConfig, postForm, tempDir } from "./fixtures.js";

const CLIENT = "198.51.100.7";
const ATTACKER = "203.0.113.66";
const KEY = KEYS.openvpnHttp[0];
const T0 = 1_700_000_010_000;

const secret = new Secret({ size: 20 });
const code = (t: number, offset = 0): string => new HOTP({ secret }).generate({ counter: Math.floor(t / 30_000) + offset });

let dir: { path: string; remove(): void };
let folder: string;
let stateDir: string;
let clock: { t: number };
const open: FastifyInstance[] = [];

/** One server process: its own context and store on the shared --state-dir. */
async function server(global: Record<string, unknown> = {}): Promise<{ app: FastifyInstance; helper: FakeHelper }> {
  const config = makeConfig({ "2fa_config_folder": folder, ...global });
  const helper = new FakeHelper();
  const now = (): number => clock.t;
  const context = createKnockContext(config, helper, now, new FileUsedTokenStore(stateDir, { now }));
  const app = await buildKnockApp({ step: 1, context, logger: false });
  open.push(app);
  return { app, helper };
}

async function step1(app: FastifyInstance, token: string | undefined, ip = CLIENT): Promise<number> {
  return (await postForm(app, HTTP_PATH, { app: "openvpn", access_key: KEY, ...(token !== undefined ? { token } : {}) }, ip)).status;
}

beforeEach(() => {
  dir = tempDir("kp-2fa-routes-");
  folder = join(dir.path, "2fa");
  stateDir = join(dir.path, "state");
  mkdirSync(folder, { mode: 0o700 });
  writeFileSync(join(folder, `${twoFactorFileId(KEY)}.json`), JSON.stringify({ secret: secret.base32 }), { mode: 0o600 });
  clock = { t: T0 };
});
afterEach(async () => {
  for (const app of open.splice(0)) await app.close();
  dir.remove();
});

describe("step 1 with 2FA, across a server restart", () => {
  it("the same code is refused by a restarted server (from any address); a newer one is accepted", async () => {
    const first = await server();
    expect(await step1(first.app, code(clock.t))).toBe(200);
    await first.app.close();
    clock.t += 3_000;
    const second = await server();
    expect(await step1(second.app, code(T0), ATTACKER)).toBe(403);
    expect(await step1(second.app, code(T0))).toBe(403);
    expect(second.helper.calls).toEqual([]);
    expect(await step1(second.app, code(T0, +1))).toBe(200);
  });

  it("answers the same 403 for a missing, wrong, expired and spent code", async () => {
    const { app } = await server();
    const right = code(clock.t);
    const wrong = right === "000000" ? "000001" : "000000";
    expect(await step1(app, right)).toBe(200);
    const answers = [await step1(app, undefined), await step1(app, wrong), await step1(app, code(clock.t, -2)), await step1(app, right)];
    expect(answers).toEqual([403, 403, 403, 403]);
  });

  it("2fa_skew_periods from the config: 0 refuses the previous period's code, the default 1 accepts it", async () => {
    const strict = await server({ "2fa_skew_periods": 0 });
    expect(await step1(strict.app, code(clock.t, -1))).toBe(403);
    const lenient = await server();
    expect(await step1(lenient.app, code(clock.t, -1))).toBe(200);
  });

  it.each([
    ["the helper refused (HELPER_REJECTED)", new HelperCallError("HELPER_REJECTED", "refused", "FIREWALL_FAILED", -32010)],
    ["the request never reached it (no connection)", new HelperCallError("HELPER_UNREACHABLE", "down", undefined, undefined, false)],
  ])("a code whose knock surely opened nothing (%s, 500) can be used again, and then only once", async (_why, failure) => {
    const { app, helper } = await server();
    helper.failNext(failure);
    expect(await step1(app, code(clock.t))).toBe(500);
    expect(await step1(app, code(clock.t))).toBe(200);
    expect(await step1(app, code(clock.t))).toBe(403);
  });

  it.each([
    ["a timeout", new HelperCallError("HELPER_TIMEOUT", "slow")],
    ["a connection dropped after sending", new HelperCallError("HELPER_UNREACHABLE", "closed", undefined, undefined, true)],
    ["a garbled answer", new HelperCallError("HELPER_PROTOCOL", "bad frame")],
  ])("after %s (500) the grant may have landed: the code stays spent", async (_why, failure) => {
    const { app, helper } = await server();
    helper.failNext(failure);
    expect(await step1(app, code(clock.t))).toBe(500);
    expect(await step1(app, code(clock.t))).toBe(403);
    expect(await step1(app, code(clock.t, +1))).toBe(200);
  });
});

describe("knockport-server --state-dir", () => {
  const base = ["-c", "c.yaml", "--cert", "c.pem", "--key", "c.key"];
  it("defaults to /var/lib/knockport-server and says whether it was given", () => {
    const d = parseServerArgs(base);
    const g = parseServerArgs([...base, "--state-dir", "/srv/kp"]);
    if (d === "help" || g === "help") throw new Error("help");
    expect([d.stateDir, d.stateDirGiven]).toEqual([DEFAULT_SERVER_STATE_DIR, false]);
    expect(DEFAULT_SERVER_STATE_DIR).toBe("/var/lib/knockport-server");
    expect([g.stateDir, g.stateDirGiven]).toEqual(["/srv/kp", true]);
  });
});
