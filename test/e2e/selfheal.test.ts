// End-to-end: KnockPort's rules wiped from outside while the helper runs (`nft flush ruleset`,
// `iptables-restore` of a saved ruleset without our chains, as a careless admin or a firewall reload would): the helper
// notices within its check interval (2 s) and re-applies everything with the live leases, so the
// knocker keeps access and the bystander is locked out again within 5 s. The server's /metrics shows
// the re-apply in knockport_helper_reinstalls_total.
import { beforeAll, expect, it } from "vitest";
import { describeKnockport } from "./describe-knockport.js";
import { e2eFirewalls, states } from "./harness.js";
import { pollUntil, sleep, type AppSpec } from "./testbed.js";

const METRICS_PORT = 9464;

// Not for vyos: `nft flush ruleset` deletes VyOS's own tables too, and VyOS itself cannot recreate them
// without a real configuration change (docs/firewall.md, VyOS); vyos.test.ts covers the VyOS case, a commit.
const stack = { duration: 30, step2HttpsDuration: 5, rateLimitPerMinute: 1000, serverArgs: ["--metrics-port", String(METRICS_PORT)] };

describeKnockport("knockport end to end ($firewall): self-heal after a flush from outside", e2eFirewalls().filter((f) => f !== "vyos"), stack, (h, { firewall }) => {
  let ssh: AppSpec;

  /** One series of the server's /metrics page (scraped from inside srv, its loopback). */
  const metric = async (series: string): Promise<number | undefined> => {
    const page = await h.topo.exec("srv", "curl", ["-sS", "-m", "5", `http://127.0.0.1:${METRICS_PORT}/metrics`], { timeoutMs: 10_000 });
    if (page.exitCode !== 0) throw new Error(`curl /metrics: ${page.stderr}`);
    const line = page.stdout.split("\n").find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };

  /** Replaces the whole ruleset at once, as reloading a saved firewall (`iptables-restore < rules`) does. */
  const wipe = async (): Promise<void> => {
    const empty = [
      "*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", "COMMIT",
      "*raw", ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", "COMMIT",
      "*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]", "COMMIT", "",
    ].join("\n");
    const cmds: Array<[string, string[], string | undefined]> =
      firewall === "nftables"
        ? [["nft", ["flush", "ruleset"], undefined]]
        : (firewall === "iptables-nft" ? ["iptables-nft-restore", "ip6tables-nft-restore"] : ["iptables-legacy-restore", "ip6tables-legacy-restore"]).map(
            (bin): [string, string[], string] => [bin, ["-w", "5"], empty],
          );
    for (const [file, args, input] of cmds) {
      const r = await h.topo.exec("srv", file, args, { timeoutMs: 10_000, ...(input !== undefined ? { input } : {}) });
      if (r.exitCode !== 0) throw new Error(`${file} ${args.join(" ")}: ${r.stderr}`);
    }
  };

  beforeAll(() => {
    ssh = h.ssh;
  });

  it("re-applies within 5 s, keeping the knocker's lease and locking the bystander out again", async () => {
    await h.fullKnock("cli", ssh);
    expect(await states({ cli: () => h.svc("cli", ssh), cli2: () => h.svc("cli2", ssh) })).toEqual({ cli: "open", cli2: "closed" });
    const reapplied = (): number => h.stack.helper.lines.filter((l) => l.line.includes('"event":"firewall.reinstalled"')).length;
    const before = reapplied();
    const reinstallsBefore = await metric("knockport_helper_reinstalls_total");
    expect(reinstallsBefore, "the helper's counts are on /metrics").toBe(0);
    await wipe();
    const wiped = Date.now();
    // No probe of the unprotected moment: the helper's next check (every 2 s) may come before it. The
    // re-apply logged after the wipe shows the wipe was real and noticed.
    const healed = await pollUntil(async () => (reapplied() > before && (await h.svc("cli2", ssh, 4, 300)) === "closed" ? Date.now() : undefined), 8000, 100);
    expect(healed, "the helper must re-apply and the bystander be locked out again").toBeDefined();
    expect((healed ?? Infinity) - wiped, "re-applied within 5 s").toBeLessThan(5000);
    expect(await states({ cli: () => h.svc("cli", ssh), cli2: () => h.svc("cli2", ssh) })).toEqual({ cli: "open", cli2: "closed" });
    expect(h.stack.helper.lines.some((l) => l.line.includes('"event":"firewall.reinstalled"')), "the helper logs the re-apply").toBe(true);
    // The server asks the helper at most every 5 s: wait out its cache, then the re-apply is counted.
    await sleep(5200);
    expect(await metric("knockport_helper_reinstalls_total")).toBe(reapplied() - before);
    expect(await metric("knockport_helper_reconciliations_total"), "reconciliations ran while the rules were in place").toBeGreaterThan(0);
    expect(await metric("knockport_helper_selfheal_failures_total")).toBe(0);
  });
});
