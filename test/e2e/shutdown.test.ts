// End-to-end: what a clean stop of the helper does to live leases (issue 4, item 2).
// - Without flags, a stop keeps the table and the grants: the lease stays open and ends on time.
// - With --service-rule-cleanup-on-shutdown (the original's flag), SIGTERM revokes every live grant
//   but keeps the table and its drops: the port closes and stays protected, also after a restart.
// - A helper creating its state dir under umask 000 still makes it 0700 and its lock file 0600.
import { statSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, expect, it } from "vitest";
import { describeKnockport } from "./describe-knockport.js";
import { e2eFirewalls, states } from "./harness.js";
import { sleep, type AppSpec, type ManagedProcess } from "./testbed.js";

const DURATION_S = 40;

async function stopHelper(p: ManagedProcess, what: string): Promise<void> {
  p.signal("SIGTERM");
  const exit = await Promise.race([p.exited, sleep(8000).then(() => undefined)]);
  expect(exit, `${what}: no exit within 8 s after SIGTERM\n${p.tail(20)}`).toBeDefined();
  expect(exit?.exitCode, `${what} exit: ${JSON.stringify(exit)}\n${p.tail(20)}`).toBe(0);
}

const stack = { duration: DURATION_S, step2HttpsDuration: 10, rateLimitPerMinute: 1000 };

describeKnockport("knockport end to end ($firewall): helper shutdown and --service-rule-cleanup-on-shutdown", e2eFirewalls(), stack, (h) => {
  let ssh: AppSpec;
  const startHelper = (extra: readonly string[], label: string): ManagedProcess =>
    h.topo.spawn("srv", process.execPath, [...h.stack.helperArgv, ...extra], { label });

  beforeAll(() => {
    ssh = h.ssh;
  });

  let current: ManagedProcess | undefined;

  it("a plain stop keeps the table and the live lease: the port stays open for its owner only", async () => {
    await h.fullKnock("cli", ssh);
    expect(await states({ cli: () => h.svc("cli", ssh), cli2: () => h.svc("cli2", ssh) })).toEqual({ cli: "open", cli2: "closed" });
    await stopHelper(h.stack.helper, "helper");
    expect(await h.firewallState(), "table / chains kept").toBeDefined();
    expect(await states({ cli: () => h.svc("cli", ssh), cli2: () => h.svc("cli2", ssh) })).toEqual({ cli: "open", cli2: "closed" });
  });

  it("with --service-rule-cleanup-on-shutdown, SIGTERM closes the live lease and the port stays protected", async () => {
    current = startHelper(["--service-rule-cleanup-on-shutdown"], "knockport-helper (cleanup on shutdown)");
    await current.waitForLine(/"msg":"helper ready"/, 20_000);
    const leases = await h.stack.status();
    expect(leases.some((l) => l.app === ssh.name && l.ip === h.topo.addr.cli.v4 && l.step === 2), JSON.stringify(leases)).toBe(true);
    expect(await h.svc("cli", ssh), "restored lease open before the stop").toBe("open");

    await stopHelper(current, "helper with the flag");
    const revoked = current.lines.find((l) => l.line.includes('"event":"leases.revoked_on_shutdown"'));
    expect(revoked?.line, current.tail(20)).toMatch(/"revoked":[1-9]/);
    expect(revoked?.line).toMatch(/"failed":0/);
    // Grants gone, table and drops kept: the echo service still listens, yet nobody reaches it.
    const table = await h.firewallState();
    expect(table, "the table / chains must survive the cleanup (never fail open)").toBeDefined();
    expect(table?.sets.length, "the sets stay (empty of our grants)").toBeGreaterThan(0);
    expect(await h.setsHolding(h.topo.addr.cli.v4)).toEqual([]);
    expect(
      await states({ "cli ssh": () => h.svc("cli", ssh), "cli2 ssh": () => h.svc("cli2", ssh), "cli https": () => h.https("cli") }),
    ).toEqual({ "cli ssh": "closed", "cli2 ssh": "closed", "cli https": "closed" });
  });

  it("after the cleanup, a restarted helper does not bring the revoked lease back", async () => {
    current = startHelper([], "knockport-helper (after cleanup)");
    await current.waitForLine(/"msg":"helper ready"/, 20_000);
    expect(await h.stack.status()).toEqual([]);
    expect(await h.svc("cli", ssh)).toBe("closed");
    // and knocking works again through it
    await h.fullKnock("cli", ssh);
    expect(await h.svc("cli", ssh)).toBe("open");
    await stopHelper(current, "helper after cleanup");
  });

  it("a helper creating its state dir under umask 000 makes it 0700 and its lock file 0600", async () => {
    const fresh = join(h.stack.dir, "fresh", "state");
    const previous = process.umask(0);
    try {
      current = startHelper(["--state-dir", fresh], "knockport-helper (fresh state dir)");
    } finally {
      process.umask(previous);
    }
    await current.waitForLine(/"msg":"helper ready"/, 20_000);
    await h.fullKnock("cli2", ssh);
    const dir = statSync(fresh);
    const lock = statSync(join(fresh, "helper.lock"));
    expect({ dir: (dir.mode & 0o777).toString(8), lock: (lock.mode & 0o777).toString(8), owner: lock.uid }).toEqual({
      dir: "700",
      lock: "600",
      owner: 0,
    });
    await stopHelper(current, "helper with a fresh state dir");
  });
});
