// End-to-end: apps forwarded to a LAN host (destination: IP[:PORT]), IPv4 and IPv6, tcp and udp, the same
// and a different port on the LAN host, masquerade on and off. Topology with `lan` behind srv's int0; the
// echo service runs in lan only (nothing listens in srv on the public ports), so "open" means the packet
// was translated and forwarded to the LAN host.
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeKnockport, type KnockportOptions } from "./describe-knockport.js";
import { PROBE_MS, e2eFirewalls, expectOk, expectStep1NoReply, lanAndExampleApps, ownKeys, states, type Family } from "./harness.js";
import { probe, startEchoServer, type AppSpec, type ManagedProcess, type PortState } from "./testbed.js";

const DURATION_S = 3;

/** LAN-side port of an app. */
const lanPort = (app: AppSpec): number => Number(/:(\d+)$/.exec(app.destination ?? "")?.[1] ?? app.port);
const familyOf = (app: AppSpec): Family => (app.destination?.includes("[") ? 6 : 4);

const stack: KnockportOptions = {
  duration: DURATION_S,
  step2HttpsDuration: 5,
  rateLimitPerMinute: 1000,
  httpPathLength: 64,
  withLan: true,
  echo: false,
  apps: (topo, base) => {
    const { lan, ssh, vpn } = lanAndExampleApps(topo, base);
    return [
      // same port on the LAN host, masquerade (default)
      { ...ssh, ...ownKeys(ssh, "a"), name: "fwd-tcp", port: 2201, destination: lan.v4 },
      // another port on the LAN host, client address kept
      { ...ssh, ...ownKeys(ssh, "b"), name: "fwd-tcp-port", port: 2202, destination: `${lan.v4}:3302`, masquerade: false },
      { ...vpn, ...ownKeys(vpn, "c"), name: "fwd-udp", port: 1195, destination: `${lan.v4}:1196` },
      { ...ssh, ...ownKeys(ssh, "d"), name: "fwd6-tcp", port: 2203, destination: `[${lan.v6}]:3303` },
      { ...vpn, ...ownKeys(vpn, "e"), name: "fwd6-udp", port: 1197, destination: `[${lan.v6}]:1198`, masquerade: false },
    ];
  },
};

describeKnockport("knockport end to end ($firewall): forwarding to a LAN host", e2eFirewalls(), stack, (h) => {
  let apps: AppSpec[] = [];
  let lanEcho: ManagedProcess;

  beforeAll(async () => {
    apps = [...h.cfg.apps];
    lanEcho = await startEchoServer(h.topo, "lan", {
      tcp: apps.filter((a) => a.protocol === "tcp").map(lanPort),
      udp: apps.filter((a) => a.protocol === "udp").map(lanPort),
    });
  });
  afterAll(async () => {
    await lanEcho?.stop(2000).catch(() => undefined);
  });

  const lanIp = (family: Family): string => (family === 4 ? (h.topo.addr.lan?.v4 ?? "") : (h.topo.addr.lan?.v6 ?? ""));
  /** Straight to the LAN host's address and port, routed through srv without any DNAT. */
  const direct = async (host: "cli" | "cli2" | "srv", app: AppSpec): Promise<PortState> =>
    (await probe(h.topo, host, app.protocol, lanIp(familyOf(app)), lanPort(app), PROBE_MS)).state;
  const allStates = (host: "cli" | "cli2"): Record<string, () => Promise<PortState>> =>
    Object.fromEntries(apps.map((a) => [`${host} ${a.name}`, () => h.svc(host, a, familyOf(a))]));
  const every = (host: string, state: PortState): Record<string, PortState> => Object.fromEntries(apps.map((a) => [`${host} ${a.name}`, state]));

  it("1. before any knock: forwarded ports are closed for cli and cli2, and so is the LAN host reached directly", async () => {
    // Control: the LAN services run (srv reaches them itself).
    expect(await states(Object.fromEntries(apps.map((a) => [`srv->lan ${a.name}`, () => direct("srv", a)])))).toEqual(
      Object.fromEntries(apps.map((a) => [`srv->lan ${a.name}`, "open"])),
    );
    expect(await states({ ...allStates("cli"), ...allStates("cli2") })).toEqual({ ...every("cli", "closed"), ...every("cli2", "closed") });
    expect(await states(Object.fromEntries(apps.map((a) => [`cli2->lan ${a.name}`, () => direct("cli2", a)])))).toEqual(
      Object.fromEntries(apps.map((a) => [`cli2->lan ${a.name}`, "closed"])),
    );
  });

  let knocked = 0;
  it("2. after a knock (IPv4 apps over IPv4, IPv6 apps over IPv6) cli reaches the LAN services; cli2 does not", async () => {
    // All step-1 knocks at once (each waits for curl's 1 s timeout), then the quick step-2 knocks.
    const s1 = await Promise.all(apps.map((a) => h.step1("cli", a, { family: familyOf(a) })));
    s1.forEach((r, i) => expectStep1NoReply(r, `step 1 ${apps[i]?.name ?? "?"}`));
    for (const app of apps) {
      const r = await h.step2("cli", app, { family: familyOf(app) });
      expectOk(r, `step 2 ${app.name}`);
      h.noteLease("cli", familyOf(app), app.name, Date.now(), DURATION_S);
    }
    knocked = Date.now();
    expect(await states(allStates("cli"))).toEqual(every("cli", "open"));
    expect(await states(allStates("cli2"))).toEqual(every("cli2", "closed"));
    // A knock opens the public port only: neither client reaches the LAN host's address directly.
    expect(await states(Object.fromEntries(apps.map((a) => [`cli2->lan ${a.name}`, () => direct("cli2", a)])))).toEqual(
      Object.fromEntries(apps.map((a) => [`cli2->lan ${a.name}`, "closed"])),
    );
    expect(await direct("cli", apps[1] as AppSpec), "cli straight to the LAN address (no DNAT)").toBe("closed");
  });

  it("3. masquerade: the LAN host sees srv's LAN address, or the client's own with masquerade: false", () => {
    const seen = (port: number): string[] =>
      lanEcho.lines.map((l) => new RegExp(`^(?:tcp|udp) ${port} \\S+ from (\\S+)$`).exec(l.line)?.[1]).filter((x): x is string => x !== undefined);
    const srvLan = h.topo.addr.srvLan;
    const expected = (app: AppSpec): string => {
      const v6 = familyOf(app) === 6;
      if (app.masquerade === false) return v6 ? h.topo.addr.cli.v6 : `::ffff:${h.topo.addr.cli.v4}`;
      return v6 ? (srvLan?.v6 ?? "") : `::ffff:${srvLan?.v4 ?? ""}`;
    };
    // srv's own control probes of test 1 come from srv's LAN address as well: left out for the
    // masquerade: false apps, so each app shows exactly one source.
    const srvOwn = new Set([`::ffff:${srvLan?.v4 ?? ""}`, srvLan?.v6 ?? ""]);
    const got = Object.fromEntries(
      apps.map((a) => [a.name, [...new Set(seen(lanPort(a)).filter((ip) => a.masquerade !== false || !srvOwn.has(ip)))]]),
    );
    expect(got).toEqual(Object.fromEntries(apps.map((a) => [a.name, [expected(a)]])));
  });

  it(`4. closed again after duration (${DURATION_S} s) + at most the close margin`, async () => {
    expect(knocked, "needs test 2").toBeGreaterThan(0);
    await h.waitExpired(...apps.map((a) => h.leaseKey("cli", familyOf(a), a.name)));
    expect(await states(allStates("cli"))).toEqual(every("cli", "closed"));
    expect(await states(allStates("cli2"))).toEqual(every("cli2", "closed"));
  });
});
