import { Writable } from "node:stream";
import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { HelloResult } from "@knockport/protocol";
import { buildKnockApp, createKnockContext } from "../src/app.js";
import { ClientAddressResolver } from "../src/client-address.js";
import { compareWithHelper } from "../src/startup-checks.js";
import { FakeHelper, HTTPS_PATH, HTTP_PATH, KEYS, makeConfig } from "./fixtures.js";

const CLIENT = "198.51.100.7";
const CLIENT6 = "2001:db8:7::7";
const FORM = { "content-type": "application/x-www-form-urlencoded" };
const STEP1_BODY = new URLSearchParams({ app: "openvpn", access_key: KEYS.openvpnHttp[0] }).toString();
const STEP2_BODY = new URLSearchParams({ app: "openvpn", access_key: KEYS.openvpnHttps[0] }).toString();

interface Harness {
  helper: FakeHelper;
  step1: FastifyInstance;
  step2: FastifyInstance;
  logs: Record<string, unknown>[];
}
const open: Harness[] = [];
afterEach(async () => {
  for (const h of open.splice(0)) await Promise.all([h.step1.close(), h.step2.close()]);
});

async function harness(global: Record<string, unknown> = { waf_http_port: 80, waf_https_port: 443 }): Promise<Harness> {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logger = pino({ level: "info" }, sink);
  const helper = new FakeHelper();
  const context = createKnockContext(makeConfig(global), helper);
  const h = { helper, logs, step1: await buildKnockApp({ step: 1, context, logger }), step2: await buildKnockApp({ step: 2, context, logger }) };
  open.push(h);
  return h;
}

async function post(app: FastifyInstance, path: string, body: string, remoteAddress: string, headers: Record<string, string | string[]> = {}) {
  const res = await app.inject({ method: "POST", url: path, payload: body, headers: { ...FORM, ...headers }, remoteAddress });
  return res.statusCode;
}

describe("WAF mode: the client address", () => {
  it("a trusted proxy's X-Real-IP is the client: step 1 and step 2 open for it, never for the proxy", async () => {
    const h = await harness();
    expect(await post(h.step1, HTTP_PATH, STEP1_BODY, "127.0.0.1", { "x-real-ip": CLIENT, "x-forwarded-for": CLIENT })).toBe(200);
    const step2 = await h.step2.inject({ method: "POST", url: HTTPS_PATH, payload: STEP2_BODY, headers: { ...FORM, "x-real-ip": CLIENT }, remoteAddress: "::ffff:127.0.0.1" });
    expect({ status: step2.statusCode, address: /\naddress=([^\n]*)\n/.exec(step2.body)?.[1] }, "step 2 names the client, not the proxy").toEqual({ status: 200, address: CLIENT });
    expect(h.helper.opens()).toEqual([
      { step: 1, app: "openvpn", ip: CLIENT },
      { step: 2, app: "openvpn", ip: CLIENT },
    ]);
    const knocks = h.logs.filter((l) => l.event === "knock.accepted" && l.outcome === "ok");
    expect(knocks.map((l) => [l.ip, l.proxy])).toEqual([[CLIENT, "127.0.0.1"], [CLIENT, "127.0.0.1"]]);
  });

  it("X-Real-IP wins over X-Forwarded-For; without it the LAST X-Forwarded-For hop counts (earlier hops are the client's own words)", async () => {
    const h = await harness();
    await post(h.step1, HTTP_PATH, STEP1_BODY, "127.0.0.1", { "x-real-ip": CLIENT, "x-forwarded-for": "203.0.113.66" });
    await post(h.step1, HTTP_PATH, STEP1_BODY, "127.0.0.1", { "x-forwarded-for": `203.0.113.66, 10.1.1.1,${CLIENT6}` });
    await post(h.step1, HTTP_PATH, STEP1_BODY, "127.0.0.1", { "x-forwarded-for": ["203.0.113.66", ` ${CLIENT} `] });
    expect(h.helper.opens().map((o) => o.ip)).toEqual([CLIENT, CLIENT6, CLIENT]);
  });

  it("an IPv6 proxy (::1) and an IPv6 client work; the address is normalised", async () => {
    const h = await harness();
    expect(await post(h.step1, HTTP_PATH, STEP1_BODY, "::1", { "x-real-ip": "2001:DB8:7:0:0:0:0:7" })).toBe(200);
    expect(h.helper.opens()).toEqual([{ step: 1, app: "openvpn", ip: CLIENT6 }]);
  });

  it("an untrusted peer's headers are ignored: a spoofed X-Real-IP / X-Forwarded-For opens nothing for the named address", async () => {
    const h = await harness();
    expect(await post(h.step1, HTTP_PATH, STEP1_BODY, CLIENT, { "x-real-ip": "203.0.113.66", "x-forwarded-for": "203.0.113.66" })).toBe(200);
    expect(await post(h.step1, HTTP_PATH, STEP1_BODY, "10.0.0.9", { "x-real-ip": "garbage" })).toBe(200);
    expect(h.helper.opens().map((o) => o.ip)).toEqual([CLIENT, "10.0.0.9"]);
  });

  it.each([
    [{}, "the trusted proxy sent neither X-Real-IP nor X-Forwarded-For"],
    [{ "x-real-ip": "" }, "X-Real-IP is not a unicast IPv4/IPv6 address"],
    [{ "x-real-ip": "unknown" }, "X-Real-IP is not a unicast IPv4/IPv6 address"],
    [{ "x-real-ip": `${CLIENT}:4242` }, "X-Real-IP is not a unicast IPv4/IPv6 address"],
    [{ "x-real-ip": `[${CLIENT6}]` }, "X-Real-IP is not a unicast IPv4/IPv6 address"],
    [{ "x-real-ip": "fe80::1%eth0" }, "X-Real-IP is not a unicast IPv4/IPv6 address"],
    [{ "x-real-ip": "0.0.0.0" }, "X-Real-IP is not a unicast IPv4/IPv6 address"],
    [{ "x-real-ip": "224.0.0.1" }, "X-Real-IP is not a unicast IPv4/IPv6 address"],
    [{ "x-real-ip": [CLIENT, "203.0.113.66"] }, "X-Real-IP is not a unicast IPv4/IPv6 address"],
    [{ "x-forwarded-for": `${CLIENT},` }, "X-Forwarded-For (last hop) is not a unicast IPv4/IPv6 address"],
    [{ "x-forwarded-for": `${CLIENT}, unknown` }, "X-Forwarded-For (last hop) is not a unicast IPv4/IPv6 address"],
  ])("a trusted proxy with %j gets a 400 and a log line, and nothing opens (never a fallback to the proxy's address)", async (headers, reason) => {
    const h = await harness();
    for (const [app, path, body] of [[h.step1, HTTP_PATH, STEP1_BODY], [h.step2, HTTPS_PATH, STEP2_BODY]] as const) {
      expect(await post(app, path, body, "127.0.0.1", headers as Record<string, string>)).toBe(400);
    }
    expect(h.helper.calls).toEqual([]);
    const lines = h.logs.filter((l) => l.event === "knock.bad_proxy_header");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ status: 400, proxy: "127.0.0.1", reason });
  });

  it("--waf-trusted-ips networks: a peer inside is trusted, one outside is not", async () => {
    const h = await harness({ waf_http_port: 80, waf_https_port: 443, waf_trusted_ips: ["10.9.0.0/16", "fd00:9::/64"] });
    await post(h.step1, HTTP_PATH, STEP1_BODY, "10.9.200.1", { "x-real-ip": CLIENT });
    await post(h.step1, HTTP_PATH, STEP1_BODY, "fd00:9::5", { "x-real-ip": CLIENT6 });
    await post(h.step1, HTTP_PATH, STEP1_BODY, "10.10.0.1", { "x-real-ip": CLIENT });
    // an explicit list replaces the loopback default: loopback's headers are ignored now
    await post(h.step1, HTTP_PATH, STEP1_BODY, "127.0.0.1", { "x-real-ip": CLIENT });
    expect(h.helper.opens().map((o) => o.ip)).toEqual([CLIENT, CLIENT6, "10.10.0.1", "127.0.0.1"]);
  });

  it("without WAF mode headers are never read, not even from loopback", async () => {
    const h = await harness({});
    await post(h.step1, HTTP_PATH, STEP1_BODY, "127.0.0.1", { "x-real-ip": CLIENT, "x-forwarded-for": CLIENT });
    await post(h.step1, HTTP_PATH, STEP1_BODY, "127.0.0.1", {});
    expect(h.helper.opens().map((o) => o.ip)).toEqual(["127.0.0.1", "127.0.0.1"]);
  });

  it("the rate limit counts the client behind the proxy, not the proxy", async () => {
    const h = await harness({ waf_http_port: 80, waf_https_port: 443, step1_2_rate_limit_per_minute: 2 });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i += 1) statuses.push(await post(h.step1, HTTP_PATH, STEP1_BODY, "127.0.0.1", { "x-real-ip": CLIENT }));
    statuses.push(await post(h.step1, HTTP_PATH, STEP1_BODY, "127.0.0.1", { "x-real-ip": "203.0.113.5" }));
    expect(statuses).toEqual([200, 200, 429, 200]);
  });
});

describe("ClientAddressResolver", () => {
  it("matches IPv4-mapped peers against IPv4 networks and never trusts without a list", () => {
    const r = new ClientAddressResolver(makeConfig({ waf_http_port: 80, waf_https_port: 443 }).waf?.trustedProxies);
    expect(r.resolve("::ffff:127.0.0.1", { "x-real-ip": CLIENT })).toEqual({ ok: true, ip: CLIENT, viaProxy: true, proxy: "127.0.0.1" });
    expect(r.resolve("127.0.0.2", { "x-real-ip": CLIENT })).toEqual({ ok: true, ip: "127.0.0.2", viaProxy: false });
    expect(new ClientAddressResolver(undefined).resolve("127.0.0.1", { "x-real-ip": CLIENT })).toEqual({ ok: true, ip: "127.0.0.1", viaProxy: false });
  });
});

describe("startup check: helper and server agree on WAF mode", () => {
  const hello = (waf?: HelloResult["waf"]): HelloResult => ({
    version: "t",
    protocolVersion: 1,
    firewallType: "nftables",
    httpPort: 8080,
    httpsPort: 8443,
    ...(waf ? { waf } : {}),
    services: [
      { app: "openvpn", port: 1194, protocol: "udp" },
      { app: "ssh", port: 2222, protocol: "tcp" },
    ],
  });
  it("refuses a mismatch in either direction, accepts the same ports", () => {
    const waf = makeConfig({ waf_http_port: 80, waf_https_port: 443 });
    expect(compareWithHelper(waf, hello({ httpPort: 80, httpsPort: 443 }))).toEqual([]);
    expect(compareWithHelper(waf, hello())).toEqual([
      "helper's WAF ports (HTTP/HTTPS) are off, the server's 80/443; give both the same --waf-http-port and --waf-https-port",
    ]);
    expect(compareWithHelper(makeConfig(), hello({ httpPort: 80, httpsPort: 443 }))).toHaveLength(1);
    expect(compareWithHelper(makeConfig(), hello())).toEqual([]);
  });
});
