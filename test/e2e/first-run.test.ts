// End-to-end, mistakes a newcomer makes on the first run (issue 17), on the real kernel with the real
// helper and server:
// - a second helper started next to a running one (another config and state dir on the same socket,
//   or the same state dir on another socket) exits with a clear message before any firewall command:
//   the running helper's table and journal stay byte for byte as they were, the bystander stays out.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Harness, states } from "./harness.js";
import { readNftTable, type ExecResult } from "./testbed.js";

/** The table as nft lists it, without element countdowns and rule counters (they change on their own). */
async function tableSnapshot(h: Harness): Promise<unknown> {
  const table = await readNftTable(h.topo);
  expect(table, "table inet knockport must exist").toBeDefined();
  return JSON.parse(JSON.stringify(table, (key, value: unknown) => (key === "expires" || key === "counter" ? undefined : value))) as unknown;
}

/** Every file of the running helper's state dir with its content. */
function journalSnapshot(h: Harness): Record<string, string> {
  const dir = h.stack.stateDir;
  return Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f), "utf8")]));
}

/** The running helper's command line with some flag values replaced. */
function helperArgvWith(h: Harness, replace: Record<string, string>): string[] {
  const argv = [...h.stack.helperArgv];
  for (const [flag, value] of Object.entries(replace)) {
    const i = argv.indexOf(flag);
    if (i < 0) throw new Error(`the testbed's helper command line has no ${flag}`);
    argv[i + 1] = value;
  }
  return argv;
}

describe("knockport end to end (nftables): first run mistakes", () => {
  const h = new Harness({ duration: 300, step2HttpsDuration: 30, rateLimitPerMinute: 1000 });
  const scratch = mkdtempSync(join(tmpdir(), "kp-first-run-"));

  beforeAll(() => h.start());
  afterAll(async () => {
    await h.stop();
    rmSync(scratch, { recursive: true, force: true });
  });
  beforeEach((ctx) => h.diagnoseOnFailure(ctx));

  const runSecondHelper = (argv: string[]): Promise<ExecResult> => h.topo.exec("srv", process.execPath, argv, { timeoutMs: 15_000 });

  it("1. a second helper exits before any firewall command; the running helper's table and journal are unchanged", async () => {
    await h.fullKnock("cli", h.ssh);
    expect(await states({ cli: () => h.svc("cli", h.ssh), cli2: () => h.svc("cli2", h.ssh) })).toEqual({ cli: "open", cli2: "closed" });
    const table = await tableSnapshot(h);
    const journal = journalSnapshot(h);
    expect(Object.keys(journal), "the running helper keeps a journal").toContain("leases.json");

    // Another config (the service ports guarded on lo only: open to everyone on ext) and its own state dir.
    const other = join(scratch, "other.yaml");
    writeFileSync(other, readFileSync(h.stack.configPath, "utf8").replace(/^(\s*interface_ext:).*$/m, '$1 "lo"'), { mode: 0o644 });
    const state2 = mkdtempSync(join(scratch, "state2-"));
    const socket2 = join(scratch, "helper2.sock");
    const cases: Array<[string, string[], RegExp]> = [
      ["another config and state dir, the same socket", helperArgvWith(h, { "-c": other, "--state-dir": state2 }), /--socket .*another knockport-helper is running/],
      ["the same config and state dir, another socket", helperArgvWith(h, { "--socket": socket2 }), /--state-dir .*another knockport-helper is running/],
    ];
    for (const [what, argv, message] of cases) {
      const r = await runSecondHelper(argv);
      expect({ exit: r.exitCode, timedOut: r.timedOut }, `${what}: ${r.stdout}${r.stderr}`).toEqual({ exit: 1, timedOut: false });
      expect(await tableSnapshot(h), `${what}: the running helper's table`).toEqual(table);
      expect(journalSnapshot(h), `${what}: the running helper's journal`).toEqual(journal);
      expect(await states({ cli: () => h.svc("cli", h.ssh), cli2: () => h.svc("cli2", h.ssh) }), what).toEqual({ cli: "open", cli2: "closed" });
      expect(r.stdout, `${what}: no firewall command ran`).not.toContain('"event":"firewall.installed"');
      expect(r.stderr, what).toMatch(message);
      expect(r.stderr, `${what}: no stack trace`).not.toMatch(/\n\s+at /);
    }
    expect(h.stack.helper.exitInfo, "the running helper is still running").toBeUndefined();
  });
});
