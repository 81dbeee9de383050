// End-to-end: the vyos backend against a simulated VyOS router (packages/testbed/tools/fake-vbash.mjs:
// VyOS's tables ip/ip6 vyos_filter with input default-action drop, a fake vbash that applies
// `set firewall ...` commands, and commits that re-render those tables and so wipe foreign rules).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Harness, states, type Family } from "./harness.js";
import { pollUntil, type AppSpec } from "./testbed.js";

describe("knockport end to end (vyos, simulated): bootstrap, knocks through VyOS's drop, self-heal after a commit", () => {
  const h = new Harness({ duration: 30, step2HttpsDuration: 10, rateLimitPerMinute: 1000, firewall: "vyos", vyosInputDefault: "drop" });
  let ssh: AppSpec;
  let openvpn: AppSpec;
  const chain = async (family: "ip" | "ip6"): Promise<string> => {
    const r = await h.topo.exec("srv", "nft", ["list", "chain", family, "vyos_filter", family === "ip" ? "NAME_IN-KnockPort" : "NAME6_IN-KnockPort"]);
    return r.exitCode === 0 ? r.stdout : `(missing: ${r.stderr.trim()})`;
  };

  beforeAll(async () => {
    await h.start();
    ssh = h.ssh;
    openvpn = h.openvpn;
  });
  afterAll(() => h.stop());
  beforeEach((ctx) => h.diagnoseOnFailure(ctx));

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

  it("3. a VyOS commit wipes our accepts (the knocker is cut off), the helper re-applies them within 5 s, leases kept", async () => {
    const reapplied = (): number => h.stack.helper.lines.filter((l) => l.line.includes('"event":"firewall.reinstalled"')).length;
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

  it("4. with --use-sudo and no VyOS chains, the helper prints the bootstrap for the admin instead of running vbash", async () => {
    h.stack.helper.signal("SIGTERM");
    await h.stack.helper.exited;
    // A router without our named chains (fresh config): both VyOS tables gone.
    await h.topo.exec("srv", "nft", ["-f", "-"], { input: "delete table ip vyos_filter\ndelete table ip6 vyos_filter\n", reject: true });
    const r = await h.stack.runHelperOnce(["--use-sudo", "--sudo-path", "/usr/bin/env"]);
    expect(r.exitCode, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain("with --use-sudo the helper does not run vbash");
    expect(r.stderr).toContain("set firewall ipv4 input filter rule 9999 jump-target 'IN-KnockPort'");
    expect(r.stderr).toContain("set firewall ipv6 name IN-KnockPort default-action 'return'");
  });
});
