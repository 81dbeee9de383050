// End-to-end `knockport knock --keep --revoke`: the real client in cli keeps an app open across two
// lease periods and across a change of cli's own address (changed inside the test, restored after),
// then closes the lease when stopped with SIGTERM. Real helper, server, kernel; cli2 is the bystander.
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Harness, REPO_ROOT, e2eFirewalls, states } from "./harness.js";
import { sleep, type AppSpec, type ManagedProcess } from "./testbed.js";

const DURATION = 6;
/** cli's replacement IPv4 address, in srv's /24 and unused by the topology. */
const NEW_CLI_V4 = "198.51.100.11";

describe.each(e2eFirewalls())("knock --keep (%s, real kernel, real client)", (firewall) => {
  const h = new Harness({ duration: DURATION, step2HttpsDuration: 3, rateLimitPerMinute: 1000, firewall });
  let app: AppSpec;
  let client: ManagedProcess;
  let oldV4: string;
  let moved = false;

  const ip = (args: string[]) => h.topo.exec("cli", "ip", args, { reject: true });
  const out = (): string => client.lines.map((l) => l.line).join("\n");
  const opened = (): number => client.lines.filter((l) => l.line.startsWith(`step 2: ${app.name} opened`)).length;
  const waitOpened = async (count: number, timeoutMs: number): Promise<void> => {
    for (const until = Date.now() + timeoutMs; Date.now() < until && opened() < count; ) await sleep(100);
    expect(opened(), `knocks so far:\n${out()}`).toBeGreaterThanOrEqual(count);
  };
  const serviceLease = async (addr: string) => (await h.stack.status()).find((l) => l.app === app.name && l.step === 2 && l.ip === addr);

  beforeAll(async () => {
    await h.start();
    app = h.ssh;
    oldV4 = h.ip("cli", 4);
    client = h.topo.spawn(
      "cli",
      process.execPath,
      [join(REPO_ROOT, "bin/knockport"), "knock", "--keep", "--revoke", "-4", "--host", h.srvIp(4), "--app", app.name,
        "--http-path", h.cfg.httpPostPath, "--https-path", h.cfg.httpsPostPath,
        "--http-port", String(h.cfg.httpPort), "--https-port", String(h.cfg.httpsPort), "--insecure"],
      { env: { KNOCKPORT_HTTP_KEY: app.accessKeysHttp[0] ?? "", KNOCKPORT_HTTPS_KEY: app.accessKeysHttps[0] ?? "" }, label: "knock-keep" },
    );
  });
  afterAll(async () => {
    await client?.stop(3000);
    if (moved) {
      await ip(["addr", "add", `${oldV4}/24`, "dev", "eth0"]).catch(() => undefined);
      await ip(["addr", "del", `${NEW_CLI_V4}/24`, "dev", "eth0"]).catch(() => undefined);
    }
    await h.stop();
  });
  beforeEach((ctx) => h.diagnoseOnFailure(ctx));

  it("1. keeps the app open for the knocker across two lease periods (each lease alone would have ended), never for the bystander", async () => {
    await waitOpened(1, 10_000);
    const first = Date.now();
    await sleep(2 * DURATION * 1000 + 500);
    expect(await states({ cli: () => h.svc("cli", app, 4), cli2: () => h.svc("cli2", app, 4) })).toEqual({ cli: "open", cli2: "closed" });
    // 75% of 6 s: a knock about every 4.5 s
    expect(opened(), out()).toBeGreaterThanOrEqual(3);
    const lease = await serviceLease(oldV4);
    expect(lease, "the lease was refreshed, not left to run out").toBeDefined();
    expect(Date.parse(lease?.expiresAt ?? "") - first).toBeGreaterThan(2 * DURATION * 1000);
    for (const secret of [...app.accessKeysHttp, ...app.accessKeysHttps, h.cfg.httpPostPath, h.cfg.httpsPostPath]) expect(out()).not.toContain(secret);
  });

  it("2. knocks at once from cli's new address when it changes, and the service answers there", async () => {
    const before = opened();
    // The new address first (promoted when the old one goes), so cli has a source address all along.
    await h.topo.exec("cli", "sysctl", ["-q", "-w", "net.ipv4.conf.eth0.promote_secondaries=1"], { reject: true });
    await ip(["addr", "add", `${NEW_CLI_V4}/24`, "dev", "eth0"]);
    moved = true;
    await ip(["addr", "del", `${oldV4}/24`, "dev", "eth0"]);
    const changedAt = Date.now();
    await client.waitForLine(new RegExp(`address towards the server changed \\(${oldV4.replaceAll(".", "\\.")} -> ${NEW_CLI_V4.replaceAll(".", "\\.")}\\)`), 5_000);
    await waitOpened(before + 1, 5_000);
    console.log(`[knock-keep ${firewall}] re-knock from the new address ${Date.now() - changedAt} ms after the change`);
    expect(await serviceLease(NEW_CLI_V4)).toBeDefined();
    expect(await h.svc("cli", app, 4)).toBe("open");
  });

  it("3. SIGTERM stops it cleanly (exit 0) and --revoke closes the lease of its address", async () => {
    client.signal("SIGTERM");
    const exit = await client.exited;
    expect(exit.exitCode, out()).toBe(0);
    expect(out()).toMatch(/keep: SIGTERM, stopping/);
    expect(out()).toMatch(new RegExp(`step 2: ${app.name} closed for this address`));
    expect(await serviceLease(NEW_CLI_V4)).toBeUndefined();
    expect(await h.svc("cli", app, 4)).toBe("closed");
  });
});
