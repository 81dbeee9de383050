// End-to-end, second file: rate limiting (429), a failing helper (500, nothing half-open) and a helper
// restart that reads live leases back from the kernel's sets (DESIGN.md §4). Own topology, own config
// with a small rate limit and a long duration, so nothing here depends on expiry timing.
import { beforeAll, expect, it } from "vitest";
import { describeKnockport } from "./describe-knockport.js";
import { describeResult, e2eFirewalls, expectOk, expectStep1NoReply, states } from "./harness.js";
import { sleep, type AppSpec, type ManagedProcess } from "./testbed.js";

const RATE_LIMIT = 4;
const DURATION_S = 20;

const stack = { duration: DURATION_S, step2HttpsDuration: 6, rateLimitPerMinute: RATE_LIMIT, httpPathLength: 64 };

describeKnockport("knockport end to end ($firewall): rate limits, helper failure and restart", e2eFirewalls(), stack, (h) => {
  let ssh: AppSpec;
  let openvpn: AppSpec;

  beforeAll(() => {
    ssh = h.ssh;
    openvpn = h.openvpn;
  });

  it(`step 2 answers 429 once a client exceeds ${RATE_LIMIT} requests a minute; other clients are not affected`, async () => {
    expect(h.cfg.httpPostPath, "this file's config uses the longest allowed step-1 path").toHaveLength(64);
    expectStep1NoReply(await h.step1("cli", ssh), "cli step 1 (64-character path)");
    const statuses: Array<number | undefined> = [];
    for (let i = 0; i < RATE_LIMIT + 1; i++) {
      const r = await h.step2("cli", ssh);
      statuses.push(r.status);
      if (i === 0) expectOk(r, "first step 2");
    }
    expect(statuses.slice(0, RATE_LIMIT), `statuses ${JSON.stringify(statuses)}`).not.toContain(429);
    expect(statuses[RATE_LIMIT], `statuses ${JSON.stringify(statuses)}`).toBe(429);
    h.noteLease("cli", 4, ssh.name, Date.now(), DURATION_S);
    // The limit is per client address: cli2 knocks normally.
    await h.fullKnock("cli2", ssh);
    expect(await states({ "cli2 ssh": () => h.svc("cli2", ssh), "cli ssh": () => h.svc("cli", ssh) })).toEqual({ "cli2 ssh": "open", "cli ssh": "open" });
  });

  it("step 1 is rate limited too: over the limit, even a valid knock does not open HTTPS", async () => {
    // cli over IPv6 is a fresh client address: RATE_LIMIT wrong-key knocks use up its minute.
    const wrong = await Promise.all(
      Array.from({ length: RATE_LIMIT }, () => h.step1("cli", ssh, { family: 6, key: "wrong-key-0123456789" })),
    );
    for (const r of wrong) expectStep1NoReply(r, "wrong-key step 1");
    expectStep1NoReply(await h.step1("cli", ssh, { family: 6 }), "valid step 1 over the limit");
    expect(await h.https("cli", 6), "HTTPS must stay closed for a rate-limited client").toBe("closed");
    // IPv6 clients are limited per /64 (rate_limit_ipv6_prefix): cli2 (2001:db8:100::20) shares cli's /64,
    // so its valid knock is over the limit as well, where a per-address limit would have let it in.
    expectStep1NoReply(await h.step1("cli2", ssh, { family: 6 }), "cli2 valid step 1 from cli's /64");
    expect(await h.https("cli2", 6), "HTTPS must stay closed for the rest of the rate-limited /64").toBe("closed");
    // Control: the same valid knock from an address within its limit (cli2 over IPv4) opens HTTPS.
    expectStep1NoReply(await h.step1("cli2", ssh), "cli2 valid step 1 over IPv4");
    expect(await h.https("cli2", 4)).toBe("open");
  });

  it("with the helper down, step 2 answers 500 and opens nothing; the table stays", async () => {
    expectStep1NoReply(await h.step1("cli2", openvpn), "cli2 step 1 openvpn");
    expect(await h.https("cli2"), "control: HTTPS open for cli2").toBe("open");
    h.stack.helper.signal("SIGTERM");
    const exit = await Promise.race([h.stack.helper.exited, sleep(5000).then(() => undefined)]);
    expect(exit?.exitCode, `helper exit after SIGTERM: ${JSON.stringify(exit)}`).toBe(0);
    const r = await h.step2("cli2", openvpn);
    expect(r.status, `step 2 with the helper down: ${describeResult(r)}`).toBe(500);
    expect(await h.svc("cli2", openvpn), "nothing half-open").toBe("closed");
    expect(await h.firewallState(), "the table stays while the helper is down").toBeDefined();
  });

  let restarted: ManagedProcess | undefined;

  it("a restarted helper reads the live leases back from the kernel's sets, and the server knocks through it again", async () => {
    // The previous test stopped the helper; start it again with the same flags and state directory.
    restarted = h.topo.spawn("srv", process.execPath, [...h.stack.helperArgv], { label: "knockport-helper (restarted)" });
    await restarted.waitForLine(/"msg":"helper ready"/, 20_000);
    const leases = await h.stack.status();
    const cli2Ssh = leases.find((l) => l.app === ssh.name && l.ip === h.topo.addr.cli2.v4 && l.step === 2);
    expect(cli2Ssh, `leases after restart: ${JSON.stringify(leases)}`).toBeDefined();
    expect(cli2Ssh?.remainingSeconds ?? 0).toBeGreaterThan(0);
    expect(cli2Ssh?.remainingSeconds ?? Infinity).toBeLessThan(DURATION_S);
    // The table was reloaded: the restored lease is back in the kernel, nothing else was added.
    expect(
      await states({ "cli2 ssh": () => h.svc("cli2", ssh), "cli2 openvpn": () => h.svc("cli2", openvpn), "cli ssh v6": () => h.svc("cli", ssh, 6) }),
    ).toEqual({ "cli2 ssh": "open", "cli2 openvpn": "closed", "cli ssh v6": "closed" });
    // The server reaches the new helper.
    await h.fullKnock("cli2", openvpn);
    expect(await h.svc("cli2", openvpn)).toBe("open");
  });
});
