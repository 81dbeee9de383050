// End-to-end: custom nftables tables and chains (docs/firewall.md "Custom tables and chains"). The srv host has
// its own ruleset first (`table inet filter`, input policy drop, the admin's accepts and a rule of the
// admin's that must survive); the helper runs with --nftables-table-filter filter and hooks into it
// with one jump instead of owning `table inet knockport`. Checked on the real kernel: the knocker's
// two steps open the service port (real TCP connect) with no accept line of the admin's for it, the
// bystander stays out, the lease expires; a helper restart keeps the lease and never duplicates the
// jump; a flushed chain of ours or a deleted jump is repaired within 5 s; uninstall leaves the admin's
// table exactly as it was (handles included); a start against a missing table or a wrong chain fails
// naming the flag and changes nothing.
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeKnockport, type KnockportOptions } from "./describe-knockport.js";
import { PROBE_MS, expectOk, expectStep1NoReply, lanAndExampleApps, states } from "./harness.js";
import { pollUntil, probe, sleep, startEchoServer, type AppSpec, type ManagedProcess, type PortState, type Topology } from "./testbed.js";

const JUMP_COMMENT = "KnockPort: jump to its own rules, managed by knockport-helper";

const ADMIN_RULESET = [
  "table inet filter {",
  "  set admin_hosts {",
  "    type ipv4_addr",
  "    elements = { 192.0.2.1 }",
  "  }",
  "  chain input {",
  "    type filter hook input priority filter; policy drop;",
  '    iif lo accept comment "admin: loopback"',
  '    ct state established,related accept comment "admin: replies"',
  '    meta l4proto { icmp, ipv6-icmp } accept comment "admin: icmp and neighbour discovery"',
  '    tcp dport 2222 accept comment "admin: a rule that must survive"',
  "  }",
  "  chain forward {",
  "    type filter hook forward priority filter; policy drop;",
  '    ct state established,related accept comment "admin: replies of forwarded connections"',
  "  }",
  "  chain admin_only {",
  '    ip saddr @admin_hosts accept comment "admin: a chain of its own"',
  "  }",
  "}",
  "",
].join("\n");

interface Rule {
  chain: string;
  handle: number;
  comment?: string;
  expr?: unknown[];
}
type Listed = Array<Record<string, Record<string, unknown>>>;

async function nft(topo: Topology, args: string[], input?: string): Promise<string> {
  const r = await topo.exec("srv", "nft", args, { timeoutMs: 10_000, ...(input !== undefined ? { input } : {}) });
  if (r.exitCode !== 0) throw new Error(`nft ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

async function listFilter(topo: Topology): Promise<Listed> {
  const doc = JSON.parse(await nft(topo, ["-j", "list", "table", "inet", "filter"])) as { nftables: Listed };
  return doc.nftables.filter((o) => o.metainfo === undefined);
}

/** The admin's objects (ours are all named knockport_* or carry our jump comment), exactly as listed. */
function adminObjects(listed: Listed): Listed {
  return listed.filter((o) => {
    const body = Object.values(o)[0] ?? {};
    if (typeof body.name === "string" && body.name.startsWith("knockport_")) return false;
    if (typeof body.chain === "string" && body.chain.startsWith("knockport_")) return false;
    return body.comment !== JUMP_COMMENT;
  });
}

const rules = (listed: Listed): Rule[] => listed.flatMap((o) => (o.rule ? [o.rule as unknown as Rule] : []));
const jumps = (listed: Listed): Rule[] => rules(listed).filter((r) => r.comment === JUMP_COMMENT);

/** The admin's table as it stood before KnockPort started. */
let adminBefore: Listed = [];
const customChains: KnockportOptions = {
  duration: 8,
  step2HttpsDuration: 6,
  rateLimitPerMinute: 1000,
  helperArgs: ["--nftables-table-filter", "filter"],
  beforeKnockport: async (topo) => {
    await nft(topo, ["-f", "-"], ADMIN_RULESET);
    adminBefore = await listFilter(topo);
  },
};

describeKnockport("knockport end to end (nftables): custom table and chains in the admin's ruleset", "nftables", customChains, (h) => {
  let ssh: AppSpec;
  const extra: ManagedProcess[] = [];
  let helper!: ManagedProcess;
  const reinstalls = (): number => [h.stack.helper, ...extra].flatMap((p) => p.lines).filter((l) => l.line.includes('"event":"firewall.reinstalled"')).length;

  beforeAll(() => {
    ssh = h.ssh;
    helper = h.stack.helper;
  });
  afterAll(async () => {
    for (const p of extra) await p.stop(2000).catch(() => undefined);
  });

  it("adds its sets and chains to the admin's table, one jump at the top of input, no table of its own", async () => {
    const listed = await listFilter(h.topo);
    expect(adminObjects(listed)).toEqual(adminBefore);
    const inputRules = rules(listed).filter((r) => r.chain === "input");
    expect(inputRules[0]?.comment).toBe(JUMP_COMMENT);
    expect(inputRules[0]?.expr).toEqual([{ jump: { target: "knockport_input" } }]);
    expect(jumps(listed)).toHaveLength(1);
    const tables = await nft(h.topo, ["list", "tables"]);
    expect(tables).not.toContain("knockport");
    expect(listed.filter((o) => o.set).map((o) => o.set?.name)).toEqual(
      expect.arrayContaining(["admin_hosts", "knockport_https_v4", "knockport_https_v6", `knockport_svc_${ssh.name}_v4`, `knockport_svc_${ssh.name}_v6`]),
    );
  });

  it("with the admin's input policy drop and no accept line of theirs, the knocker gets in (TCP connect), the bystander stays out, the lease expires", async () => {
    expect(await states({ cli: () => h.svc("cli", ssh), cli2: () => h.svc("cli2", ssh) })).toEqual({ cli: "closed", cli2: "closed" });
    await h.fullKnock("cli", ssh);
    expect(
      await states({
        "cli ssh": () => h.svc("cli", ssh),
        "cli2 ssh": () => h.svc("cli2", ssh),
        "cli2 https": () => h.https("cli2"),
        "cli ssh IPv6 (knocked over IPv4 only)": () => h.svc("cli", ssh, 6),
      }),
    ).toEqual({ "cli ssh": "open", "cli2 ssh": "closed", "cli2 https": "closed", "cli ssh IPv6 (knocked over IPv4 only)": "closed" });
    await h.fullKnock("cli2", ssh, 6);
    expect(await states({ v6: () => h.svc("cli2", ssh, 6), v4: () => h.svc("cli2", ssh, 4) })).toEqual({ v6: "open", v4: "closed" });
    await h.waitExpired(h.leaseKey("cli", 4, ssh.name), h.leaseKey("cli2", 6, ssh.name));
    expect(await states({ cli: () => h.svc("cli", ssh), cli2: () => h.svc("cli2", ssh, 6) })).toEqual({ cli: "closed", cli2: "closed" });
  });

  it("a helper restart keeps the live lease, the admin's table intact and exactly one jump", async () => {
    await h.fullKnock("cli", ssh);
    helper.signal("SIGTERM");
    const exit = await Promise.race([helper.exited, sleep(5000).then(() => undefined)]);
    expect(exit?.exitCode, `helper exit after SIGTERM: ${JSON.stringify(exit)}`).toBe(0);
    helper = h.topo.spawn("srv", process.execPath, [...h.stack.helperArgv], { label: "knockport-helper (restarted)" });
    extra.push(helper);
    await helper.waitForLine(/"msg":"helper ready"/, 20_000);
    const listed = await listFilter(h.topo);
    expect(jumps(listed), "one jump after the restart").toHaveLength(1);
    expect(adminObjects(listed)).toEqual(adminBefore);
    expect(await states({ cli: () => h.svc("cli", ssh), cli2: () => h.svc("cli2", ssh) })).toEqual({ cli: "open", cli2: "closed" });
  });

  it("self-heal: a flushed chain of ours and a deleted jump are back within 5 s, with the live lease", async () => {
    await h.fullKnock("cli", ssh);
    for (const damage of ["flush chain", "delete jump"] as const) {
      const before = reinstalls();
      if (damage === "flush chain") await nft(h.topo, ["flush", "chain", "inet", "filter", "knockport_input"]);
      else {
        const jump = jumps(await listFilter(h.topo))[0];
        expect(jump).toBeDefined();
        await nft(h.topo, ["delete", "rule", "inet", "filter", "input", "handle", String(jump?.handle)]);
      }
      const damaged = Date.now();
      const healed = await pollUntil(
        async () => (reinstalls() > before && (await h.svc("cli", ssh, 4, 300)) === "open" ? Date.now() : undefined),
        8000,
        100,
      );
      expect(healed, `${damage}: the helper must re-apply and the knocker get back in`).toBeDefined();
      console.info(`[custom-chains] ${damage}: knocker back in ${(healed ?? NaN) - damaged} ms after the damage`);
      expect((healed ?? Infinity) - damaged, `${damage}: repaired within 5 s`).toBeLessThan(5000);
      const listed = await listFilter(h.topo);
      expect(jumps(listed), `${damage}: exactly one jump`).toHaveLength(1);
      expect(rules(listed).filter((r) => r.chain === "input")[0]?.comment).toBe(JUMP_COMMENT);
      expect(adminObjects(listed)).toEqual(adminBefore);
      expect(await states({ cli: () => h.svc("cli", ssh), cli2: () => h.svc("cli2", ssh) })).toEqual({ cli: "open", cli2: "closed" });
    }
  });

  it("reconciliation reads the admin's table: a stray element added by hand to our set is removed", async () => {
    const cli2 = h.ip("cli2", 4);
    // Right after a walk: the control probe below then runs a whole interval before the next one removes the stray.
    await h.stack.nextReconcile();
    await nft(h.topo, ["add", "element", "inet", "filter", `knockport_svc_${ssh.name}_v4`, `{ ${cli2} timeout 60s }`]);
    const added = Date.now();
    expect(await h.svc("cli2", ssh), "the stray element lets cli2 in").toBe("open");
    const fixed = await pollUntil(async () => ((await h.svc("cli2", ssh, 4, 300)) === "closed" ? Date.now() : undefined), 8000, 100);
    expect(fixed, "the stray element is removed").toBeDefined();
    console.info(`[custom-chains] reconcile: stray removed ${(fixed ?? NaN) - added} ms after it was added`);
    expect(await nft(h.topo, ["list", "set", "inet", "filter", `knockport_svc_${ssh.name}_v4`])).not.toContain(cli2);
  });

  it("uninstall leaves the admin's table exactly as before; a start against a wrong table or chain fails naming the flag", async () => {
    helper.signal("SIGTERM");
    await Promise.race([helper.exited, sleep(5000)]);
    const r = await h.stack.firewallCommand("uninstall-firewall");
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await listFilter(h.topo), "the admin's table, handles and all, as before KnockPort started").toEqual(adminBefore);
    expect(await nft(h.topo, ["list", "tables"])).not.toContain("knockport");

    const cases: Array<[string[], RegExp]> = [
      [["--nftables-table-filter", "nosuch"], /--nftables-table-filter: table inet nosuch does not exist/],
      [["--nftables-chain-input", "forward"], /--nftables-chain-input: chain forward of table inet filter is a filter chain on hook forward, not a filter chain on hook input/],
      [["--nftables-chain-input", "admin_only"], /--nftables-chain-input: chain admin_only of table inet filter is a regular chain \(no hook\)/],
      [["--nftables-chain-output", "output"], /--nftables-chain-output: table inet filter has no chain output/],
    ];
    for (const [args, message] of cases) {
      const failed = await h.stack.runHelperOnce(args);
      expect(failed.exitCode, `${args.join(" ")}: ${failed.stderr}`).toBe(1);
      expect(failed.stderr).toMatch(message);
      expect(failed.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
    expect(await listFilter(h.topo), "failed starts change nothing").toEqual(adminBefore);
  });
});

const lanPortOf = (app: AppSpec): number => Number(/:(\d+)$/.exec(app.destination ?? "")?.[1] ?? app.port);
const forwardedApp: KnockportOptions = {
  duration: 30,
  step2HttpsDuration: 6,
  rateLimitPerMinute: 1000,
  withLan: true,
  echo: false,
  helperArgs: ["--nftables-table-filter", "filter"],
  apps: (topo, base) => {
    const { lan, ssh, vpn } = lanAndExampleApps(topo, base);
    return [
      { ...ssh, name: "fwd-tcp", port: 2201, destination: `${lan.v4}:3301` },
      { ...vpn, name: "local-udp" },
    ];
  },
  beforeKnockport: async (topo) => {
    await nft(topo, ["-f", "-"], ADMIN_RULESET);
  },
};

describeKnockport("knockport end to end (nftables): custom chains with a forwarded app, the admin's forward policy drop", "nftables", forwardedApp, (h) => {
  let fwd: AppSpec;
  let lanEcho: ManagedProcess | undefined;

  beforeAll(async () => {
    fwd = h.ssh;
    lanEcho = await startEchoServer(h.topo, "lan", { tcp: [lanPortOf(fwd)], udp: [] });
  });
  afterAll(async () => {
    await lanEcho?.stop(2000).catch(() => undefined);
  });

  const direct = async (host: "cli" | "cli2" | "srv"): Promise<PortState> =>
    (await probe(h.topo, host, "tcp", h.topo.addr.lan?.v4 ?? "", lanPortOf(fwd), PROBE_MS)).state;

  it("the knocker reaches the LAN host through the jump from the admin's forward chain; nobody else, not even directly", async () => {
    expect(await direct("srv"), "control: the LAN service runs").toBe("open");
    const listed = await listFilter(h.topo);
    expect(jumps(listed).map((r) => r.chain).sort()).toEqual(["forward", "input"]);
    expect(rules(listed).filter((r) => r.chain === "forward")[0]?.comment).toBe(JUMP_COMMENT);
    expect(await states({ cli: () => h.svc("cli", fwd), cli2: () => h.svc("cli2", fwd) })).toEqual({ cli: "closed", cli2: "closed" });
    const s1 = await h.step1("cli", fwd);
    expectStep1NoReply(s1, "step 1");
    expectOk(await h.step2("cli", fwd), "step 2");
    expect(
      await states({ cli: () => h.svc("cli", fwd), cli2: () => h.svc("cli2", fwd), "cli2 direct": () => direct("cli2"), "cli direct": () => direct("cli") }),
    ).toEqual({ cli: "open", cli2: "closed", "cli2 direct": "closed", "cli direct": "closed" });
  });

  it("the admin reloads its ruleset (flush ruleset, then its file): chains, jumps and the knocker's lease are back within 5 s", async () => {
    const reinstalls = (): number => h.stack.helper.lines.filter((l) => l.line.includes('"event":"firewall.reinstalled"')).length;
    const before = reinstalls();
    await nft(h.topo, ["-f", "-"], `flush ruleset\n${ADMIN_RULESET}`);
    const reloaded = Date.now();
    const healed = await pollUntil(async () => (reinstalls() > before && (await h.svc("cli", fwd, 4, 300)) === "open" ? Date.now() : undefined), 8000, 100);
    expect(healed, "re-applied and the knocker back in").toBeDefined();
    expect((healed ?? Infinity) - reloaded).toBeLessThan(5000);
    console.info(`[custom-chains] admin reload: knocker back in ${(healed ?? NaN) - reloaded} ms`);
    const listed = await listFilter(h.topo);
    expect(jumps(listed).map((r) => r.chain).sort()).toEqual(["forward", "input"]);
    expect(await states({ cli: () => h.svc("cli", fwd), cli2: () => h.svc("cli2", fwd), "cli2 direct": () => direct("cli2") })).toEqual({
      cli: "open",
      cli2: "closed",
      "cli2 direct": "closed",
    });
  });

  it("uninstall removes both jumps and every chain and set of ours", async () => {
    h.stack.helper.signal("SIGTERM");
    await Promise.race([h.stack.helper.exited, sleep(5000)]);
    const r = await h.stack.firewallCommand("uninstall-firewall");
    expect(r.exitCode, r.stderr).toBe(0);
    const text = await nft(h.topo, ["list", "ruleset"]);
    expect(text).not.toContain("knockport");
    expect(text).toContain('tcp dport 2222 accept comment "admin: a rule that must survive"');
  });
});
