// End-to-end auth-check listener: the Debian nginx in srv runs deploy/nginx/auth-check.conf itself
// (auth_request to the server's --auth-check-listen) in front of a small web service on loopback; the
// real helper and server; real curl from cli (the knocker) and cli2 (a bystander) through nginx.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, expect, it } from "vitest";
import { describeKnockport } from "./describe-knockport.js";
import { REPO_ROOT, e2eFirewalls, type Family } from "./harness.js";
import { knock, knockUrl, type AppSpec, type HostName } from "./testbed.js";

const NGINX_PORT = 443;
const CHECK_LISTEN = "127.0.0.1:9180";
const WEB_PORT = 18081;
const WEB_BODY = "the web app\n";

const stack = { duration: 8, step2HttpsDuration: 5, rateLimitPerMinute: 1000, serverArgs: ["--auth-check-listen", CHECK_LISTEN] };

describeKnockport("auth-check listener behind the real nginx ($firewall, real kernel)", e2eFirewalls(), stack, (h) => {
  let web: AppSpec;

  /** GET https://srv:443/ through nginx from `host`: "STATUS body" (body only for 200). */
  const visit = async (host: HostName, family: Family = 4, headers: string[] = []): Promise<string> => {
    const r = await knock(h.topo, host, { step: 2, url: knockUrl("https", h.srvIp(family), NGINX_PORT, "/"), headers });
    return r.status === 200 ? `200 ${r.body}` : String(r.status ?? `curl exit ${String(r.curlExit)}`);
  };

  beforeAll(async () => {
    web = h.ssh;
    const replace = (text: string, from: string, to: string): string => {
      if (!text.includes(from)) throw new Error(`deploy/nginx/auth-check.conf no longer contains "${from}"; update this test`);
      return text.split(from).join(to);
    };
    let servers = readFileSync(join(REPO_ROOT, "deploy/nginx/auth-check.conf"), "utf8");
    for (const [from, to] of [
      ["/etc/ssl/certs/web.example.org.pem;", `${h.stack.certPath};`],
      ["/etc/ssl/private/web.example.org.key;", `${h.stack.keyPath};`],
      ["http://127.0.0.1:8081;", `http://127.0.0.1:${WEB_PORT};`],
      ["http://127.0.0.1:9180/check?app=web;", `http://${CHECK_LISTEN}/check?app=${web.name};`],
    ] as const) {
      servers = replace(servers, from, to);
    }
    // The web service: an nginx server on loopback only.
    servers += `\nserver { listen 127.0.0.1:${WEB_PORT}; location / { default_type text/plain; return 200 "${WEB_BODY.trim()}\\n"; } }\n`;
    await h.spawnNginx(undefined, servers, [NGINX_PORT]);
  });

  it("1. before any knock nginx answers 403 to knocker and bystander; the listener itself answers 400 to a request naming no client", async () => {
    expect({ cli: await visit("cli"), cli2: await visit("cli2"), cli6: await visit("cli", 6) }).toEqual({ cli: "403", cli2: "403", cli6: "403" });
    const direct = await knock(h.topo, "srv", { step: 2, url: `http://${CHECK_LISTEN}/check?app=${web.name}` });
    expect(direct.status).toBe(400);
    // Control: the web service answers on loopback, so the 403s above are the check's doing.
    const upstream = await knock(h.topo, "srv", { step: 2, url: `http://127.0.0.1:${WEB_PORT}/` });
    expect(`${String(upstream.status)} ${upstream.body}`).toBe(`200 ${WEB_BODY}`);
  });

  it("2. after a knock the knocker gets the web app (200); the bystander, the knocker's other family and a spoofed X-Real-IP stay 403", async () => {
    await h.fullKnock("cli", web, 4);
    const spoof = [`X-Real-IP: ${h.ip("cli", 4)}`, `X-Forwarded-For: ${h.ip("cli", 4)}`];
    expect({
      cli: await visit("cli"),
      cli2: await visit("cli2"),
      "cli v6 (not knocked)": await visit("cli", 6),
      "cli2 claiming cli": await visit("cli2", 4, spoof),
    }).toEqual({ cli: `200 ${WEB_BODY}`, cli2: "403", "cli v6 (not knocked)": "403", "cli2 claiming cli": "403" });
  });

  it("3. once the lease has expired the knocker gets 403 again", async () => {
    await h.waitExpired(h.leaseKey("cli", 4, web.name));
    expect(await visit("cli")).toBe("403");
  });
});
