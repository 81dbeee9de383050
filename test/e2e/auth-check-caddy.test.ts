// End-to-end auth-check listener behind Caddy: the Debian caddy (2.6) in srv runs
// deploy/caddy/auth-check.Caddyfile itself (forward_auth to the server's --auth-check-listen) in front
// of a small web service on loopback; the real helper and server; real curl from cli (the knocker) and
// cli2 (a bystander) through Caddy.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeKnockport } from "./describe-knockport.js";
import { PROBE_MS, REPO_ROOT, e2eFirewalls, type Family } from "./harness.js";
import { knock, knockUrl, probe, sleep, type AppSpec, type HostName, type ManagedProcess } from "./testbed.js";

const CADDY = "/usr/bin/caddy";
const CADDY_PORT = 9443;
const CHECK_LISTEN = "127.0.0.1:9181";
const WEB_PORT = 18082;
const WEB_BODY = "the web app\n";

const stack = { duration: 8, step2HttpsDuration: 5, rateLimitPerMinute: 1000, serverArgs: ["--auth-check-listen", CHECK_LISTEN] };

describeKnockport("auth-check listener behind the real Caddy ($firewall, real kernel)", e2eFirewalls(), stack, (h) => {
  let web: AppSpec;
  let caddy: ManagedProcess;
  let dir = "";

  /** GET https://srv:CADDY_PORT/PATH through Caddy from `host`: "STATUS body" (body only for 200). */
  const visit = async (host: HostName, family: Family = 4, headers: string[] = [], path = "/"): Promise<string> => {
    const r = await knock(h.topo, host, { step: 2, url: knockUrl("https", h.srvIp(family), CADDY_PORT, path), headers });
    return r.status === 200 ? `200 ${r.body}` : String(r.status ?? `curl exit ${String(r.curlExit)}`);
  };

  beforeAll(async () => {
    web = h.ssh;
    dir = mkdtempSync(join(tmpdir(), "kp-caddy-"));
    chmodSync(dir, 0o755);
    const replace = (text: string, from: string, to: string): string => {
      if (!text.includes(from)) throw new Error(`deploy/caddy/auth-check.Caddyfile no longer contains "${from}"; update this test`);
      return text.split(from).join(to);
    };
    let site = readFileSync(join(REPO_ROOT, "deploy/caddy/auth-check.Caddyfile"), "utf8");
    for (const [from, to] of [
      // Our certificate instead of one Caddy would fetch (nothing may leave the namespaces).
      ["web.example.org {", `https://:${CADDY_PORT} {\n\ttls ${h.stack.certPath} ${h.stack.keyPath}`],
      ["forward_auth 127.0.0.1:9180 {", `forward_auth ${CHECK_LISTEN} {`],
      ["uri /check?app=web", `uri /check?app=${web.name}`],
      ["reverse_proxy 127.0.0.1:8081", `reverse_proxy 127.0.0.1:${WEB_PORT}`],
    ] as const) {
      site = replace(site, from, to);
    }
    // Global options: no admin endpoint, no certificate automation, state in the temporary directory;
    // the web service is a second site, on loopback only and for any Host (reverse_proxy passes the client's).
    const caddyfile = [
      "{",
      "\tadmin off",
      "\tauto_https off",
      `\tstorage file_system ${dir}/data`,
      "}",
      site,
      `http://:${WEB_PORT} {`,
      "\tbind 127.0.0.1",
      `\trespond "${WEB_BODY.trim()}\n" 200`,
      "}",
      "",
    ].join("\n");
    const file = join(dir, "Caddyfile");
    writeFileSync(file, caddyfile);
    caddy = h.topo.spawn("srv", CADDY, ["run", "--config", file, "--adapter", "caddyfile"], {
      env: { HOME: dir, XDG_DATA_HOME: join(dir, "data"), XDG_CONFIG_HOME: join(dir, "config") },
      label: "caddy",
    });
    for (let i = 0; i < 100; i += 1) {
      if (caddy.exitInfo !== undefined) throw new Error(`caddy exited at start:\n${caddy.tail(40)}`);
      if ((await probe(h.topo, "srv", "tcp-connect", h.srvIp(4), CADDY_PORT, PROBE_MS)).state === "open") return;
      await sleep(100);
    }
    throw new Error(`caddy did not listen on ${CADDY_PORT} within ~10 s:\n${caddy.tail(40)}`);
  });
  afterAll(async () => {
    await caddy?.stop(2000).catch(() => undefined);
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
  });

  it("1. before any knock Caddy answers 403 to knocker and bystander, while the web service itself answers", async () => {
    expect({ cli: await visit("cli"), cli2: await visit("cli2"), cli6: await visit("cli", 6) }).toEqual({ cli: "403", cli2: "403", cli6: "403" });
    const upstream = await knock(h.topo, "srv", { step: 2, url: `http://127.0.0.1:${WEB_PORT}/` });
    expect(`${String(upstream.status)} ${upstream.body}`).toBe(`200 ${WEB_BODY}`);
  });

  it("2. after a knock the knocker gets the web app (200); the bystander, the knocker's other family and a spoofed X-Real-IP / X-Forwarded-For stay 403", async () => {
    await h.fullKnock("cli", web, 4);
    const spoof = [`X-Real-IP: ${h.ip("cli", 4)}`, `X-Forwarded-For: ${h.ip("cli", 4)}`];
    expect({
      cli: await visit("cli"),
      // forward_auth's uri replaces the request's own path and query in the check
      "cli, another path and query": await visit("cli", 4, [], "/a/b?app=other&x=1"),
      cli2: await visit("cli2"),
      "cli v6 (not knocked)": await visit("cli", 6),
      "cli2 claiming cli": await visit("cli2", 4, spoof),
    }).toEqual({ cli: `200 ${WEB_BODY}`, "cli, another path and query": `200 ${WEB_BODY}`, cli2: "403", "cli v6 (not knocked)": "403", "cli2 claiming cli": "403" });
  });

  it("3. once the lease has expired the knocker gets 403 again", async () => {
    await h.waitExpired(h.leaseKey("cli", 4, web.name));
    expect(await visit("cli")).toBe("403");
  });
});
