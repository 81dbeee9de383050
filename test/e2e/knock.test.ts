// End-to-end: the real knockport-helper (root, nftables) and knockport-server (as nobody) from bin/,
// in network namespaces, knocked with real curl, checked with real TCP/UDP connects.
//
// Hosts (see @knockport/testbed): srv 198.51.100.1 / 2001:db8:100::1 on ext0; the knocker cli (.10 / ::10)
// and the bystander cli2 (.20 / ::20) reach srv through the same bridge, so the same interface.
//
// The tests run in order and share one topology; each one records the leases it created (with an upper
// bound of their deadline) so later tests that need a closed port wait for the kernel to expire them.
import { beforeAll, expect, it } from "vitest";
import { describeKnockport } from "./describe-knockport.js";
import { CLOSE_MARGIN_MS, describeResult, e2eMatrix, expectOk, expectStep1NoReply, states, type Family } from "./harness.js";
import {
  formBody,
  knock,
  knockUrl,
  listConntrack,
  listTcpSockets,
  pollUntil,
  randomPath,
  sleep,
  sleepUntil,
  type AppSpec,
  type KnockResult,
  type PortState,
} from "./testbed.js";

const DURATION_S = 3;
const STEP2_WINDOW_S = 4;

const stack = { duration: DURATION_S, step2HttpsDuration: STEP2_WINDOW_S, rateLimitPerMinute: 1000, httpPathLength: 40 };

describeKnockport("knockport end to end ($firewall, IPv$family, real kernel)", e2eMatrix(), stack, (h) => {
  /** This run's family, and the other one (knocks in one family must not open the other). */
  const F: Family = h.family;
  const O: Family = h.otherFamily;
  let ssh: AppSpec;
  let openvpn: AppSpec;

  beforeAll(() => {
    ssh = h.ssh;
    openvpn = h.openvpn;
  });

  it("1. before any knock: service ports (tcp, udp) and HTTPS are closed for cli and cli2, over IPv4 and IPv6", async () => {
    // Control: the services and the HTTPS listener run, and srv reaches them itself (not through ext0).
    expect(
      await states({
        "srv ssh v4": () => h.svc("srv", ssh, 4),
        "srv ssh v6": () => h.svc("srv", ssh, 6),
        "srv openvpn v4": () => h.svc("srv", openvpn, 4),
        "srv openvpn v6": () => h.svc("srv", openvpn, 6),
        "srv https v4": () => h.https("srv", 4),
      }),
    ).toEqual({ "srv ssh v4": "open", "srv ssh v6": "open", "srv openvpn v4": "open", "srv openvpn v6": "open", "srv https v4": "open" });

    const checks: Record<string, () => Promise<PortState>> = {};
    for (const host of ["cli", "cli2"] as const) {
      for (const family of [4, 6] as const) {
        checks[`${host} ssh v${family}`] = () => h.svc(host, ssh, family);
        checks[`${host} openvpn v${family}`] = () => h.svc(host, openvpn, family);
        checks[`${host} https v${family}`] = () => h.https(host, family);
      }
    }
    const seen = await states(checks);
    expect(seen).toEqual(Object.fromEntries(Object.keys(checks).map((k) => [k, "closed"])));
    expect(await h.firewallState(), "KnockPort's table / chains must be installed").toBeDefined();
  });

  it("2. GET, wrong paths, an oversize POST, a wrong key or app or form on step 1: no reply, HTTPS stays closed", async () => {
    const path = h.cfg.httpPostPath;
    const lastChar = path.endsWith("x") ? "y" : "x";
    const validBody = formBody({ app: ssh.name, access_key: ssh.accessKeysHttp[0] ?? "" });
    const cases: Array<[string, () => Promise<KnockResult>]> = [
      ["GET on the valid path", () => knock(h.topo, "cli", { step: 1, url: knockUrl("http", h.srvIp(F), h.cfg.httpPort, path) })],
      ["POST to a wrong path", () => h.step1("cli", ssh, { path: randomPath("/k1-", 40) })],
      ["POST to the path with its last character changed", () => h.step1("cli", ssh, { path: path.slice(0, -1) + lastChar })],
      ["POST to the path without its last character", () => h.step1("cli", ssh, { path: path.slice(0, -1) })],
      ["POST to the path plus one character", () => h.step1("cli", ssh, { path: `${path}x` })],
      ["oversize POST (>500 bytes) with a valid key", () => h.step1("cli", ssh, { body: `${validBody}&pad=${"p".repeat(600)}` })],
      ["the step-2 key used on step 1", () => h.step1("cli", ssh, { key: ssh.accessKeysHttps[0] ?? "" })],
      ["another app's key", () => h.step1("cli", ssh, { key: openvpn.accessKeysHttp[0] ?? "" })],
      ["an unknown app", () => h.step1("cli", ssh, { appName: "nosuchapp" })],
      ["a malformed form", () => h.step1("cli", ssh, { body: "this is not a form" })],
    ];
    const results = await Promise.all(cases.map(async ([what, run]) => [what, await run()] as const));
    for (const [what, r] of results) expectStep1NoReply(r, what);
    // The knocks above ran within ~1 s, far inside the 4 s HTTPS window any of them could have opened.
    expect(await h.https("cli", F), "HTTPS must stay closed for cli after rejected step-1 requests").toBe("closed");
    expect(await h.setsHolding(h.ip("cli", F)), "no set may hold cli's address").toEqual([]);
    const leases = await h.stack.status();
    expect(leases.filter((l) => l.ip === h.ip("cli", F))).toEqual([]);
  });

  it("3. a valid step 1 from cli opens HTTPS for cli only", async () => {
    const r = await h.step1("cli", ssh);
    expectStep1NoReply(r, "valid step 1");
    h.noteLease("cli", F, "https", Date.now(), STEP2_WINDOW_S);
    expect(
      await states({ [`cli https v${F}`]: () => h.https("cli", F), [`cli2 https v${F}`]: () => h.https("cli2", F), [`cli https v${O}`]: () => h.https("cli", O) }),
    ).toEqual({ [`cli https v${F}`]: "open", [`cli2 https v${F}`]: "closed", [`cli https v${O}`]: "closed" });
  });

  let t4: { ssh: { sent: number; done: number }; openvpn: { sent: number; done: number } } | undefined;

  it("4. a valid step 2 from cli answers 200 OK and opens the tcp and the udp service for cli only", async () => {
    const [a, b] = await Promise.all([h.step1("cli", ssh), h.step1("cli", openvpn)]);
    expectStep1NoReply(a, "step 1 ssh");
    expectStep1NoReply(b, "step 1 openvpn");
    h.noteLease("cli", F, "https", Date.now(), STEP2_WINDOW_S);
    const sshSent = Date.now();
    const r1 = await h.step2("cli", ssh);
    const sshDone = Date.now();
    const vpnSent = Date.now();
    const r2 = await h.step2("cli", openvpn);
    const vpnDone = Date.now();
    expectOk(r1, "step 2 ssh");
    expectOk(r2, "step 2 openvpn");
    h.noteLease("cli", F, ssh.name, sshDone, DURATION_S);
    h.noteLease("cli", F, openvpn.name, vpnDone, DURATION_S);
    t4 = { ssh: { sent: sshSent, done: sshDone }, openvpn: { sent: vpnSent, done: vpnDone } };
    expect(
      await states({
        [`cli ssh v${F}`]: () => h.svc("cli", ssh, F),
        [`cli openvpn v${F}`]: () => h.svc("cli", openvpn, F),
        [`cli2 ssh v${F}`]: () => h.svc("cli2", ssh, F),
        [`cli2 openvpn v${F}`]: () => h.svc("cli2", openvpn, F),
        [`cli ssh v${O}`]: () => h.svc("cli", ssh, O),
        [`cli2 https v${F}`]: () => h.https("cli2", F),
      }),
    ).toEqual({
      [`cli ssh v${F}`]: "open",
      [`cli openvpn v${F}`]: "open",
      [`cli2 ssh v${F}`]: "closed",
      [`cli2 openvpn v${F}`]: "closed",
      [`cli ssh v${O}`]: "closed",
      [`cli2 https v${F}`]: "closed",
    });
    expect(await h.setsHolding(h.ip("cli2", F)), "no set may hold cli2's address").toEqual([]);
  });

  it(`5. the services close again after duration (${DURATION_S} s) + at most ${CLOSE_MARGIN_MS} ms`, async () => {
    if (t4 === undefined) throw new Error("needs test 4's leases (test 4 failed)");
    const firstSent = Math.min(t4.ssh.sent, t4.openvpn.sent);
    // Still open shortly before the earliest possible deadline: the lease lasts the configured time.
    const before = firstSent + DURATION_S * 1000 - 700;
    expect(Date.now(), "test 4 took too long to check the lease before its deadline").toBeLessThan(before);
    await sleepUntil(before);
    expect(await states({ ssh: () => h.svc("cli", ssh), openvpn: () => h.svc("cli", openvpn) })).toEqual({ ssh: "open", openvpn: "open" });
    await sleepUntil(Math.max(t4.ssh.done, t4.openvpn.done) + DURATION_S * 1000 + CLOSE_MARGIN_MS);
    expect(await states({ ssh: () => h.svc("cli", ssh), openvpn: () => h.svc("cli", openvpn) })).toEqual({ ssh: "closed", openvpn: "closed" });
  });

  it("6. step 2 without step 1 is refused; step 2 is bound to step 1's app and key pair", async () => {
    // cli2 never passed step 1: the HTTPS port does not even accept the connection.
    const noStep1 = await h.step2("cli2", ssh);
    expect(noStep1.status, `step 2 without step 1 must not be answered: ${describeResult(noStep1)}`).toBeUndefined();
    expect(await h.svc("cli2", ssh)).toBe("closed");

    // Step 1 for ssh (key pair 0) opens HTTPS for cli2 ...
    expectStep1NoReply(await h.step1("cli2", ssh), "cli2 step 1 ssh");
    h.noteLease("cli2", F, "https", Date.now(), STEP2_WINDOW_S);
    expect(await h.https("cli2"), "control: HTTPS must open for cli2 after its step 1").toBe("open");
    // ... but step 2 for another app (with that app's valid key) is refused,
    const otherApp = await h.step2("cli2", openvpn);
    expect(otherApp.status, `step 2 for openvpn after step 1 for ssh: ${describeResult(otherApp)}`).toBe(403);
    // and so is the step-2 key of another key pair, and a wrong key.
    const otherPair = await h.step2("cli2", ssh, { key: ssh.accessKeysHttps[1] ?? "" });
    expect(otherPair.status, `step 2 with key pair 1 after step 1 with pair 0: ${describeResult(otherPair)}`).toBe(403);
    const wrongKey = await h.step2("cli2", ssh, { key: "wrong-key-0123456789" });
    expect(wrongKey.status, describeResult(wrongKey)).toBe(403);
    expect(await states({ ssh: () => h.svc("cli2", ssh), openvpn: () => h.svc("cli2", openvpn) })).toEqual({ ssh: "closed", openvpn: "closed" });
    expect((await h.setsHolding(h.ip("cli2", F))).filter((s) => !s.startsWith("https"))).toEqual([]);

    // Control: the matching step 2 still works, so the refusals above were about app and pair.
    const right = await h.step2("cli2", ssh);
    expectOk(right, "cli2 matching step 2");
    h.noteLease("cli2", F, ssh.name, Date.now(), DURATION_S);
    expect(await h.svc("cli2", ssh)).toBe("open");
  });

  it("7. a re-knock extends the lease: open after the first deadline, closed after the second", async () => {
    await h.waitExpired(h.leaseKey("cli", F, ssh.name));
    expect(await h.svc("cli", ssh), "precondition: cli's ssh lease has expired").toBe("closed");
    const first = await h.fullKnock("cli", ssh);
    // Second knock ~2 s later: step 1 now, step 2 at first.sent + 2 s (inside the 4 s HTTPS window).
    expectStep1NoReply(await h.step1("cli", ssh), "re-knock step 1");
    await sleepUntil(first.sent + 2000);
    const secondSent = Date.now();
    const again = await h.step2("cli", ssh);
    const secondDone = Date.now();
    expectOk(again, "re-knock step 2");
    h.noteLease("cli", F, ssh.name, secondDone, DURATION_S);

    // One element and one lease, never a duplicate.
    const holding = (await h.elementsHolding(h.ip("cli", F))).filter((e) => !e.set.startsWith("https"));
    expect(holding.map((e) => e.set), "exactly one service-set element for cli").toHaveLength(1);
    const leases = (await h.stack.status()).filter((l) => l.ip === h.ip("cli", F) && l.app === ssh.name && l.step === 2);
    expect(leases, "exactly one step-2 lease for cli/ssh").toHaveLength(1);

    // After the first lease's latest deadline (+0.7 s) but well before the second's: still open.
    const afterFirst = first.done + DURATION_S * 1000 + 700;
    expect(afterFirst, "timing: the check must fall before the second deadline").toBeLessThan(secondSent + DURATION_S * 1000 - 500);
    await sleepUntil(afterFirst);
    expect(await h.svc("cli", ssh), "still open after the first lease's deadline").toBe("open");
    await sleepUntil(secondDone + DURATION_S * 1000 + CLOSE_MARGIN_MS);
    expect(await h.svc("cli", ssh), "closed after the second lease's deadline").toBe("closed");
  });

  it("8. a 40-character http_post_path works (firewall payload match and server route)", async () => {
    expect(h.cfg.httpPostPath).toHaveLength(40);
    await h.waitExpired(h.leaseKey("cli2", F, "https"));
    expect(await h.https("cli2"), "precondition: cli2's HTTPS window has expired").toBe("closed");
    expectStep1NoReply(await h.step1("cli2", openvpn), "step 1 on the 40-character path");
    h.noteLease("cli2", F, "https", Date.now(), STEP2_WINDOW_S);
    expect(await h.https("cli2")).toBe("open");
  });

  it("9. the stealth HTTP port leaves no conntrack entries", async () => {
    // Many step-1 requests went to the HTTP port above (valid and invalid). Conntrack is active (control:
    // the HTTPS port's connections are tracked), yet none is tracked for the HTTP port.
    expect(await listConntrack(h.topo, h.cfg.httpsPort), "control: HTTPS connections must be tracked").toBeGreaterThan(0);
    expect(await listConntrack(h.topo, h.cfg.httpPort), "conntrack entries for the HTTP knock port").toBe(0);
  });

  // Sockets on srv's HTTP port whose peer is cli2's IPv6 address with source port `port`.
  const socketsOf = async (port: number): Promise<string[]> =>
    (await listTcpSockets(h.topo, h.cfg.httpPort)).filter((l) => l.includes(`[${h.topo.addr.cli2.v6}]:${port}`));
  const freePort = (() => {
    let next = 40000 + Math.floor(Math.random() * 10000);
    return () => next++;
  })();

  it("9b. a valid step-1 knock leaves no server socket behind (the server resets instead of closing)", async () => {
    // The server answers (the firewall drops the answer) and must then reset the connection: a close with
    // FIN is dropped too, and the socket would sit in FIN-WAIT-1 retransmitting for minutes.
    const port = freePort();
    const url = knockUrl("http", h.srvIp(6), h.cfg.httpPort, h.cfg.httpPostPath);
    const body = formBody({ app: ssh.name, access_key: ssh.accessKeysHttp[0] ?? "" });
    expectStep1NoReply(await knock(h.topo, "cli2", { step: 1, url, body, localPort: port }), "cli2 IPv6 step 1");
    h.noteLease("cli2", 6, "https", Date.now(), STEP2_WINDOW_S);
    expect(await h.https("cli2", 6), "control: the knock was accepted").toBe("open");
    await sleep(300);
    expect(await socketsOf(port), "server sockets left by a valid step-1 knock (300 ms after)").toEqual([]);
    expect(await listConntrack(h.topo, h.cfg.httpPort)).toBe(0);
  });

  it("9c. incomplete or silent step-1 connections leave no server socket behind", async () => {
    const url = knockUrl("http", h.srvIp(6), h.cfg.httpPort, h.cfg.httpPostPath);
    const body = formBody({ app: ssh.name, access_key: ssh.accessKeysHttp[0] ?? "" });
    const [partialPort, silentPort] = [freePort(), freePort()];
    // An incomplete request: the headers pass the firewall (one small packet starting with POST <path>),
    // the body never comes (curl waits for "100 Continue", which the firewall drops). The server holds a
    // connection the client can never finish; it must drop it without leaving a socket behind.
    const partial = await knock(h.topo, "cli2", { step: 1, url, body, localPort: partialPort, headers: ["Expect: 100-continue"] });
    expectStep1NoReply(partial, "cli2 IPv6 incomplete request");
    // A silent connection (GET: its request is dropped, and so is the handshake's last ACK): the
    // application never sees it; only the kernel's half-open entry (SYN-RECV) remains until it expires.
    expectStep1NoReply(await knock(h.topo, "cli2", { step: 1, url, localPort: silentPort }), "cli2 IPv6 GET");
    expect.soft((await socketsOf(silentPort)).filter((l) => !l.startsWith("SYN-RECV")), "a silent connection reached the server").toEqual([]);
    const gone = await pollUntil(async () => ((await socketsOf(partialPort)).length === 0 ? true : undefined), 12_000, 250);
    expect(gone, `server socket of an incomplete request still there after 12 s: ${JSON.stringify(await socketsOf(partialPort))}`).toBe(true);
  });

  it("10. the other family: a knock from cli over it opens the services for cli's address in that family only", async () => {
    await h.waitExpired(h.leaseKey("cli", F, ssh.name), h.leaseKey("cli", F, openvpn.name));
    const [a, b] = await Promise.all([h.step1("cli", ssh, { family: O }), h.step1("cli", openvpn, { family: O })]);
    expectStep1NoReply(a, `step 1 ssh over IPv${O}`);
    expectStep1NoReply(b, `step 1 openvpn over IPv${O}`);
    h.noteLease("cli", O, "https", Date.now(), STEP2_WINDOW_S);
    const r1 = await h.step2("cli", ssh, { family: O });
    const r2 = await h.step2("cli", openvpn, { family: O });
    expectOk(r1, `step 2 ssh over IPv${O}`);
    expectOk(r2, `step 2 openvpn over IPv${O}`);
    h.noteLease("cli", O, ssh.name, Date.now(), DURATION_S);
    h.noteLease("cli", O, openvpn.name, Date.now(), DURATION_S);
    expect(
      await states({
        [`cli ssh v${O}`]: () => h.svc("cli", ssh, O),
        [`cli openvpn v${O}`]: () => h.svc("cli", openvpn, O),
        [`cli2 ssh v${O}`]: () => h.svc("cli2", ssh, O),
        [`cli2 openvpn v${O}`]: () => h.svc("cli2", openvpn, O),
        [`cli ssh v${F}`]: () => h.svc("cli", ssh, F),
      }),
    ).toEqual({ [`cli ssh v${O}`]: "open", [`cli openvpn v${O}`]: "open", [`cli2 ssh v${O}`]: "closed", [`cli2 openvpn v${O}`]: "closed", [`cli ssh v${F}`]: "closed" });
    const sets = await h.setsHolding(h.ip("cli", O));
    expect(sets.length, `sets holding cli's IPv${O} address: ${sets.join(", ")}`).toBeGreaterThanOrEqual(2);
  });

  it("11. knockport status --json lists the lease with sane remaining seconds", async () => {
    const { done } = await h.fullKnock("cli", openvpn, F);
    const leases = await h.stack.status();
    const lease = leases.find((l) => l.app === openvpn.name && l.ip === h.ip("cli", F) && l.step === 2);
    expect(lease, `status: ${JSON.stringify(leases)}`).toBeDefined();
    if (lease === undefined) return;
    expect({ port: lease.port, protocol: lease.protocol }).toEqual({ port: openvpn.port, protocol: openvpn.protocol });
    expect(lease.remainingSeconds).toBeGreaterThan(0);
    expect(lease.remainingSeconds).toBeLessThanOrEqual(DURATION_S);
    const elapsed = (Date.now() - done) / 1000;
    expect(lease.remainingSeconds, "remaining must account for the time since the knock").toBeGreaterThan(DURATION_S - elapsed - 1);
    const expiresAt = Date.parse(lease.expiresAt);
    expect(Number.isNaN(expiresAt), `expiresAt ${lease.expiresAt}`).toBe(false);
    expect(Math.abs(expiresAt - (Date.now() + lease.remainingSeconds * 1000)), "expiresAt agrees with remainingSeconds").toBeLessThan(1500);
    expect(Math.abs(expiresAt - (done + DURATION_S * 1000)), "expiresAt agrees with the knock time").toBeLessThan(1500);
    // Nothing listed for the bystander beyond what it really did (its service lease of test 6 has expired).
    await h.waitExpired(h.leaseKey("cli2", F, ssh.name));
    const again = await h.stack.status();
    expect(again.filter((l) => l.ip === h.ip("cli2", F) && l.step === 2)).toEqual([]);
  });

  it("12. SIGTERM stops the helper cleanly and keeps the table (leases run out in the kernel); knockport uninstall-firewall removes it", async () => {
    await h.waitExpired(h.leaseKey("cli2", F, ssh.name), h.leaseKey("cli2", F, openvpn.name));
    const { done } = await h.fullKnock("cli", ssh, F);
    h.stack.helper.signal("SIGTERM");
    const exit = await Promise.race([h.stack.helper.exited, sleep(5000).then(() => undefined)]);
    expect(exit, "the helper must exit within 5 s of SIGTERM").toBeDefined();
    expect(exit?.exitCode, `helper exit: ${JSON.stringify(exit)}`).toBe(0);
    expect(await h.firewallState(), "the table must stay after a clean stop").toBeDefined();
    expect(
      await states({ "cli2 ssh": () => h.svc("cli2", ssh), "cli2 openvpn": () => h.svc("cli2", openvpn), "cli ssh": () => h.svc("cli", ssh) }),
      "with the helper stopped: bystander still locked out, the knocker's live lease still works",
    ).toEqual({ "cli2 ssh": "closed", "cli2 openvpn": "closed", "cli ssh": "open" });
    // The kernel expires the lease although no daemon is left to close it.
    await sleepUntil(done + DURATION_S * 1000 + CLOSE_MARGIN_MS);
    expect(await h.svc("cli", ssh), "the lease must expire in the kernel with the helper stopped").toBe("closed");

    const un = await h.stack.firewallCommand("uninstall-firewall");
    expect(un.exitCode, `knockport uninstall-firewall: ${un.stdout}${un.stderr}`).toBe(0);
    expect(await h.firewallState(), "the table must be gone after knockport uninstall-firewall").toBeUndefined();
    // Control: without KnockPort's table nothing blocks the service any more.
    expect(await h.svc("cli2", ssh)).toBe("open");
  });
});
