// End-to-end, mistakes a newcomer makes on the first run (issue 17), on the real kernel with the real
// helper and server:
// - a second helper started next to a running one (another config and state dir on the same socket,
//   or the same state dir on another socket) exits with a clear message before any firewall command:
//   the running helper's table and state dir stay byte for byte as they were, the bystander stays out;
// - an interface_ext that does not exist is refused by the helper (before any firewall command) and by
//   `knockport check-config`, naming the interfaces that do; one listed in allow_missing_interfaces
//   fails closed while it is missing (the app's port dropped for everyone, the knocker too) and gets
//   its rules once it appears;
// - `knockport uninstall-firewall` never creates a state dir or a journal (a missing --state-dir, the
//   default one), and removes a lease journal an older helper left.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeKnockport, type KnockportOptions } from "./describe-knockport.js";
import { REPO_ROOT, states, type Harness } from "./harness.js";
import { cleanupStaleTopologies, createTopology, pollUntil, readNftTable, type ExecResult, type Topology } from "./testbed.js";

/** The table as nft lists it, without element countdowns and rule counters (they change on their own). */
async function tableSnapshot(h: Harness): Promise<unknown> {
  const table = await readNftTable(h.topo);
  expect(table, "table inet knockport must exist").toBeDefined();
  return JSON.parse(JSON.stringify(table, (key, value: unknown) => (key === "expires" || key === "counter" ? undefined : value))) as unknown;
}

/** Every file of the running helper's state dir with its content (its lock file names its pid). */
function stateSnapshot(h: Harness): Record<string, string> {
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

describeKnockport("knockport end to end (nftables): first run mistakes", "nftables", { duration: 300, step2HttpsDuration: 30, rateLimitPerMinute: 1000 }, (h) => {
  const scratch = mkdtempSync(join(tmpdir(), "kp-first-run-"));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  const runSecondHelper = (argv: string[]): Promise<ExecResult> => h.topo.exec("srv", process.execPath, argv, { timeoutMs: 15_000 });

  it("1. a second helper exits before any firewall command; the running helper's table and state dir are unchanged", async () => {
    await h.fullKnock("cli", h.ssh);
    expect(await states({ cli: () => h.svc("cli", h.ssh), cli2: () => h.svc("cli2", h.ssh) })).toEqual({ cli: "open", cli2: "closed" });
    const table = await tableSnapshot(h);
    const state = stateSnapshot(h);
    expect(Object.keys(state), "the running helper holds its lock there").toContain("helper.lock");

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
      expect(stateSnapshot(h), `${what}: the running helper's state dir`).toEqual(state);
      expect(await states({ cli: () => h.svc("cli", h.ssh), cli2: () => h.svc("cli2", h.ssh) }), what).toEqual({ cli: "open", cli2: "closed" });
      expect(r.stdout, `${what}: no firewall command ran`).not.toContain('"event":"firewall.installed"');
      expect(r.stderr, what).toMatch(message);
      expect(r.stderr, `${what}: no stack trace`).not.toMatch(/\n\s+at /);
    }
    expect(h.stack.helper.exitInfo, "the running helper is still running").toBeUndefined();
  });
  it("2. a missing interface_ext is refused by check-config, naming the interfaces that exist; a second helper with it changes nothing", async () => {
    const table = await tableSnapshot(h);
    const state = stateSnapshot(h);
    const bad = join(scratch, "eth9.yaml");
    writeFileSync(bad, readFileSync(h.stack.configPath, "utf8").replace(/^(\s*interface_ext:).*$/m, '$1 "eth9"'), { mode: 0o644 });
    const exists = new RegExp(`interface eth9 does not exist on this host \\(it has [^)]*\\b${h.topo.extInterface}\\b[^)]*\\).*allow_missing_interfaces`);

    const helper = await runSecondHelper(helperArgvWith(h, { "-c": bad }));
    // A helper alone would start fail-closed on it (interface-watch unit tests); this one meets the lock.
    expect({ exit: helper.exitCode, timedOut: helper.timedOut }, `helper: ${helper.stdout}${helper.stderr}`).toEqual({ exit: 1, timedOut: false });
    expect(await tableSnapshot(h), "a refused helper ran no firewall command").toEqual(table);
    expect(stateSnapshot(h)).toEqual(state);
    expect(helper.stderr, "no stack trace").not.toMatch(/\n\s+at /);

    const check = await h.stack.cli(["check-config", "-c", bad]);
    expect(check.exitCode, `check-config: ${check.stdout}${check.stderr}`).toBe(2);
    expect(check.stderr).toMatch(exists);
    const good = await h.stack.cli(["check-config", "-c", h.stack.configPath]);
    expect(good.exitCode, `check-config of the running config: ${good.stdout}${good.stderr}`).toBe(0);
  });
});

// srv's external interface carries another name when KnockPort starts, as a ppp or VPN interface
// that is not up yet; the config names it in allow_missing_interfaces.
let ext = "";
const away = (name: string): string => `${name}w`;
const rename = async (topo: Topology, from: string, to: string): Promise<void> => {
  for (const args of [["link", "set", "dev", from, "down"], ["link", "set", "dev", from, "name", to], ["link", "set", "dev", to, "up"]]) {
    await topo.exec("srv", "ip", args, { reject: true, timeoutMs: 10_000 });
  }
};
const extMissing: KnockportOptions = {
  duration: 300,
  step2HttpsDuration: 30,
  rateLimitPerMinute: 1000,
  allowMissingInterfaces: ["ext"],
  beforeKnockport: async (topo) => {
    ext = topo.extInterface;
    await rename(topo, ext, away(ext));
  },
};

describeKnockport("knockport end to end (nftables): an interface allowed to be missing fails closed until it appears", "nftables", extMissing, (h) => {

  it("3. while missing: logged, the app's port dropped for the knocker and the bystander; once there: the knocker's lease works, the bystander stays out", async () => {
    const missing = h.stack.helper.lines.find((l) => l.line.includes('"event":"interface.missing"'));
    expect(missing?.line, "the helper logs the missing interface").toContain(`"interface":"${ext}"`);
    expect(missing?.line).toContain('"level":50');

    await h.fullKnock("cli", h.ssh);
    expect(
      await states({ cli: () => h.svc("cli", h.ssh), cli2: () => h.svc("cli2", h.ssh) }),
      `with ${ext} missing, the ssh port is dropped on every interface`,
    ).toEqual({ cli: "closed", cli2: "closed" });

    await rename(h.topo, away(ext), ext);
    const appeared = await pollUntil(async () => (h.stack.helper.lines.some((l) => l.line.includes('"event":"interface.appeared"')) ? true : undefined), 8000, 100);
    expect(appeared, `the helper notices ${ext} within 8 s`).toBe(true);
    const opened = await pollUntil(async () => ((await h.svc("cli", h.ssh)) === "open" ? true : undefined), 5000, 200);
    expect(opened, "the knocker's lease (granted while the interface was missing) works once it is there").toBe(true);
    expect(await h.svc("cli2", h.ssh), "the bystander stays out").toBe("closed");
    expect(h.stack.helper.lines.some((l) => l.line.includes('"event":"firewall.reinstalled"') && l.line.includes('"reason"'))).toBe(true);
  });
});

describe("knockport end to end (nftables): uninstall-firewall creates no state", () => {
  let topo: Topology;
  const scratch = mkdtempSync(join(tmpdir(), "kp-uninstall-"));
  const DEFAULT_STATE_DIR = "/var/lib/knockport";
  beforeAll(async () => {
    cleanupStaleTopologies();
    topo = await createTopology();
  });
  afterAll(async () => {
    await topo?.destroy();
    rmSync(scratch, { recursive: true, force: true });
  });

  const uninstall = (args: readonly string[]): Promise<ExecResult> =>
    topo.exec("srv", process.execPath, [join(REPO_ROOT, "bin/knockport"), "uninstall-firewall", ...args], { timeoutMs: 30_000 });

  it("4. with a --state-dir that does not exist, or none (the default), no folder and no journal appear", async () => {
    const absent = join(scratch, "absent");
    const r = await uninstall(["--state-dir", absent]);
    expect(r.exitCode, `${r.stdout}${r.stderr}`).toBe(0);
    expect(existsSync(absent), `${absent} must not be created`).toBe(false);

    // An existing state dir without a journal gets none either (the lock file is all it gains).
    const empty = mkdtempSync(join(scratch, "empty-"));
    const e = await uninstall(["--state-dir", empty]);
    expect(e.exitCode, `${e.stdout}${e.stderr}`).toBe(0);
    expect(readdirSync(empty).filter((f) => f.startsWith("leases"))).toEqual([]);

    // The default state dir: only checkable where this host has none (the test never touches a real one).
    if (!existsSync(DEFAULT_STATE_DIR)) {
      const d = await uninstall([]);
      expect(d.exitCode, `${d.stdout}${d.stderr}`).toBe(0);
      expect(existsSync(DEFAULT_STATE_DIR), `${DEFAULT_STATE_DIR} must not be created`).toBe(false);
    }
  });

  it("5. a lease journal an older helper left is removed", async () => {
    const dir = mkdtempSync(join(scratch, "journal-"));
    const lease = { app: "ssh", ip: "198.51.100.10", step: 2, expiresAtMs: Date.now() + 3_600_000 };
    writeFileSync(join(dir, "leases.json"), JSON.stringify({ version: 1, leases: [lease] }), { mode: 0o600 });
    const r = await uninstall(["--state-dir", dir]);
    expect(r.exitCode, `${r.stdout}${r.stderr}`).toBe(0);
    // The journal goes (no list of old addresses stays behind), or is left empty.
    const file = join(dir, "leases.json");
    if (existsSync(file)) expect((JSON.parse(readFileSync(file, "utf8")) as { leases: unknown[] }).leases).toEqual([]);
    expect(readdirSync(dir).filter((f) => f.startsWith("leases")), "no lease journal left").toEqual([]);
  });
});
