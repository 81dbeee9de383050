// End-to-end: the vyos backend against a simulated VyOS router (packages/testbed/tools/fake-vbash.mjs:
// VyOS's tables ip/ip6 vyos_filter with input default-action drop, a fake vbash that applies
// `set firewall ...` commands, and commits that re-render those tables and so wipe foreign rules). Also: recovery
// after `nft flush ruleset` (VyOS's tables and ours gone) and element-by-element reconciliation of our sets.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, expect, it } from "vitest";
import { describeKnockport } from "./describe-knockport.js";
import { states, type Family, type Harness } from "./harness.js";
import { pollUntil, type AppSpec } from "./testbed.js";

const reinstalls = (h: Harness): number => h.stack.helper.lines.filter((l) => l.line.includes('"event":"firewall.reinstalled"')).length;

const stack = { duration: 60, step2HttpsDuration: 10, rateLimitPerMinute: 1000, vyosInputDefault: "drop", withLan: true } as const;

describeKnockport("knockport end to end (vyos, simulated): bootstrap, knocks through VyOS's drop, self-heal after a commit", "vyos", stack, (h) => {
  let ssh: AppSpec;
  let openvpn: AppSpec;
  const chain = async (family: "ip" | "ip6"): Promise<string> => {
    const r = await h.topo.exec("srv", "nft", ["list", "chain", family, "vyos_filter", family === "ip" ? "NAME_IN-KnockPort" : "NAME6_IN-KnockPort"]);
    return r.exitCode === 0 ? r.stdout : `(missing: ${r.stderr.trim()})`;
  };

  beforeAll(() => {
    ssh = h.ssh;
    openvpn = h.openvpn;
  });

  it("1. the helper bootstrapped VyOS's named chains through vbash (jump rule 9999) and filled them", async () => {
    for (const fam of ["ip", "ip6"] as const) {
      const input = await h.topo.exec("srv", "nft", ["list", "chain", fam, "vyos_filter", "VYOS_INPUT_filter"]);
      expect(input.stdout, `${fam} VYOS_INPUT_filter`).toMatch(/jump NAME6?_IN-KnockPort comment "ipv[46]-INP-filter-9999"/);
      expect(await chain(fam)).toContain(`tcp dport { ${ssh.port}, ${h.cfg.httpPort}, ${h.cfg.httpsPort} } accept`);
    }
    // Re-running the bootstrap changes nothing: VyOS answers "No configuration changes to commit".
    expect((await h.vyos([], "configure\nset firewall ipv4 name IN-KnockPort default-action 'return'\ncommit\n")).stdout).toContain("No configuration changes");
  });

  it.each([4, 6] as const)("2. IPv%i: through VyOS's input default-action drop, the knocker gets in and the bystander does not", async (family: Family) => {
    await h.fullKnock("cli", ssh, family);
    await h.fullKnock("cli", openvpn, family);
    expect(
      await states({ "cli ssh": () => h.svc("cli", ssh, family), "cli openvpn": () => h.svc("cli", openvpn, family), "cli2 ssh": () => h.svc("cli2", ssh, family), "cli2 https": () => h.https("cli2", family) }),
    ).toEqual({ "cli ssh": "open", "cli openvpn": "open", "cli2 ssh": "closed", "cli2 https": "closed" });
  });

  it.each([4, 6] as const)("2b. IPv%i: a host on another interface (the LAN, int0) stays behind VyOS's drop: our accepts are for interface_ext only", async (family: Family) => {
    expect(await states({ "lan ssh": () => h.svc("lan", ssh, family), "lan https": () => h.https("lan", family) })).toEqual({ "lan ssh": "closed", "lan https": "closed" });
    // Control: the same probes from the knocker on interface_ext get in, so "closed" is VyOS's drop at work.
    expect(await states({ "cli ssh": () => h.svc("cli", ssh, family) })).toEqual({ "cli ssh": "open" });
  });

  it("3. a VyOS commit wipes our accepts (the knocker is cut off), the helper re-applies them within 5 s, leases kept", async () => {
    const reapplied = (): number => reinstalls(h);
    const before = reapplied();
    const commit = await h.vyos(["--commit"]);
    expect(commit.exitCode, commit.stderr).toBe(0);
    const committed = Date.now();
    // The commit re-created VyOS's tables (our accepts gone, the knocker cut off by VyOS's drop) until
    // the helper's next check (every 2 s) re-applies them; wait for that re-apply.
    const healed = await pollUntil(async () => (reapplied() > before && (await h.svc("cli", ssh, 4, 300)) === "open" ? Date.now() : undefined), 8000, 100);
    expect(healed, "the helper must re-apply after the commit and the knocker's access come back").toBeDefined();
    expect((healed ?? Infinity) - committed, "re-applied within 5 s").toBeLessThan(5000);
    expect(
      await states({ "cli ssh v4": () => h.svc("cli", ssh, 4), "cli ssh v6": () => h.svc("cli", ssh, 6), "cli2 ssh v4": () => h.svc("cli2", ssh, 4), "cli2 ssh v6": () => h.svc("cli2", ssh, 6) }),
    ).toEqual({ "cli ssh v4": "open", "cli ssh v6": "open", "cli2 ssh v4": "closed", "cli2 ssh v6": "closed" });
    expect(await chain("ip6")).toContain("KnockPort: its own table already filtered these");
  });

  it("3b. `nft flush ruleset` (VyOS's tables and ours gone): the helper makes VyOS re-render its tables, refills our chains and puts the leases back within 5 s", async () => {
    // The service leases of test 2 (60 s); their step-1 leases (10 s) may end during this test.
    const serviceLeases = async (): Promise<string[]> =>
      (await h.stack.status()).filter((l) => l.step === 2).map((l) => `${l.app} ${l.ip} ${l.expiresAt}`).sort();
    const leasesBefore = await serviceLeases();
    expect(leasesBefore, "leases of test 2 are live").toHaveLength(4);
    const before = reinstalls(h);
    const flush = await h.topo.exec("srv", "nft", ["flush", "ruleset"]);
    expect(flush.exitCode, flush.stderr).toBe(0);
    const flushed = Date.now();
    // No probe of the unprotected moment: `nft monitor` reports the flush at once and our table may be back
    // before any probe. The re-apply counted after the flush shows it was real and noticed.
    const healed = await pollUntil(
      async () =>
        reinstalls(h) > before && (await h.svc("cli2", ssh, 4, 200)) === "closed" && (await h.svc("cli", ssh, 4, 300)) === "open" ? Date.now() : undefined,
      10_000,
      100,
    );
    expect(healed, "VyOS's tables, our chains and our table must come back with the leases").toBeDefined();
    console.info(`[vyos] nft flush ruleset: bystander locked out again and knocker back ${(healed ?? 0) - flushed} ms after the flush`);
    expect((healed ?? Infinity) - flushed, "within 5 s").toBeLessThan(5000);
    expect(
      await states({ "cli ssh v6": () => h.svc("cli", ssh, 6), "cli openvpn v4": () => h.svc("cli", openvpn, 4), "cli2 ssh v6": () => h.svc("cli2", ssh, 6), "cli2 https": () => h.https("cli2", 4) }),
    ).toEqual({ "cli ssh v6": "open", "cli openvpn v4": "open", "cli2 ssh v6": "closed", "cli2 https": "closed" });
    for (const fam of ["ip", "ip6"] as const) {
      const input = await h.topo.exec("srv", "nft", ["list", "chain", fam, "vyos_filter", "VYOS_INPUT_filter"]);
      expect(input.stdout, `${fam} VYOS_INPUT_filter re-rendered with its drop and our jump`).toMatch(/jump NAME6?_IN-KnockPort[\s\S]*drop comment "input default-action drop"/);
      expect(await chain(fam)).toContain("KnockPort: its own table already filtered these");
    }
    expect(await serviceLeases(), "the same leases, same deadlines").toEqual(leasesBefore);
    // VyOS's configuration ends as it was: re-running the bootstrap is still a commit without changes.
    expect((await h.vyos([], "configure\nset firewall ipv4 name IN-KnockPort description 'KnockPort (rules managed by knockport-helper)'\ncommit\n")).stdout).toContain("No configuration changes");
  });

  it("3c. elements reconciled one by one in our table: a stray added by hand is removed, a deleted live one put back, nothing duplicated", async () => {
    const cli = h.ip("cli", 4);
    const cli2 = h.ip("cli2", 4);
    const edits = "add element inet knockport svc_ssh_v4 { " + cli2 + " timeout 1h }\ndelete element inet knockport svc_ssh_v4 { " + cli + " }\n";
    // Right after a walk: the control probes below then run a whole interval before the next one repairs the edits.
    await h.stack.nextReconcile();
    const r = await h.topo.exec("srv", "nft", ["-f", "-"], { input: edits });
    expect(r.exitCode, r.stderr).toBe(0);
    const changed = Date.now();
    expect(await states({ cli2: () => h.svc("cli2", ssh, 4), cli: () => h.svc("cli", ssh, 4, 200) }), "control: the hand edits took effect").toEqual({ cli2: "open", cli: "closed" });
    const fixed = await pollUntil(
      async () => ((await h.svc("cli2", ssh, 4, 150)) === "closed" && (await h.svc("cli", ssh, 4, 300)) === "open" ? Date.now() : undefined),
      8000,
      100,
    );
    expect(fixed, "stray removed and the lease put back").toBeDefined();
    console.info(`[vyos] reconcile: stray removed and missing lease re-added ${(fixed ?? 0) - changed} ms after the hand edits`);
    expect((fixed ?? Infinity) - changed, "within the 2 s interval (+ probe time)").toBeLessThan(3500);
    expect((await h.elementsHolding(cli)).filter((e) => e.set === "svc_ssh_v4"), "re-added once").toHaveLength(1);
    expect(await h.elementsHolding(cli2), "no element for cli2").toEqual([]);
    expect(h.stack.helper.lines.some((l) => l.line.includes('"event":"firewall.reconciled"')), "logged as a reconcile, not a reinstall").toBe(true);
  });

  it("4. with --use-sudo and no VyOS chains, the helper installs its own table and prints the bootstrap for the admin instead of running vbash", async () => {
    h.stack.helper.signal("SIGTERM");
    await h.stack.helper.exited;
    // A router without our named chains (fresh config): both VyOS tables gone, and ours too.
    await h.topo.exec("srv", "nft", ["-f", "-"], { input: "delete table ip vyos_filter\ndelete table ip6 vyos_filter\ndelete table inet knockport\n", reject: true });
    // A sudo stand-in that runs `sudo -n -- PROGRAM ARGS` as PROGRAM ARGS (the helper runs as root here).
    const dir = mkdtempSync(join(tmpdir(), "kp-vyos-sudo-"));
    const sudo = join(dir, "sudo");
    writeFileSync(sudo, '#!/bin/sh\n[ "$1" = -n ] && [ "$2" = -- ] || exit 97\nshift 2\nexec "$@"\n', { mode: 0o755 });
    chmodSync(dir, 0o755);
    const r = await h.stack.runHelperOnce(["--use-sudo", "--sudo-path", sudo]);
    rmSync(dir, { recursive: true, force: true });
    expect(r.exitCode, r.stdout + r.stderr).toBe(1);
    // Our table (its drops) is in place even though the helper could not finish: nothing fails open.
    expect(await h.firewallState(), "our table was installed first").toBeDefined();
    expect(r.stderr).toContain("with --use-sudo the helper does not run vbash");
    expect(r.stderr).toContain("set firewall ipv4 input filter rule 9999 jump-target 'IN-KnockPort'");
    expect(r.stderr).toContain("set firewall ipv6 name IN-KnockPort default-action 'return'");
  });
});
