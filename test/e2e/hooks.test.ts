// End-to-end: an app's on_open / on_close commands, run by knockport-hooks as the unprivileged user
// daemon (never by the root helper), from the helper's lease events on its events socket: on a knock,
// at expiry (the kernel closed the port), at admin grant and revoke; a failing on_close is retried,
// across a restart of knockport-hooks, until it succeeds. A small script records each call.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeKnockport, type KnockportOptions } from "./describe-knockport.js";
import { pollUntil, sleep, type AppSpec } from "./testbed.js";

const DURATION_S = 3;

const dir = mkdtempSync(join(tmpdir(), "knockport-hooks-e2e-"));
const calls = join(dir, "calls.tsv");
const failClose = join(dir, "fail-close");
const recorder = join(dir, "record-call");
// Test fixture (not product code): appends the user it runs as and its arguments, tab-separated,
// one call per line; a "close" call fails (exit 3) while fail-close exists.
writeFileSync(
  recorder,
  `#!/bin/sh\nIFS="$(printf '\\t')"\nprintf '%s\\t%s\\n' "$(id -un)" "$*" >> '${calls}'\n[ "$1" = close ] && [ -e '${failClose}' ] && exit 3\nexit 0\n`,
);
writeFileSync(calls, "");
chmodSync(dir, 0o755);
chmodSync(calls, 0o666);
chmodSync(recorder, 0o755);
// After the stack stopped (its hooks may still run the recorder while it stops).
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const stack: KnockportOptions = {
  duration: DURATION_S,
  step2HttpsDuration: 5,
  rateLimitPerMinute: 1000,
  hooks: true,
  apps: (_topo, base) =>
    base.apps.map((a, i) =>
      i === 0
        ? {
            ...a,
            onOpen: [recorder, "open", "{app}", "{ip}", "{port}/{protocol}", "{duration}"],
            onClose: [recorder, "close", "{app}", "{ip}", "{port}/{protocol}", "{duration}"],
          }
        : a,
    ),
};

describeKnockport("command hooks (nftables, real helper, knockport-hooks as daemon)", "nftables", stack, (h) => {
  let app: AppSpec;
  let cliIp: string;

  const recorded = (): string[][] =>
    existsSync(calls)
      ? readFileSync(calls, "utf8")
          .split("\n")
          .filter((l) => l !== "")
          .map((l) => l.split("\t"))
      : [];
  const waitForCalls = (n: number, ms: number): Promise<unknown> => pollUntil(() => (recorded().length >= n ? true : undefined), ms, 50);

  beforeAll(() => {
    app = h.ssh;
    cliIp = h.topo.addr.cli.v4;
  });

  it("a knock runs on_open as daemon with the client's address; the kernel's expiry runs on_close", async () => {
    const { done } = await h.fullKnock("cli", app);
    await waitForCalls(1, 5000);
    const port = `${app.port}/${app.protocol}`;
    expect(recorded()).toEqual([["daemon", "open", app.name, cliIp, port, String(DURATION_S)]]);
    await waitForCalls(2, DURATION_S * 1000 + 5000);
    expect(Date.now()).toBeGreaterThanOrEqual(done + DURATION_S * 1000 - 1000);
    expect(recorded()[1]).toEqual(["daemon", "close", app.name, cliIp, port, "0"]);
    expect(await h.svc("cli", app)).toBe("closed");
  });

  it("knockport grant and revoke lead to on_open and on_close", async () => {
    const before = recorded().length;
    const v6 = h.topo.addr.cli.v6;
    const g = await h.stack.cli(["grant", "--app", app.name, "--ip", v6, "--admin-socket", h.stack.adminSocketPath, "--json"]);
    expect(g.exitCode, g.stderr).toBe(0);
    await waitForCalls(before + 1, 5000);
    const r = await h.stack.cli(["revoke", "--app", app.name, "--ip", v6, "--admin-socket", h.stack.adminSocketPath, "--json"]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout), "a grant has no step-1 lease: one lease closed").toEqual({ closed: 1 });
    await waitForCalls(before + 2, 5000);
    expect(recorded().slice(before).map((c) => [c[0], c[1], c[3]])).toEqual([
      ["daemon", "open", v6],
      ["daemon", "close", v6],
    ]);
  });

  it("a failing on_close is retried, survives a restart of knockport-hooks, and runs once it can succeed", async () => {
    const v6 = h.topo.addr.cli2.v6;
    writeFileSync(failClose, "");
    const g = await h.stack.cli(["grant", "--app", app.name, "--ip", v6, "--admin-socket", h.stack.adminSocketPath]);
    expect(g.exitCode, g.stderr).toBe(0);
    expect(await pollUntil(() => (recorded().some((c) => c[1] === "open" && c[3] === v6) ? true : undefined), 5000, 50), "on_open ran").toBe(true);
    const r = await h.stack.cli(["revoke", "--app", app.name, "--ip", v6, "--admin-socket", h.stack.adminSocketPath]);
    expect(r.exitCode, r.stderr).toBe(0);
    const closes = (): number => recorded().filter((c) => c[1] === "close" && c[3] === v6).length;
    // Backoff 1 s, 2 s, ...: at least two failed attempts within 5 s.
    expect(await pollUntil(() => (closes() >= 2 ? true : undefined), 8000, 50), "on_close failed and was tried again").toBe(true);
    const record = JSON.parse(readFileSync(join(h.stack.hooksStateDir, "hooks.json"), "utf8")) as { open: { ip: string }[] };
    expect(record.open.map((e) => e.ip), "the failed close is recorded on disk").toContain(v6);

    const hooks = h.stack.hooks!;
    hooks.signal("SIGTERM");
    const exit = await Promise.race([hooks.exited, sleep(5000).then(() => undefined)]);
    expect(exit?.exitCode, "knockport-hooks stops cleanly on SIGTERM").toBe(0);
    const attemptsWhileDown = closes();
    unlinkSync(failClose);
    await h.stack.startHooks();
    // The lease is gone from the helper's snapshot; the record still has it: on_close runs (and succeeds).
    expect(await pollUntil(() => (closes() > attemptsWhileDown ? true : undefined), 5000, 50), "on_close ran after the restart").toBe(true);
    const cleared = await pollUntil(() => {
      const after = JSON.parse(readFileSync(join(h.stack.hooksStateDir, "hooks.json"), "utf8")) as { open: { ip: string }[] };
      return after.open.some((e) => e.ip === v6) ? undefined : true;
    }, 5000, 50);
    expect(cleared, "the record forgets the address once on_close succeeded").toBe(true);
    await sleep(1500);
    expect(closes(), "no further attempt once one succeeded").toBe(attemptsWhileDown + 1);
  });
});
