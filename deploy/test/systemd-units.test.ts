/**
 * The shipped systemd units: `systemd-analyze verify` finds nothing to complain about, and their
 * exposure scores (`systemd-analyze security --offline=yes`) stay under the goals in docs/operations.md.
 * Skipped, with the reason, where systemd-analyze is not installed (apt-get install systemd).
 */
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const DEPLOY = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const UNITS = ["knockport-helper.service", "knockport-server.service", "knockport-hooks.service", "knockport-cluster-sync.service", "knockport.timer"];
/** The goals of issue 6; docs/operations.md lists the measured scores. */
const GOALS: Record<string, number> = { "knockport-helper.service": 2.5, "knockport-server.service": 2.0, "knockport-hooks.service": 2.0, "knockport-cluster-sync.service": 2.0 };
const SYSTEM_UNITS = "/usr/lib/systemd/system";

const analyze = spawnSync("systemd-analyze", ["--version"], { encoding: "utf8" });
const missing = analyze.error
  ? "systemd-analyze is not installed (apt-get install systemd)"
  : !existsSync(join(SYSTEM_UNITS, "sysinit.target"))
    ? `${SYSTEM_UNITS} has no systemd units to verify against`
    : undefined;
if (missing) console.warn(`skipping systemd unit tests: ${missing}`);

function run(args: string[], cwd: string): { status: number | null; output: string } {
  const r = spawnSync("systemd-analyze", args, { cwd, encoding: "utf8", timeout: 30_000, env: { ...process.env, SYSTEMD_PAGER: "", SYSTEMD_COLORS: "0" } });
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

/** A throwaway root: the host's stock units (sysinit.target...), ours, and an executable /usr/bin/node. */
function makeRoot(units: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "knockport-units-"));
  mkdirSync(join(root, "usr/lib/systemd"), { recursive: true });
  cpSync(SYSTEM_UNITS, join(root, "usr/lib/systemd/system"), { recursive: true, dereference: false });
  mkdirSync(join(root, "usr/bin"), { recursive: true });
  writeFileSync(join(root, "usr/bin/node"), "#!/bin/sh\nexit 0\n");
  chmodSync(join(root, "usr/bin/node"), 0o755);
  mkdirSync(join(root, "etc/systemd/system"), { recursive: true });
  for (const [name, text] of Object.entries(units)) writeFileSync(join(root, "etc/systemd/system", name), text);
  return root;
}

function verify(root: string, names: string[]): { status: number | null; output: string } {
  return run(["verify", `--root=${root}`, ...names.map((n) => `/etc/systemd/system/${n}`)], root);
}

function exposure(file: string, cwd: string): number {
  const r = run(["security", "--offline=yes", "--no-pager", file], cwd);
  const m = /Overall exposure level for \S+: ([0-9.]+)/.exec(r.output);
  if (!m) throw new Error(`no exposure level in: ${r.output.slice(-500)}`);
  return Number(m[1]);
}

describe.skipIf(missing !== undefined)("systemd units", () => {
  const shipped = Object.fromEntries(UNITS.map((u) => [u, readFileSync(join(DEPLOY, "systemd", u), "utf8")]));
  const roots: string[] = [];
  let root = "";
  beforeAll(() => {
    root = makeRoot(shipped);
    roots.push(root);
  });
  afterAll(() => {
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  });

  it("systemd-analyze verify accepts all units without a single warning", () => {
    const r = verify(root, UNITS);
    expect(r.output).toBe("");
    expect(r.status).toBe(0);
  });

  it("the check can fail: a misspelt key is reported", () => {
    const broken = shipped["knockport-helper.service"]!.replace("NoNewPrivileges=yes", "NoNewPrivilege=yes");
    const r2 = makeRoot({ "knockport-helper.service": broken });
    roots.push(r2);
    expect(verify(r2, ["knockport-helper.service"]).output).toMatch(/Unknown key 'NoNewPrivilege'/);
  });

  it.each(Object.entries(GOALS))("%s: exposure score stays at or below %s", (unit, goal) => {
    const score = exposure(join(root, "etc/systemd/system", unit), root);
    expect(score).toBeGreaterThan(0);
    expect(score).toBeLessThanOrEqual(goal);
  });

  it.each(["unprivileged.conf.example", "iptables.conf.example", "cluster.conf.example"])(
    "the helper drop-in %s verifies and keeps the helper under its goal",
    (name) => {
      const dropIn = readFileSync(join(DEPLOY, "systemd/knockport-helper.service.d", name), "utf8");
      // A drop-in's lines count as if appended to the unit (an empty ExecStart= resets the list).
      const merged = `${shipped["knockport-helper.service"]}\n${dropIn}`;
      const r3 = makeRoot({ "knockport-helper.service": merged });
      roots.push(r3);
      expect(verify(r3, ["knockport-helper.service"]).output).toBe("");
      expect(exposure(join(r3, "etc/systemd/system/knockport-helper.service"), r3)).toBeLessThanOrEqual(GOALS["knockport-helper.service"]!);
    },
  );

  it("the server needs the helper, the helper comes after nftables, the timer waits 60 s", () => {
    expect(shipped["knockport-server.service"]).toMatch(/^Requires=knockport-helper\.service$/m);
    expect(shipped["knockport-server.service"]).toMatch(/^After=knockport-helper\.service/m);
    expect(shipped["knockport-server.service"]).toMatch(/^User=knockport$/m);
    expect(shipped["knockport-server.service"]).toMatch(/^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$/m);
    expect(shipped["knockport-helper.service"]).toMatch(/^After=.*nftables\.service/m);
    expect(shipped["knockport-helper.service"]).toMatch(/^CapabilityBoundingSet=CAP_NET_ADMIN$/m);
    expect(shipped["knockport.timer"]).toMatch(/^OnBootSec=60$/m);
  });

  it("helper and server read the same config and socket, and neither overrides the knock ports", () => {
    const execStart = (unit: string): string => /^ExecStart=((?:.*\\\n)*.*)$/m.exec(shipped[unit]!)![1]!.replace(/\\\n\s*/g, " ");
    const helper = execStart("knockport-helper.service");
    const server = execStart("knockport-server.service");
    for (const cmd of [helper, server]) {
      expect(cmd).toContain("-c /etc/knockport/config.yaml");
      expect(cmd).toContain("--socket /run/knockport/helper.sock");
      expect(cmd).not.toMatch(/--https?-port/);
    }
    expect(helper).toContain("--socket-group knockport");
    // The admin socket is root's alone: no group flag, so the helper makes it 0600.
    expect(helper).toContain("--admin-socket /run/knockport/admin.sock");
    expect(helper).not.toContain("--admin-socket-group");
    expect(server).not.toContain("admin.sock");
    expect(shipped["knockport-server.service"]).toMatch(/^Group=knockport$/m);
    expect(server).toContain("--state-dir /var/lib/knockport-server");
    expect(shipped["knockport-server.service"]).toMatch(/^StateDirectory=knockport-server$/m);
  });
});
