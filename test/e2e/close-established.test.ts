// End-to-end: close_established on the real kernel. Apps with the key (local tcp and udp over IPv4 and IPv6,
// forwarded tcp and udp over IPv4, forwarded udp over IPv6) and controls without it (local tcp, forwarded udp)
// each carry a live flow from cli (a TCP connection or a UDP socket sending every 100 ms) across the end of
// their lease. After expiry, and after a revoke, `conntrack -L` in srv must show no entry of that client's
// flow for the keyed apps, while the controls' entries are still there (so the test can fail both ways). Last,
// a stop with --service-rule-cleanup-on-shutdown cuts the keyed flows before the helper exits.
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeKnockport, type KnockportOptions } from "./describe-knockport.js";
import { REPO_ROOT, e2eFirewalls, expectOk, expectStep1NoReply, lanAndExampleApps, ownKeys, type Family } from "./harness.js";
import { sleep, sleepUntil, startEchoServer, type AppSpec, type ExecResult, type ManagedProcess } from "./testbed.js";

const DURATION_S = 20;
/** The expiry sweep runs every second; the cut must follow the deadline within this. */
const CUT_BOUND_MS = 1500;

interface Flow {
  readonly app: AppSpec;
  readonly family: Family;
  /** close_established set: its entries must go. */
  readonly cut: boolean;
}

/** The original tuple of one `conntrack -L` line. */
interface Entry {
  readonly protocol: string;
  readonly src: string;
  readonly dport: number;
}

function parseConntrack(stdout: string): Entry[] {
  const out: Entry[] = [];
  for (const line of stdout.split("\n")) {
    const m = /^(tcp|udp)\s.*?\bsrc=(\S+) dst=\S+ sport=\d+ dport=(\d+)/.exec(line.trim());
    if (m?.[1] && m[2] && m[3]) out.push({ protocol: m[1], src: m[2], dport: Number(m[3]) });
  }
  return out;
}

const lanPort = (app: AppSpec): number => Number(/:(\d+)$/.exec(app.destination ?? "")?.[1] ?? app.port);
const isForwarded = (app: AppSpec): boolean => app.destination !== undefined && app.destination !== "local";

const stack: KnockportOptions = {
  duration: DURATION_S,
  step2HttpsDuration: 8,
  rateLimitPerMinute: 1000,
  withLan: true,
  echo: false,
  helperArgs: ["--service-rule-cleanup-on-shutdown"],
  apps: (topo, base) => {
    const { lan, ssh, vpn } = lanAndExampleApps(topo, base);
    return [
      { ...ssh, ...ownKeys(ssh, "a"), name: "ct-tcp", port: 2301, closeEstablished: true },
      { ...vpn, ...ownKeys(vpn, "b"), name: "ct-udp", port: 1301, closeEstablished: true },
      { ...ssh, ...ownKeys(ssh, "c"), name: "fwd-tcp", port: 2303, destination: `${lan.v4}:3303`, closeEstablished: true },
      { ...vpn, ...ownKeys(vpn, "d"), name: "fwd-udp", port: 1303, destination: `${lan.v4}:1313`, closeEstablished: true },
      { ...vpn, ...ownKeys(vpn, "e"), name: "fwd6-udp", port: 1304, destination: `[${lan.v6}]:1314`, closeEstablished: true },
      { ...ssh, ...ownKeys(ssh, "f"), name: "ctl-tcp", port: 2302, closeEstablished: false },
      { ...vpn, ...ownKeys(vpn, "g"), name: "ctl-fwd-udp", port: 1305, destination: `${lan.v4}:1315` },
    ];
  },
};

describeKnockport("knockport end to end ($firewall): close_established cuts conntrack entries", e2eFirewalls(), stack, (h, { firewall }) => {
  let flows: Flow[] = [];
  const echoes: ManagedProcess[] = [];

  beforeAll(async () => {
    const apps = [...h.cfg.apps];
    const app = (name: string): AppSpec => {
      const a = apps.find((x) => x.name === name);
      if (a === undefined) throw new Error(`no app ${name}`);
      return a;
    };
    const local = apps.filter((a) => !isForwarded(a));
    const forwarded = apps.filter(isForwarded);
    echoes.push(
      await startEchoServer(h.topo, "srv", { tcp: local.filter((a) => a.protocol === "tcp").map((a) => a.port), udp: local.filter((a) => a.protocol === "udp").map((a) => a.port) }),
      await startEchoServer(h.topo, "lan", { tcp: forwarded.filter((a) => a.protocol === "tcp").map(lanPort), udp: forwarded.filter((a) => a.protocol === "udp").map(lanPort) }),
    );
    flows = [
      { app: app("ct-tcp"), family: 4, cut: true },
      { app: app("ct-tcp"), family: 6, cut: true },
      { app: app("ct-udp"), family: 4, cut: true },
      { app: app("ct-udp"), family: 6, cut: true },
      { app: app("fwd-tcp"), family: 4, cut: true },
      { app: app("fwd-udp"), family: 4, cut: true },
      { app: app("fwd6-udp"), family: 6, cut: true },
      { app: app("ctl-tcp"), family: 4, cut: false },
      { app: app("ctl-fwd-udp"), family: 4, cut: false },
    ];
  });
  afterAll(async () => {
    for (const e of echoes) await e.stop(2000).catch(() => undefined);
  });

  const label = (f: Flow): string => `${f.app.name} IPv${f.family}`;

  /** srv's conntrack table, both families, in one pass. */
  async function conntrackEntries(): Promise<Entry[]> {
    const out: Entry[] = [];
    for (const family of ["ipv4", "ipv6"]) {
      const r = await h.topo.exec("srv", "conntrack", ["-L", "-f", family], { timeoutMs: 10_000 });
      if (r.exitCode !== 0) throw new Error(`conntrack -L -f ${family} in srv: exit ${String(r.exitCode)}: ${r.stderr}`);
      out.push(...parseConntrack(r.stdout));
    }
    return out;
  }

  /** Entries of cli's flow to this app's public port (original tuple, as the client sent it). */
  const entriesOf = (all: readonly Entry[], f: Flow): number =>
    all.filter((e) => e.protocol === f.app.protocol && e.src === h.ip("cli", f.family) && e.dport === f.app.port).length;

  const countsBy = (all: readonly Entry[]): Record<string, number> => Object.fromEntries(flows.map((f) => [label(f), entriesOf(all, f)]));
  /** What `counts` must be once the keyed flows were cut: none of theirs, a control's still there (however many). */
  const cutOnly = (counts: Readonly<Record<string, number>>): Record<string, number> =>
    Object.fromEntries(flows.map((f) => [label(f), f.cut ? 0 : Math.max(1, counts[label(f)] ?? 0)]));
  /** srv's conntrack table now holds no entry of a keyed flow, and a control's entry still. */
  async function expectCutOnly(what: string): Promise<void> {
    const now = countsBy(await conntrackEntries());
    expect(now, what).toEqual(cutOnly(now));
  }

  /** Removes what the controls' flows of an earlier test left, so "still there" is about this test's flows. */
  async function clearControlEntries(): Promise<void> {
    for (const f of flows.filter((x) => !x.cut)) {
      await h.topo.exec("srv", "conntrack", ["-D", "-f", f.family === 4 ? "ipv4" : "ipv6", "-p", f.app.protocol, "--orig-src", h.ip("cli", f.family), "--orig-port-dst", String(f.app.port)]);
    }
    expect(countsBy(await conntrackEntries()), "nothing left before this test").toEqual(Object.fromEntries(flows.map((f) => [label(f), 0])));
  }

  /** Knocks every flow's app from cli in its family; returns each lease's deadline (upper bound). */
  async function knockAll(): Promise<Map<Flow, number>> {
    const s1 = await Promise.all(flows.map((f) => h.step1("cli", f.app, { family: f.family })));
    s1.forEach((r, i) => expectStep1NoReply(r, `step 1 ${flows[i] ? label(flows[i]) : "?"}`));
    const deadlines = new Map<Flow, number>();
    for (const f of flows) {
      const r = await h.step2("cli", f.app, { family: f.family });
      expectOk(r, `step 2 ${label(f)}`);
      deadlines.set(f, Date.now() + DURATION_S * 1000);
    }
    return deadlines;
  }

  /** Starts every flow from cli (runs `runMs`); resolves when each has its conntrack entry in srv. */
  async function startFlows(runMs: number): Promise<Promise<ExecResult>[]> {
    const tool = join(REPO_ROOT, "test/e2e/tools/long-lived.mjs");
    const running = flows.map((f) =>
      h.topo.exec("cli", process.execPath, [tool, h.srvIp(f.family), String(f.app.port), String(runMs), f.app.protocol], { timeoutMs: runMs + 10_000 }),
    );
    let counts: Record<string, number> = {};
    for (let i = 0; i < 30; i += 1) {
      counts = countsBy(await conntrackEntries());
      if (Object.values(counts).every((n) => n >= 1)) break;
      await sleep(100);
    }
    expect(Object.entries(counts).filter(([, n]) => n < 1), `every flow has its conntrack entry in srv while the lease is live: ${JSON.stringify(counts)}`).toEqual([]);
    return running;
  }

  /** From a table without the controls' earlier entries: every flow knocked, then started for `runMs`. */
  async function knockAndStartFlows(runMs: number): Promise<Promise<ExecResult>[]> {
    await clearControlEntries();
    await knockAll();
    return startFlows(runMs);
  }

  it(`at expiry (${DURATION_S} s): the entries of close_established flows are gone within ${CUT_BOUND_MS} ms of the deadline; the controls' stay`, async () => {
    const deadlines = await knockAll();
    const lastDeadline = Math.max(...deadlines.values());
    const running = await startFlows(lastDeadline - Date.now() + 4000);
    const goneAt = new Map<Flow, number>();
    let last: Entry[] = [];
    // Nothing is cut before the first deadline (checked below: gone only after it); poll from shortly before it.
    await sleepUntil(Math.min(...deadlines.values()) - 1000);
    // One listing per tick (two conntrack runs) for all flows, until every keyed flow is gone or 3 s past the last deadline.
    for (let i = 0; i < 1000 && Date.now() < lastDeadline + 3000; i += 1) {
      last = await conntrackEntries();
      const now = Date.now();
      for (const f of flows) if (f.cut && !goneAt.has(f) && entriesOf(last, f) === 0) goneAt.set(f, now);
      if (flows.every((f) => !f.cut || goneAt.has(f)) && now > lastDeadline + 500) break;
      await sleep(50);
    }
    const after = Object.fromEntries(flows.filter((f) => f.cut).map((f) => [label(f), (goneAt.get(f) ?? Infinity) - (deadlines.get(f) ?? 0)]));
    console.info(`[close-established ${firewall}] expiry: entries gone this many ms after each lease's deadline: ${JSON.stringify(after)}`);
    for (const [what, ms] of Object.entries(after)) {
      expect(ms, `${what}: gone only after its deadline (it was cut while the lease was live)`).toBeGreaterThan(-300);
      expect(ms, `${what}: gone within ${CUT_BOUND_MS} ms of the deadline`).toBeLessThanOrEqual(CUT_BOUND_MS);
    }
    // Still absent at the end (a packet of the still-running flow did not bring an entry back), controls still there.
    await expectCutOnly("keyed flows: no entry; controls: their entry is still there after expiry");
    await Promise.all(running);
  });

  it("at revoke: `knockport revoke` returns once the entries are gone; the controls' entries stay", async () => {
    const running = await knockAndStartFlows(8000);
    // All at once: one CLI start costs about a second on this 2-core machine, and every lease must still be live.
    const took: Record<string, number> = {};
    const left = await Promise.all(
      flows.map(async (f) => {
        const t0 = Date.now();
        const r = await h.stack.cli(["revoke", "--app", f.app.name, "--ip", h.ip("cli", f.family), "--admin-socket", h.stack.adminSocketPath]);
        took[label(f)] = Date.now() - t0;
        expect(r.exitCode, `revoke ${label(f)}: ${r.stderr}`).toBe(0);
        expect(r.stdout, `revoke ${label(f)} closed its live lease`).toMatch(/closed [12] lease/);
        return [label(f), entriesOf(await conntrackEntries(), f)] as const;
      }),
    );
    const leftNow = Object.fromEntries(left);
    expect(leftNow, "right after each revoke returned: no entry of keyed flows, the controls' entry still there").toEqual(cutOnly(leftNow));
    console.info(`[close-established ${firewall}] revoke: knockport revoke took ms: ${JSON.stringify(took)}`);
    await sleep(500);
    await expectCutOnly("half a second later: still none for keyed flows (their packets keep coming)");
    await Promise.all(running);
  });

  it("a stop with --service-rule-cleanup-on-shutdown cuts the keyed flows before the helper exits; the controls' stay", async () => {
    const running = await knockAndStartFlows(6000);
    h.stack.helper.signal("SIGTERM");
    const exit = await Promise.race([h.stack.helper.exited, sleep(15_000).then(() => undefined)]);
    expect(exit?.exitCode, `helper exit: ${JSON.stringify(exit)}`).toBe(0);
    await expectCutOnly("right after the helper exited");
    await Promise.all(running);
  });
});
