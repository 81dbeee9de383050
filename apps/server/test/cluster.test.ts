// Cluster mode against a real redis-server (own Unix socket, no persistence): two gateways' servers
// sharing one store, through fastify.inject(); each has its own fake helper.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { HOTP, Secret } from "otpauth";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { twoFactorFileId } from "@knockport/config";
import { connectStore, type StoreConnection } from "@knockport/cluster-store";
import { buildKnockApp, createKnockContext, type KnockContext } from "../src/app.js";
import { ServerCluster } from "../src/cluster.js";
import { MemoryUsedTokenStore } from "../src/used-tokens.js";
import { startTestRedis, type TestRedis } from "../../../packages/cluster-store/test/redis-server.js";
import { FakeHelper, HTTP_PATH, HTTPS_PATH, KEYS, makeConfig, tempDir } from "./fixtures.js";

const CLIENT = "198.51.100.7";
const KEY = KEYS.openvpnHttp[0];
const secret = new Secret({ size: 20 });
const code = (offset = 0): string => new HOTP({ secret }).generate({ counter: Math.floor(Date.now() / 30_000) + offset });

let redis: TestRedis;
let dir: { path: string; remove(): void };
let prefix: string;
let raw: StoreConnection;
const gateways: Gateway[] = [];

interface Gateway {
  step1: FastifyInstance;
  step2: FastifyInstance;
  helper: FakeHelper;
  context: KnockContext;
  cluster: ServerCluster;
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function gateway(global: Record<string, unknown> = {}): Promise<Gateway> {
  const config = makeConfig({ "2fa_config_folder": join(dir.path, "2fa"), cluster: { url: redis.url, key_prefix: prefix }, ...global });
  const helper = new FakeHelper();
  const connection = connectStore(config.global.cluster!);
  const cluster = new ServerCluster(config, connection, pino({ level: "silent" }));
  const context = createKnockContext(config, helper, Date.now, new MemoryUsedTokenStore(), cluster);
  cluster.start(context.step1, helper);
  const step1 = await buildKnockApp({ step: 1, context, logger: false });
  const step2 = await buildKnockApp({ step: 2, context, logger: false });
  const g = { step1, step2, helper, context, cluster };
  gateways.push(g);
  await until("store connection", () => cluster.storeReady);
  await until("subscription", async () => Number((await raw.pubsub("NUMSUB", `${prefix}:events`))[1]) >= gateways.length);
  return g;
}

async function knock(app: FastifyInstance, path: string, fields: Record<string, string>, ip = CLIENT): Promise<number> {
  const res = await app.inject({
    method: "POST",
    url: path,
    payload: new URLSearchParams(fields).toString(),
    headers: { "content-type": "application/x-www-form-urlencoded" },
    remoteAddress: ip,
  });
  return res.statusCode;
}
const step1With = (g: Gateway, token?: string, ip?: string): Promise<number> =>
  knock(g.step1, HTTP_PATH, { app: "openvpn", access_key: KEY, ...(token ? { token } : {}) }, ip);

beforeAll(async () => {
  redis = await startTestRedis();
  raw = connectStore(makeConfig({ cluster: { url: redis.url, key_prefix: "x" } }).global.cluster!, { queueWhileDisconnected: true });
});
afterAll(async () => {
  raw.disconnect();
  await redis.stop();
});
let n = 0;
beforeEach(() => {
  prefix = `t${(n += 1)}`;
  dir = tempDir("kp-cluster-");
  mkdirSync(join(dir.path, "2fa"), { mode: 0o700 });
  writeFileSync(join(dir.path, "2fa", `${twoFactorFileId(KEY)}.json`), JSON.stringify({ secret: secret.base32 }), { mode: 0o600 });
});
afterEach(async () => {
  for (const g of gateways.splice(0)) {
    await g.step1.close();
    await g.step2.close();
    await g.cluster.stop();
  }
  dir.remove();
});

describe("cluster mode: one-time tokens", () => {
  it("a TOTP code accepted at gateway A is refused at gateway B (a sniffed replay); B opens nothing for it", async () => {
    const a = await gateway();
    const b = await gateway();
    const token = code();
    expect(await step1With(a, token)).toBe(200);
    expect(await step1With(b, token, "203.0.113.66")).toBe(403);
    expect(b.helper.opens().filter((o) => o.ip === "203.0.113.66")).toEqual([]);
    expect(await raw.keys(`${prefix}:totp:*`)).toHaveLength(1);
  });

  it("store down: a 2FA knock is answered 503 and opens nothing; the code is not spent and works once the store is back", async () => {
    const a = await gateway();
    await redis.down();
    await until("the client noticing", () => !a.cluster.storeReady);
    const token = code();
    expect(await step1With(a, token)).toBe(503);
    // the documented call for plain knocks: refused too (nothing can be counted cluster-wide)
    expect(await knock(a.step1, HTTP_PATH, { app: "ssh", access_key: KEYS.sshHttp[0] })).toBe(503);
    expect(a.helper.opens()).toEqual([]);
    await redis.up();
    await until("reconnect", () => a.cluster.storeReady, 5000);
    expect(await step1With(a, token)).toBe(200);
    expect(a.helper.opens()).toEqual([{ step: 1, app: "openvpn", ip: CLIENT }]);
  });

  it("store restart (same address, contents lost): the clients reconnect and knocks work again", async () => {
    const a = await gateway();
    await redis.restart();
    await until("reconnect", () => a.cluster.storeReady, 5000);
    expect(await step1With(a, code())).toBe(200);
  });
});

describe("cluster mode: rate limit and step-1 windows", () => {
  it("the rate limit is counted across gateways", async () => {
    const a = await gateway({ step1_2_rate_limit_per_minute: 3 });
    const b = await gateway({ step1_2_rate_limit_per_minute: 3 });
    const plain = { app: "ssh", access_key: KEYS.sshHttp[0] };
    expect(await knock(a.step1, HTTP_PATH, plain)).toBe(200);
    expect(await knock(b.step1, HTTP_PATH, plain)).toBe(200);
    expect(await knock(a.step1, HTTP_PATH, plain)).toBe(200);
    expect(await knock(b.step1, HTTP_PATH, plain)).toBe(429);
    expect(await knock(b.step1, HTTP_PATH, plain, "198.51.100.8")).toBe(200);
  });

  it("step 1 at A, step 2 at B: B opened the HTTPS port from A's announcement and accepts the paired key", async () => {
    const a = await gateway();
    const b = await gateway();
    expect(await knock(a.step1, HTTP_PATH, { app: "ssh", access_key: KEYS.sshHttp[0] })).toBe(200);
    await until("B's step 1", () => b.helper.opens().some((o) => o.step === 1 && o.app === "ssh" && o.ip === CLIENT));
    expect(await knock(b.step2, HTTPS_PATH, { app: "ssh", access_key: KEYS.sshHttps[0] })).toBe(200);
    expect(b.helper.opens()).toEqual([
      { step: 1, app: "ssh", ip: CLIENT },
      { step: 2, app: "ssh", ip: CLIENT },
    ]);
    // A opened its own step 1 once, and did not re-open it for its own announcement
    expect(a.helper.opens()).toEqual([{ step: 1, app: "ssh", ip: CLIENT }]);
  });

  it("a step-1 window from the store must fit this gateway: wrong key of the pair, unknown app, garbage → nothing opens", async () => {
    const b = await gateway();
    const deadline = Date.now() + 10_000;
    await raw.publish(`${prefix}:events`, JSON.stringify({ kind: "step1", app: "ssh", ip: CLIENT, keyIndex: 5, deadline }));
    await raw.publish(`${prefix}:events`, JSON.stringify({ kind: "step1", app: "nope", ip: CLIENT, keyIndex: 0, deadline }));
    await raw.publish(`${prefix}:events`, JSON.stringify({ kind: "step1", app: "ssh", ip: "10.0.0.0/8", keyIndex: 0, deadline }));
    await raw.publish(`${prefix}:events`, "not json");
    // a record in the store that says keyIndex 0 lets only key 0 of ssh through step 2
    await raw.set(`${prefix}:step1:openvpn:${CLIENT}`, JSON.stringify({ app: "openvpn", ip: CLIENT, keyIndex: 1, deadline }), "PX", 10_000);
    await raw.publish(`${prefix}:events`, JSON.stringify({ kind: "step1", app: "ssh", ip: "198.51.100.9", keyIndex: 0, deadline }));
    await until("the valid window", () => b.helper.opens().length > 0);
    expect(b.helper.opens()).toEqual([{ step: 1, app: "ssh", ip: "198.51.100.9" }]);
    expect(await knock(b.step2, HTTPS_PATH, { app: "openvpn", access_key: KEYS.openvpnHttps[0] })).toBe(403);
    expect(await knock(b.step2, HTTPS_PATH, { app: "openvpn", access_key: KEYS.openvpnHttps[1] })).toBe(200);
  });
});
