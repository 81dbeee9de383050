// End-to-end: an app's on_open / on_close commands, run by the real helper (root, in srv) without a
// shell, recorded by a small script: on a knock, at expiry (kernel closed the port), at revoke, and
// from `knockport grant`.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Harness } from "./harness.js";
import { pollUntil, type AppSpec } from "./testbed.js";

const DURATION_S = 3;

describe("command hooks (nftables, real helper)", () => {
  const dir = mkdtempSync(join(tmpdir(), "knockport-hooks-e2e-"));
  const calls = join(dir, "calls.tsv");
  const recorder = join(dir, "record-call");
  // Test fixture (not product code): appends its arguments, tab-separated, one call per line.
  writeFileSync(recorder, `#!/bin/sh\nIFS="$(printf '\\t')"\nprintf '%s\\n' "$*" >> '${calls}'\n`);
  chmodSync(dir, 0o755);
  chmodSync(recorder, 0o755);

  const h = new Harness({
    duration: DURATION_S,
    step2HttpsDuration: 5,
    rateLimitPerMinute: 1000,
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
  });
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

  beforeAll(async () => {
    await h.start();
    app = h.ssh;
    cliIp = h.topo.addr.cli.v4;
  });
  afterAll(async () => {
    await h.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach((ctx) => h.diagnoseOnFailure(ctx));

  it("a knock runs on_open with the client's address; the kernel's expiry runs on_close", async () => {
    const { done } = await h.fullKnock("cli", app);
    await waitForCalls(1, 5000);
    const port = `${app.port}/${app.protocol}`;
    expect(recorded()).toEqual([["open", app.name, cliIp, port, String(DURATION_S)]]);
    // the sweep notices the end of the lease within about a second of the deadline
    await waitForCalls(2, DURATION_S * 1000 + 5000);
    expect(Date.now()).toBeGreaterThanOrEqual(done + DURATION_S * 1000 - 1000);
    expect(recorded()[1]).toEqual(["close", app.name, cliIp, port, "0"]);
    expect(await h.svc("cli", app)).toBe("closed");
  });

  it("knockport grant reports its on_open, knockport revoke its on_close", async () => {
    const before = recorded().length;
    const v6 = h.topo.addr.cli.v6;
    const g = await h.stack.cli(["grant", "--app", app.name, "--ip", v6, "--admin-socket", h.stack.adminSocketPath, "--json"]);
    expect(g.exitCode, g.stderr).toBe(0);
    expect(JSON.parse(g.stdout)).toMatchObject({ hooks: { ran: 1, failed: 0 } });
    const r = await h.stack.cli(["revoke", "--app", app.name, "--ip", v6, "--admin-socket", h.stack.adminSocketPath, "--json"]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ closed: 1, hooks: { ran: 1, failed: 0 } });
    expect(recorded().slice(before).map((c) => [c[0], c[2]])).toEqual([
      ["open", v6],
      ["close", v6],
    ]);
  });
});
