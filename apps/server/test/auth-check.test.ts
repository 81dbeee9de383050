// The auth-check listener (reverse proxies' sub-requests) through inject(): who is asked about, and
// that nothing but a live lease of the named app for the named client answers 204.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { HelperCallError } from "@knockport/helper-client";
import { buildAuthCheckApp, listenAuthCheck } from "../src/auth-check.js";
import { FakeHelper, makeConfig } from "./fixtures.js";

const CLIENT = "198.51.100.7";
const CLIENT6 = "2001:db8:7::7";
const BYSTANDER = "198.51.100.9";

const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

async function checker(opts: { global?: Record<string, unknown>; unixSocket?: boolean } = {}): Promise<{ app: FastifyInstance; helper: FakeHelper; logs: Record<string, unknown>[] }> {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const helper = new FakeHelper();
  helper.leases.add(`openvpn|${CLIENT}`);
  helper.leases.add(`ssh|${CLIENT6}`);
  const app = await buildAuthCheckApp({ config: makeConfig(opts.global), helper, unixSocket: opts.unixSocket === true, logger: pino({ level: "debug" }, sink) });
  apps.push(app);
  return { app, helper, logs };
}

async function get(app: FastifyInstance, url: string, headers: Record<string, string | string[]> = {}, remoteAddress = "127.0.0.1", method: "GET" | "POST" | "HEAD" = "GET") {
  const res = await app.inject({ method, url, headers, remoteAddress });
  return { status: res.statusCode, body: res.body, cache: res.headers["cache-control"] };
}

describe("GET /check?app=A", () => {
  it("204 only for the client holding a lease of that app; 403 for a bystander, another app, an unknown app", async () => {
    const { app, helper } = await checker();
    expect(await get(app, "/check?app=openvpn", { "x-real-ip": CLIENT })).toEqual({ status: 204, body: "", cache: "no-store" });
    expect((await get(app, "/check?app=openvpn", { "x-real-ip": BYSTANDER })).status).toBe(403);
    expect((await get(app, "/check?app=ssh", { "x-real-ip": CLIENT })).status, "the client's lease is for openvpn").toBe(403);
    expect((await get(app, "/check?app=ssh", { "x-forwarded-for": `203.0.113.1, ${CLIENT6}` }, "::1")).status, "last X-Forwarded-For hop").toBe(204);
    expect((await get(app, "/check?app=ssh", { "x-forwarded-for": `${CLIENT6}, ${BYSTANDER}` })).status, "an earlier hop is whatever the client wrote").toBe(403);
    expect(await get(app, "/check?app=nope", { "x-real-ip": CLIENT })).toEqual({ status: 403, body: "Forbidden\n", cache: "no-store" });
    expect(helper.calls).toEqual([
      { method: "check", params: { app: "openvpn", ip: CLIENT } },
      { method: "check", params: { app: "openvpn", ip: BYSTANDER } },
      { method: "check", params: { app: "ssh", ip: CLIENT } },
      { method: "check", params: { app: "ssh", ip: CLIENT6 } },
      { method: "check", params: { app: "ssh", ip: BYSTANDER } },
    ]);
  });

  it("400 when the proxy names no client, or names it twice or badly; never a fallback to the proxy's own address", async () => {
    const { app, helper } = await checker();
    helper.leases.add("openvpn|127.0.0.1");
    const cases: Record<string, string | string[]>[] = [{}, { "x-real-ip": "not-an-ip" }, { "x-real-ip": "224.0.0.1" }, { "x-real-ip": [CLIENT, CLIENT] }, { "x-forwarded-for": "" }];
    for (const headers of cases) {
      expect((await get(app, "/check?app=openvpn", headers)).status, JSON.stringify(headers)).toBe(400);
    }
    expect(helper.calls).toEqual([]);
  });

  it("400 for a bad query: no app, two apps, extra parameters, a name no app can have", async () => {
    const { app, helper } = await checker();
    for (const url of ["/check", "/check?app=", "/check?app=openvpn&app=ssh", "/check?app=openvpn&ip=198.51.100.7", `/check?app=${"a".repeat(33)}`, "/check?app=..%2Fx"]) {
      expect((await get(app, url, { "x-real-ip": CLIENT })).status, url).toBe(400);
    }
    expect(helper.calls).toEqual([]);
  });

  it("only GET /check: other paths 404, POST 404; HEAD works like GET", async () => {
    const { app } = await checker();
    expect((await get(app, "/", { "x-real-ip": CLIENT })).status).toBe(404);
    expect((await get(app, "/check/", { "x-real-ip": CLIENT })).status).toBe(404);
    expect((await get(app, "/check?app=openvpn", { "x-real-ip": CLIENT }, "127.0.0.1", "POST")).status).toBe(404);
    expect((await get(app, "/check?app=openvpn", { "x-real-ip": CLIENT }, "127.0.0.1", "HEAD")).status).toBe(204);
  });

  it("a peer that is not a trusted proxy gets 403 whatever it claims, and the helper is not asked", async () => {
    const { app, helper } = await checker({ global: { waf_http_port: 80, waf_https_port: 443, waf_trusted_ips: ["10.0.0.5"] } });
    expect((await get(app, "/check?app=openvpn", { "x-real-ip": CLIENT }, "127.0.0.1")).status, "loopback is not trusted once a list is given").toBe(403);
    expect((await get(app, "/check?app=openvpn", { "x-real-ip": CLIENT }, CLIENT)).status, "the client itself").toBe(403);
    expect(helper.calls).toEqual([]);
    expect((await get(app, "/check?app=openvpn", { "x-real-ip": CLIENT }, "10.0.0.5")).status).toBe(204);
  });

  it("WAF mode off: loopback peers are the trusted proxies", async () => {
    const { app } = await checker();
    expect((await get(app, "/check?app=openvpn", { "x-real-ip": CLIENT }, "::ffff:127.0.0.1")).status).toBe(204);
    expect((await get(app, "/check?app=openvpn", { "x-real-ip": CLIENT }, "192.0.2.1")).status).toBe(403);
  });

  it("on a Unix socket every peer is the proxy (the socket's mode decides who connects)", async () => {
    const { app } = await checker({ unixSocket: true });
    // inject() gives a remote address; on a real Unix socket there is none, which must not matter.
    expect((await get(app, "/check?app=openvpn", { "x-real-ip": CLIENT }, "192.0.2.1")).status).toBe(204);
    expect((await get(app, "/check?app=openvpn", {}, "192.0.2.1")).status).toBe(400);
  });

  it("a helper failure is 403, logged as an error; the answer is never 204 on doubt", async () => {
    const { app, helper, logs } = await checker();
    helper.failNext(new HelperCallError("HELPER_UNREACHABLE", "connect ENOENT", undefined, undefined, false));
    expect((await get(app, "/check?app=openvpn", { "x-real-ip": CLIENT })).status).toBe(403);
    expect(logs.filter((l) => l.event === "helper.failed")).toHaveLength(1);
    expect((await get(app, "/check?app=openvpn", { "x-real-ip": CLIENT })).status, "the next check asks again").toBe(204);
  });
});

describe("listenAuthCheck on a Unix socket", () => {
  it("answers over the socket (no peer address), mode 0660, replaces a stale socket, refuses to remove a regular file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kp-auth-"));
    try {
      const path = join(dir, "auth.sock");
      // a stale socket file: bound by a process that ended without unlinking it (as a killed server leaves it)
      execFileSync("python3", ["-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", path]);
      expect(statSync(path).isSocket()).toBe(true);
      const { app } = await checker({ unixSocket: true });
      await listenAuthCheck(app, { kind: "unix", path });
      expect(statSync(path).mode & 0o777).toBe(0o660);
      const status = (headers: Record<string, string>): Promise<number> =>
        new Promise((resolve, reject) => {
          const req = request({ socketPath: path, path: "/check?app=openvpn", headers }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.on("error", reject);
          req.end();
        });
      expect(await status({ "x-real-ip": CLIENT })).toBe(204);
      expect(await status({ "x-real-ip": BYSTANDER })).toBe(403);
      const file = join(dir, "not-a-socket");
      writeFileSync(file, "keep me");
      const { app: other } = await checker({ unixSocket: true });
      await expect(listenAuthCheck(other, { kind: "unix", path: file })).rejects.toThrow(/auth-check listener .*not-a-socket: cannot listen \(EADDRINUSE\)/);
      expect(statSync(file).isFile()).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
