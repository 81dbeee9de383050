// End-to-end WAF mode: the Debian nginx in srv on the public ports 80/443, configured from
// deploy/nginx/knockport.conf; the real knockport-helper and knockport-server (both with
// --waf-http-port 80 --waf-https-port 443, the server listening on every address) behind it on
// 8080/8443. Knocks with real curl from cli (knocker) and cli2 (bystander), checks with real connects.
import { beforeAll, expect, it } from "vitest";
import { describeKnockport, type KnockportCase, type KnockportOptions } from "./describe-knockport.js";
import { e2eFirewalls, expectOk, expectStep1NoReply, states } from "./harness.js";
import { formBody, knock, knockUrl, listTcpSockets, probe, sleep, type AppSpec, type PortState } from "./testbed.js";

const WAF = { httpPort: 80, httpsPort: 443 };

// vyos: a router whose input filter drops by default, so VyOS's own chain must let nginx's ports
// (and, over lo, nginx's upstream connections to KnockPort) through.
const stack = ({ firewall }: KnockportCase): KnockportOptions => ({
  duration: 30,
  step2HttpsDuration: 20,
  rateLimitPerMinute: 1000,
  waf: WAF,
  ...(firewall === "vyos" ? { vyosInputDefault: "drop" as const } : {}),
});

describeKnockport("WAF mode: nginx in front of KnockPort ($firewall, real kernel, real nginx)", e2eFirewalls(), stack, (h, { firewall }) => {
  let ssh: AppSpec;
  /** KnockPort's own port from `host` (tcp connect). */
  const own = async (host: "cli" | "cli2" | "srv", port: number, family: 4 | 6): Promise<PortState> =>
    (await probe(h.topo, host, "tcp-connect", h.srvIp(family), port, 400)).state;

  beforeAll(() => {
    ssh = h.ssh;
  });

  it("1. KnockPort's own ports are unreachable from the clients (but listening: srv reaches them), nginx's HTTPS port is closed before a knock", async () => {
    // Control: KnockPort listens on every address, nginx too (srv reaches both over lo).
    expect(
      await states({
        "srv own http v4": () => own("srv", h.cfg.httpPort, 4),
        "srv own https v6": () => own("srv", h.cfg.httpsPort, 6),
        "srv nginx https v4": () => h.https("srv", 4),
      }),
    ).toEqual({ "srv own http v4": "open", "srv own https v6": "open", "srv nginx https v4": "open" });
    const checks: Record<string, () => Promise<PortState>> = {};
    for (const host of ["cli", "cli2"] as const) {
      for (const family of [4, 6] as const) {
        checks[`${host} own http v${family}`] = () => own(host, h.cfg.httpPort, family);
        checks[`${host} own https v${family}`] = () => own(host, h.cfg.httpsPort, family);
        checks[`${host} nginx https v${family}`] = () => h.https(host, family);
        checks[`${host} ssh v${family}`] = () => h.svc(host, ssh, family);
      }
    }
    const seen = await states(checks);
    expect(seen).toEqual(Object.fromEntries(Object.keys(checks).map((k) => [k, "closed"])));
    // Control: nginx answers and proxies to KnockPort (srv reaches it over lo, outside the stealth
    // rules), so a client's unanswered step 1 below is the firewall's doing.
    const wrongKey = formBody({ app: ssh.name, access_key: "wrong-key-0000000" });
    const control = await knock(h.topo, "srv", { step: 1, url: knockUrl("http", h.srvIp(4), h.knockHttpPort, h.cfg.httpPostPath), body: wrongKey });
    expect({ exit: control.curlExit, body: control.body }).toEqual({ exit: 0, body: "Forbidden\n" });
  });

  it("2. a knock through nginx: step 1 gets no answer (stealth holds on nginx's port), then nginx's HTTPS port and the service open for the knocker only", async () => {
    const s1 = await h.step1("cli", ssh);
    expectStep1NoReply(s1, "step 1 through nginx");
    expect(await states({ "cli https": () => h.https("cli"), "cli2 https": () => h.https("cli2") })).toEqual({ "cli https": "open", "cli2 https": "closed" });
    const s2 = await h.step2("cli", ssh);
    expectOk(s2, "step 2 through nginx");
    expect(
      await states({ "cli ssh": () => h.svc("cli", ssh), "cli2 ssh": () => h.svc("cli2", ssh), "cli own http": () => own("cli", h.cfg.httpPort, 4) }),
    ).toEqual({ "cli ssh": "open", "cli2 ssh": "closed", "cli own http": "closed" });
  });

  it("3. the grant is for the client's address, never nginx's (helper's lease list, server log)", async () => {
    const leases = await h.stack.status();
    const cliIp = h.ip("cli", 4);
    expect(leases.filter((l) => l.app === ssh.name).map((l) => `${l.ip} step ${l.step}`).sort()).toEqual([`${cliIp} step 1`, `${cliIp} step 2`]);
    expect(leases.filter((l) => l.step === 1).map((l) => l.port)).toEqual([WAF.httpsPort]);
    const proxyish = new Set(["127.0.0.1", "::1", h.srvIp(4), h.srvIp(6)]);
    expect(leases.filter((l) => proxyish.has(l.ip))).toEqual([]);
    const knockLines = h.stack.server.lines.map((l) => l.line).filter((t) => t.includes('"event":"knock.accepted"') && t.includes('"outcome":"ok"'));
    expect(knockLines.length).toBeGreaterThanOrEqual(2);
    for (const line of knockLines) expect(JSON.parse(line)).toMatchObject({ ip: cliIp, proxy: "127.0.0.1" });
  });

  it("4. a spoofed X-Real-IP / X-Forwarded-For from the bystander is overwritten by nginx: nothing opens for the claimed address", async () => {
    const body = formBody({ app: ssh.name, access_key: ssh.accessKeysHttp[0] ?? "" });
    const claimed = h.ip("cli", 6); // the knocker's IPv6 address, which has no lease yet
    const s1 = await knock(h.topo, "cli2", {
      step: 1,
      url: knockUrl("http", h.srvIp(4), h.knockHttpPort, h.cfg.httpPostPath),
      body,
      headers: [`X-Real-IP: ${claimed}`, `X-Forwarded-For: ${claimed}`],
    });
    expectStep1NoReply(s1, "spoofing step 1 through nginx");
    const leases = await h.stack.status();
    expect(leases.filter((l) => l.ip === claimed)).toEqual([]);
    // nginx named the real peer: the bystander's own address got the step-1 lease
    expect(leases.filter((l) => l.step === 1).map((l) => l.ip)).toContain(h.ip("cli2", 4));
    expect(await h.https("cli", 6)).toBe("closed");
  });

  it("5. an IPv6 knock through nginx opens the service for the knocker's IPv6 address", async () => {
    await h.fullKnock("cli", ssh, 6);
    expect(await states({ "cli ssh v6": () => h.svc("cli", ssh, 6), "cli2 ssh v6": () => h.svc("cli2", ssh, 6) })).toEqual({ "cli ssh v6": "open", "cli2 ssh v6": "closed" });
    const leases = await h.stack.status();
    expect(leases.filter((l) => l.app === ssh.name && l.step === 2).map((l) => l.ip).sort()).toEqual([h.ip("cli", 4), h.ip("cli", 6)].sort());
  });

  it("6. the documented cost: nginx cannot reset after answering, so its socket for a step-1 knock lingers retransmitting the dropped answer", async () => {
    const localPort = 40000 + Math.floor(Math.random() * 10000);
    const url = knockUrl("http", h.srvIp(4), h.knockHttpPort, h.cfg.httpPostPath);
    const body = formBody({ app: ssh.name, access_key: ssh.accessKeysHttp[0] ?? "" });
    expectStep1NoReply(await knock(h.topo, "cli2", { step: 1, url, body, localPort }), "cli2 step 1 with a fixed source port");
    await sleep(1000);
    const peer = `${h.ip("cli2", 4)}:${localPort}`;
    const nginxSockets = (await listTcpSockets(h.topo, h.knockHttpPort)).filter((l) => l.includes(peer));
    console.log(`[waf ${firewall}] nginx sockets for ${peer} 1 s after step 1: ${JSON.stringify(nginxSockets)}`);
    expect(nginxSockets.map((l) => l.split(/\s+/)[0])).toEqual(["FIN-WAIT-1"]);
    // KnockPort's side (nginx's upstream connection over lo) ends normally: nothing but TIME-WAIT
    const upstream = await listTcpSockets(h.topo, h.cfg.httpPort);
    expect(upstream.filter((l) => !l.startsWith("TIME-WAIT"))).toEqual([]);
  });
});
