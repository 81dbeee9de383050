// End-to-end `knockport knock --keep` behind a NAT: the real client runs in priv (10.77.0.10), whose
// IPv4 traffic the router nat masquerades as 198.51.100.30. Mid-lease the router's public address
// becomes 198.51.100.31 while priv's own address stays as it is, so the client cannot see the change
// locally; it must notice that the service stopped answering and knock again from the new address,
// long before its scheduled re-knock at 75% of the lease. Real helper, server, kernel, per backend.
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeKnockport } from "./describe-knockport.js";
import { CLOSE_MARGIN_MS, REPO_ROOT, e2eFirewalls, states } from "./harness.js";
import { NAT_PUBLIC_V4, NAT_SPARE_V4, setNatPublicAddress, sleep, sleepUntil, type AppSpec, type ManagedProcess } from "./testbed.js";

/** Long enough that the scheduled re-knock (75%: 22.5 s) comes well after the bound below. */
const DURATION = 30;
/**
 * From the address change to the service answering priv again: the probe interval (10 s) + one probe's
 * timeout (2 s) + a knock (step 1's 1 s wait, step 2, the service check), with 2 s to spare.
 */
const RECONNECT_BOUND_MS = 16_000;

const stack = { duration: DURATION, step2HttpsDuration: 3, rateLimitPerMinute: 1000, withNat: true };

describeKnockport("knock --keep behind a NAT whose public address changes ($firewall, real kernel, real client)", e2eFirewalls(), stack, (h, { firewall }) => {
  let app: AppSpec;
  let client: ManagedProcess;
  let firstOpenedAt = 0;
  let oldLeaseEnd = "";

  const out = (): string => client.lines.map((l) => l.line).join("\n");
  const opened = (): number => client.lines.filter((l) => l.line.startsWith(`step 2: ${app.name} opened`)).length;
  const lease = async (addr: string) => (await h.stack.status()).find((l) => l.app === app.name && l.step === 2 && l.ip === addr);

  beforeAll(() => {
    app = h.ssh;
    client = h.topo.spawn(
      "priv",
      process.execPath,
      [join(REPO_ROOT, "bin/knockport"), "knock", "--keep", "--revoke", "-4", "--host", h.srvIp(4), "--app", app.name,
        "--http-path", h.cfg.httpPostPath, "--https-path", h.cfg.httpsPostPath,
        "--http-port", String(h.cfg.httpPort), "--https-port", String(h.cfg.httpsPort), "--insecure", "--check-port", String(app.port)],
      { env: { KNOCKPORT_HTTP_KEY: app.accessKeysHttp[0] ?? "", KNOCKPORT_HTTPS_KEY: app.accessKeysHttps[0] ?? "" }, label: "knock-keep-nat" },
    );
  });
  afterAll(async () => {
    await client?.stop(3000);
  });

  it("1. the lease is for the router's public address, which the step-2 answer names; never for priv's own address", async () => {
    await client.waitForLine(new RegExp(`^step 2: ${app.name} opened for this address`), 15_000);
    firstOpenedAt = Date.now();
    const l = await lease(NAT_PUBLIC_V4);
    expect(l, `leases: ${JSON.stringify(await h.stack.status())}`).toBeDefined();
    oldLeaseEnd = l?.expiresAt ?? "";
    expect(await lease("10.77.0.10")).toBeUndefined();
    expect(await states({ priv: () => h.svc("priv", app, 4), cli: () => h.svc("cli", app, 4), cli2: () => h.svc("cli2", app, 4) })).toEqual({ priv: "open", cli: "closed", cli2: "closed" });
    expect(out()).toMatch(new RegExp(`the server sees this machine as ${NAT_PUBLIC_V4.replaceAll(".", "\\.")}, .*10\\.77\\.0\\.10`));
  });

  it(`2. after the public address changes, the service answers priv again within ${RECONNECT_BOUND_MS / 1000} s (knocked from the new address), and the old address's lease is not refreshed`, async () => {
    const before = opened();
    expect(await setNatPublicAddress(h.topo, NAT_SPARE_V4)).toBe(NAT_PUBLIC_V4);
    const changedAt = Date.now();
    let reachableAt: number | undefined;
    while (reachableAt === undefined && Date.now() - changedAt < RECONNECT_BOUND_MS + 10_000) {
      if ((await h.svc("priv", app, 4, 300)) === "open") reachableAt = Date.now();
      else await sleep(200);
    }
    const took = reachableAt === undefined ? undefined : reachableAt - changedAt;
    console.log(`[knock-nat ${firewall}] service reachable again ${String(took)} ms after the NAT's public address changed (lease ${DURATION} s, scheduled re-knock at ${(DURATION * 0.75).toFixed(1)} s)`);
    expect(took, `the service did not answer priv again within the bound:\n${out()}`).toBeLessThanOrEqual(RECONNECT_BOUND_MS);
    expect(Date.now() - firstOpenedAt, "the scheduled re-knock is not what opened it").toBeLessThan(DURATION * 750);
    expect(opened()).toBe(before + 1);
    expect(out()).toMatch(/keep: tcp\/\d+ did not answer/);
    expect(out()).toMatch(new RegExp(`the server now sees this machine as ${NAT_SPARE_V4.replaceAll(".", "\\.")} \\(was ${NAT_PUBLIC_V4.replaceAll(".", "\\.")}\\)`));
    expect(await lease(NAT_SPARE_V4)).toBeDefined();
    expect((await lease(NAT_PUBLIC_V4))?.expiresAt, "the old address's lease keeps its first deadline").toBe(oldLeaseEnd);
  });

  it("3. the old address's lease ends at its first deadline while the new one is kept", async () => {
    await sleepUntil(Date.parse(oldLeaseEnd) + CLOSE_MARGIN_MS);
    expect(await lease(NAT_PUBLIC_V4)).toBeUndefined();
    expect(await lease(NAT_SPARE_V4)).toBeDefined();
    expect(await h.svc("priv", app, 4)).toBe("open");
  });

  it("4. SIGTERM stops it (exit 0) and --revoke closes the new address's lease", async () => {
    client.signal("SIGTERM");
    const exit = await client.exited;
    expect(exit.exitCode, out()).toBe(0);
    expect(await lease(NAT_SPARE_V4)).toBeUndefined();
    expect(await h.svc("priv", app, 4)).toBe("closed");
  });
});
