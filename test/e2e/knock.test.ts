// End-to-end: the real knockport-helper (root, nftables) and knockport-server (as nobody) from bin/,
// in network namespaces, knocked with real curl, checked with real TCP/UDP connects.
//
// Hosts (see @knockport/testbed): srv 198.51.100.1 / 2001:db8:100::1 on ext0; the knocker cli (.10 / ::10)
// and the bystander cli2 (.20 / ::20) reach srv through the same bridge, so the same interface.
//
// The tests run in order and share one topology; each one records the leases it created (with an upper
// bound of their deadline) so later tests that need a closed port wait for the kernel to expire them.
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  cleanupStaleTopologies,
  createTopology,
  enableConntrack,
  exampleConfig,
  formBody,
  knock,
  knockUrl,
  listConntrack,
  listTcpSockets,
  nftSetElements,
  nftSetNames,
  nftSetsContaining,
  probe,
  randomPath,
  readNftTable,
  sleep,
  sleepUntil,
  startKnockport,
  type AppSpec,
  type ConfigSpec,
  type HostName,
  type KnockResult,
  type KnockportStack,
  type PortState,
  type Topology,
} from "./testbed.js";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const DURATION_S = 3;
const STEP2_WINDOW_S = 4;
/** A closed port is probed for this long (in-namespace round trips take well under 1 ms). */
const PROBE_MS = 400;
/** How late after a lease's deadline the port must be closed (the brief allows up to 1.5 s). */
const CLOSE_MARGIN_MS = 1200;

type Family = 4 | 6;
type Client = "cli" | "cli2";

let topo: Topology;
let stack: KnockportStack;
let cfg: ConfigSpec;
let ssh: AppSpec;
let openvpn: AppSpec;

/** Upper bounds of lease deadlines (epoch ms), by `${host}|${family}|${app or "https"}`. */
const deadlines = new Map<string, number>();
const leaseKey = (host: Client, family: Family, what: string): string => `${host}|${family}|${what}`;
function noteLease(host: Client, family: Family, what: string, grantedBy: number, seconds: number): void {
  deadlines.set(leaseKey(host, family, what), Math.max(deadlines.get(leaseKey(host, family, what)) ?? 0, grantedBy + seconds * 1000));
}
/** Waits until every named lease has certainly expired (deadline + margin). */
async function waitExpired(...keys: string[]): Promise<void> {
  const until = Math.max(0, ...keys.map((k) => deadlines.get(k) ?? 0));
  if (until > 0) await sleepUntil(until + CLOSE_MARGIN_MS);
}

const srvIp = (family: Family): string => (family === 4 ? topo.addr.srv.v4 : topo.addr.srv.v6);
const hostIp = (host: Client, family: Family): string => (family === 4 ? topo.addr[host].v4 : topo.addr[host].v6);

async function step1(host: Client, app: AppSpec, o: { family?: Family; key?: string; appName?: string; path?: string; body?: string } = {}): Promise<KnockResult> {
  const body = o.body ?? formBody({ app: o.appName ?? app.name, access_key: o.key ?? app.accessKeysHttp[0] ?? "" });
  return knock(topo, host, { step: 1, url: knockUrl("http", srvIp(o.family ?? 4), cfg.httpPort, o.path ?? cfg.httpPostPath), body });
}

async function step2(host: Client, app: AppSpec, o: { family?: Family; key?: string; appName?: string } = {}): Promise<KnockResult> {
  const body = formBody({ app: o.appName ?? app.name, access_key: o.key ?? app.accessKeysHttps[0] ?? "" });
  return knock(topo, host, { step: 2, url: knockUrl("https", srvIp(o.family ?? 4), cfg.httpsPort, cfg.httpsPostPath), body });
}

const describeResult = (r: KnockResult): string => `curl exit ${String(r.curlExit)}, status ${String(r.status)}, body ${JSON.stringify(r.body)}, ${r.durationMs} ms: ${r.argv.join(" ")}`;

function expectStep1NoReply(r: KnockResult, what: string): void {
  expect(r.curlExit, `${what}: step 1 must get no reply (curl exit 28 = timeout); ${describeResult(r)}`).toBe(28);
}

function expectOk(r: KnockResult, what: string): void {
  expect({ status: r.status, body: r.body }, `${what}: ${describeResult(r)}`).toEqual({ status: 200, body: "OK\n" });
}

/** Full two-step knock; returns the moments around step 2 (the lease deadline lies in [sent+d, done+d]). */
async function fullKnock(host: Client, app: AppSpec, family: Family = 4): Promise<{ sent: number; done: number }> {
  const s1 = await step1(host, app, { family });
  expectStep1NoReply(s1, `step 1 ${app.name} from ${host} IPv${family}`);
  noteLease(host, family, "https", Date.now(), app.step2HttpsDuration);
  const sent = Date.now();
  const s2 = await step2(host, app, { family });
  const done = Date.now();
  expectOk(s2, `step 2 ${app.name} from ${host} IPv${family}`);
  noteLease(host, family, app.name, done, app.duration);
  return { sent, done };
}

/** State of an app's service port as seen from `host`. */
async function svc(host: HostName, app: AppSpec, family: Family = 4, timeoutMs = PROBE_MS): Promise<PortState> {
  const r = await probe(topo, host, app.protocol, srvIp(family), app.port, timeoutMs);
  return r.state;
}

/** Whether the HTTPS knock port accepts a TCP connection from `host`. */
async function https(host: HostName, family: Family = 4): Promise<PortState> {
  return (await probe(topo, host, "tcp-connect", srvIp(family), cfg.httpsPort, PROBE_MS)).state;
}

/** Runs labelled probes in parallel and returns { label: state } for one readable toEqual. */
async function states(checks: Record<string, () => Promise<PortState>>): Promise<Record<string, PortState>> {
  const entries = await Promise.all(Object.entries(checks).map(async ([k, f]) => [k, await f()] as const));
  return Object.fromEntries(entries);
}

async function setsHolding(ip: string): Promise<string[]> {
  const table = await readNftTable(topo);
  if (table === undefined) throw new Error("table inet knockport is missing");
  return nftSetsContaining(table, ip).map((e) => e.set);
}

describe("knockport end to end (nftables, real kernel)", () => {
  beforeAll(async () => {
    cleanupStaleTopologies();
    topo = await createTopology();
    // Like a typical distribution host: connection tracking is active in srv, so "no conntrack entry for
    // the stealth port" is a real claim and not a side effect of conntrack being off.
    await enableConntrack(topo);
    cfg = exampleConfig({
      interfaceExt: topo.extInterface,
      duration: DURATION_S,
      step2HttpsDuration: STEP2_WINDOW_S,
      httpPathLength: 40,
      rateLimitPerMinute: 1000,
      keyPairs: 2,
    });
    const [a, b] = cfg.apps;
    if (a === undefined || b === undefined) throw new Error("example config lacks apps");
    ssh = a;
    openvpn = b;
    stack = await startKnockport(topo, { repoRoot: REPO_ROOT, config: cfg });
  });

  afterAll(async () => {
    await stack?.stop();
    await topo?.destroy();
  });

  beforeEach((ctx) => {
    ctx.onTestFailed(() => {
      console.error(`\n---- diagnostics for "${ctx.task.name}" ----\n${topo?.logs(60) ?? "(no topology)"}`);
      return readNftTable(topo)
        .then((t) => {
          if (t === undefined) return console.error("nft: table inet knockport absent");
          for (const name of nftSetNames(t)) {
            console.error(`nft set ${name}: ${JSON.stringify(nftSetElements(t, name))}`);
          }
        })
        .catch((e: unknown) => console.error(`nft listing failed: ${String(e)}`));
    });
  });

  it("1. before any knock: service ports (tcp, udp) and HTTPS are closed for cli and cli2, over IPv4 and IPv6", async () => {
    // Control: the services and the HTTPS listener run, and srv reaches them itself (not through ext0).
    expect(
      await states({
        "srv ssh v4": () => svc("srv", ssh, 4),
        "srv ssh v6": () => svc("srv", ssh, 6),
        "srv openvpn v4": () => svc("srv", openvpn, 4),
        "srv openvpn v6": () => svc("srv", openvpn, 6),
        "srv https v4": () => https("srv", 4),
      }),
    ).toEqual({ "srv ssh v4": "open", "srv ssh v6": "open", "srv openvpn v4": "open", "srv openvpn v6": "open", "srv https v4": "open" });

    const checks: Record<string, () => Promise<PortState>> = {};
    for (const host of ["cli", "cli2"] as const) {
      for (const family of [4, 6] as const) {
        checks[`${host} ssh v${family}`] = () => svc(host, ssh, family);
        checks[`${host} openvpn v${family}`] = () => svc(host, openvpn, family);
        checks[`${host} https v${family}`] = () => https(host, family);
      }
    }
    const seen = await states(checks);
    expect(seen).toEqual(Object.fromEntries(Object.keys(checks).map((k) => [k, "closed"])));
    expect(await readNftTable(topo), "table inet knockport must be installed").toBeDefined();
  });

  it("2. GET, wrong paths, an oversize POST, a wrong key or app or form on step 1: no reply, HTTPS stays closed", async () => {
    const path = cfg.httpPostPath;
    const lastChar = path.endsWith("x") ? "y" : "x";
    const validBody = formBody({ app: ssh.name, access_key: ssh.accessKeysHttp[0] ?? "" });
    const cases: Array<[string, () => Promise<KnockResult>]> = [
      ["GET on the valid path", () => knock(topo, "cli", { step: 1, url: knockUrl("http", srvIp(4), cfg.httpPort, path) })],
      ["POST to a wrong path", () => step1("cli", ssh, { path: randomPath("/k1-", 40) })],
      ["POST to the path with its last character changed", () => step1("cli", ssh, { path: path.slice(0, -1) + lastChar })],
      ["POST to the path without its last character", () => step1("cli", ssh, { path: path.slice(0, -1) })],
      ["POST to the path plus one character", () => step1("cli", ssh, { path: `${path}x` })],
      ["oversize POST (>500 bytes) with a valid key", () => step1("cli", ssh, { body: `${validBody}&pad=${"p".repeat(600)}` })],
      ["the step-2 key used on step 1", () => step1("cli", ssh, { key: ssh.accessKeysHttps[0] ?? "" })],
      ["another app's key", () => step1("cli", ssh, { key: openvpn.accessKeysHttp[0] ?? "" })],
      ["an unknown app", () => step1("cli", ssh, { appName: "nosuchapp" })],
      ["a malformed form", () => step1("cli", ssh, { body: "this is not a form" })],
    ];
    const results = await Promise.all(cases.map(async ([what, run]) => [what, await run()] as const));
    for (const [what, r] of results) expectStep1NoReply(r, what);
    // The knocks above ran within ~1 s, far inside the 4 s HTTPS window any of them could have opened.
    expect(await https("cli", 4), "HTTPS must stay closed for cli after rejected step-1 requests").toBe("closed");
    expect(await setsHolding(topo.addr.cli.v4), "no set may hold cli's address").toEqual([]);
    const leases = await stack.status();
    expect(leases.filter((l) => l.ip === topo.addr.cli.v4)).toEqual([]);
  });

  it("3. a valid step 1 from cli opens HTTPS for cli only", async () => {
    const r = await step1("cli", ssh);
    expectStep1NoReply(r, "valid step 1");
    noteLease("cli", 4, "https", Date.now(), STEP2_WINDOW_S);
    expect(
      await states({ "cli https v4": () => https("cli", 4), "cli2 https v4": () => https("cli2", 4), "cli https v6": () => https("cli", 6) }),
    ).toEqual({ "cli https v4": "open", "cli2 https v4": "closed", "cli https v6": "closed" });
  });

  let t4: { ssh: { sent: number; done: number }; openvpn: { sent: number; done: number } } | undefined;

  it("4. a valid step 2 from cli answers 200 OK and opens the tcp and the udp service for cli only", async () => {
    const [a, b] = await Promise.all([step1("cli", ssh), step1("cli", openvpn)]);
    expectStep1NoReply(a, "step 1 ssh");
    expectStep1NoReply(b, "step 1 openvpn");
    noteLease("cli", 4, "https", Date.now(), STEP2_WINDOW_S);
    const sshSent = Date.now();
    const r1 = await step2("cli", ssh);
    const sshDone = Date.now();
    const vpnSent = Date.now();
    const r2 = await step2("cli", openvpn);
    const vpnDone = Date.now();
    expectOk(r1, "step 2 ssh");
    expectOk(r2, "step 2 openvpn");
    noteLease("cli", 4, ssh.name, sshDone, DURATION_S);
    noteLease("cli", 4, openvpn.name, vpnDone, DURATION_S);
    t4 = { ssh: { sent: sshSent, done: sshDone }, openvpn: { sent: vpnSent, done: vpnDone } };
    expect(
      await states({
        "cli ssh v4": () => svc("cli", ssh, 4),
        "cli openvpn v4": () => svc("cli", openvpn, 4),
        "cli2 ssh v4": () => svc("cli2", ssh, 4),
        "cli2 openvpn v4": () => svc("cli2", openvpn, 4),
        "cli ssh v6": () => svc("cli", ssh, 6),
        "cli2 https v4": () => https("cli2", 4),
      }),
    ).toEqual({
      "cli ssh v4": "open",
      "cli openvpn v4": "open",
      "cli2 ssh v4": "closed",
      "cli2 openvpn v4": "closed",
      "cli ssh v6": "closed",
      "cli2 https v4": "closed",
    });
    expect(await setsHolding(topo.addr.cli2.v4), "no set may hold cli2's address").toEqual([]);
  });

  it(`5. the services close again after duration (${DURATION_S} s) + at most ${CLOSE_MARGIN_MS} ms`, async () => {
    if (t4 === undefined) throw new Error("needs test 4's leases (test 4 failed)");
    const firstSent = Math.min(t4.ssh.sent, t4.openvpn.sent);
    // Still open shortly before the earliest possible deadline: the lease lasts the configured time.
    const before = firstSent + DURATION_S * 1000 - 700;
    expect(Date.now(), "test 4 took too long to check the lease before its deadline").toBeLessThan(before);
    await sleepUntil(before);
    expect(await states({ ssh: () => svc("cli", ssh), openvpn: () => svc("cli", openvpn) })).toEqual({ ssh: "open", openvpn: "open" });
    await sleepUntil(Math.max(t4.ssh.done, t4.openvpn.done) + DURATION_S * 1000 + CLOSE_MARGIN_MS);
    expect(await states({ ssh: () => svc("cli", ssh), openvpn: () => svc("cli", openvpn) })).toEqual({ ssh: "closed", openvpn: "closed" });
  });

  it("6. step 2 without step 1 is refused; step 2 is bound to step 1's app and key pair", async () => {
    // cli2 never passed step 1: the HTTPS port does not even accept the connection.
    const noStep1 = await step2("cli2", ssh);
    expect(noStep1.status, `step 2 without step 1 must not be answered: ${describeResult(noStep1)}`).toBeUndefined();
    expect(await svc("cli2", ssh)).toBe("closed");

    // Step 1 for ssh (key pair 0) opens HTTPS for cli2 ...
    expectStep1NoReply(await step1("cli2", ssh), "cli2 step 1 ssh");
    noteLease("cli2", 4, "https", Date.now(), STEP2_WINDOW_S);
    expect(await https("cli2"), "control: HTTPS must open for cli2 after its step 1").toBe("open");
    // ... but step 2 for another app (with that app's valid key) is refused,
    const otherApp = await step2("cli2", openvpn);
    expect(otherApp.status, `step 2 for openvpn after step 1 for ssh: ${describeResult(otherApp)}`).toBe(403);
    // and so is the step-2 key of another key pair, and a wrong key.
    const otherPair = await step2("cli2", ssh, { key: ssh.accessKeysHttps[1] ?? "" });
    expect(otherPair.status, `step 2 with key pair 1 after step 1 with pair 0: ${describeResult(otherPair)}`).toBe(403);
    const wrongKey = await step2("cli2", ssh, { key: "wrong-key-0123456789" });
    expect(wrongKey.status, describeResult(wrongKey)).toBe(403);
    expect(await states({ ssh: () => svc("cli2", ssh), openvpn: () => svc("cli2", openvpn) })).toEqual({ ssh: "closed", openvpn: "closed" });
    expect((await setsHolding(topo.addr.cli2.v4)).filter((s) => !s.startsWith("https"))).toEqual([]);

    // Control: the matching step 2 still works, so the refusals above were about app and pair.
    const right = await step2("cli2", ssh);
    expectOk(right, "cli2 matching step 2");
    noteLease("cli2", 4, ssh.name, Date.now(), DURATION_S);
    expect(await svc("cli2", ssh)).toBe("open");
  });

  it("7. a re-knock extends the lease: open after the first deadline, closed after the second", async () => {
    await waitExpired(leaseKey("cli", 4, ssh.name));
    expect(await svc("cli", ssh), "precondition: cli's ssh lease has expired").toBe("closed");
    const first = await fullKnock("cli", ssh);
    // Second knock ~2 s later: step 1 now, step 2 at first.sent + 2 s (inside the 4 s HTTPS window).
    expectStep1NoReply(await step1("cli", ssh), "re-knock step 1");
    await sleepUntil(first.sent + 2000);
    const secondSent = Date.now();
    const again = await step2("cli", ssh);
    const secondDone = Date.now();
    expectOk(again, "re-knock step 2");
    noteLease("cli", 4, ssh.name, secondDone, DURATION_S);

    // One element and one lease, never a duplicate.
    const table = await readNftTable(topo);
    const holding = nftSetsContaining(table ?? { nftables: [] }, topo.addr.cli.v4).filter((e) => !e.set.startsWith("https"));
    expect(holding.map((e) => e.set), "exactly one service-set element for cli").toHaveLength(1);
    const leases = (await stack.status()).filter((l) => l.ip === topo.addr.cli.v4 && l.app === ssh.name && l.step === 2);
    expect(leases, "exactly one step-2 lease for cli/ssh").toHaveLength(1);

    // After the first lease's latest deadline (+0.7 s) but well before the second's: still open.
    const afterFirst = first.done + DURATION_S * 1000 + 700;
    expect(afterFirst, "timing: the check must fall before the second deadline").toBeLessThan(secondSent + DURATION_S * 1000 - 500);
    await sleepUntil(afterFirst);
    expect(await svc("cli", ssh), "still open after the first lease's deadline").toBe("open");
    await sleepUntil(secondDone + DURATION_S * 1000 + CLOSE_MARGIN_MS);
    expect(await svc("cli", ssh), "closed after the second lease's deadline").toBe("closed");
  });

  it("8. a 40-character http_post_path works (firewall payload match and server route)", async () => {
    expect(cfg.httpPostPath).toHaveLength(40);
    await waitExpired(leaseKey("cli2", 4, "https"));
    expect(await https("cli2"), "precondition: cli2's HTTPS window has expired").toBe("closed");
    expectStep1NoReply(await step1("cli2", openvpn), "step 1 on the 40-character path");
    noteLease("cli2", 4, "https", Date.now(), STEP2_WINDOW_S);
    expect(await https("cli2")).toBe("open");
  });

  it("9. the stealth HTTP port leaves no conntrack entries and no lingering sockets", async () => {
    // Many step-1 requests went to the HTTP port above (valid and invalid). Conntrack is active (control:
    // the HTTPS port's connections are tracked), yet none is tracked for the HTTP port.
    expect(await listConntrack(topo, cfg.httpsPort), "control: HTTPS connections must be tracked").toBeGreaterThan(0);
    expect(await listConntrack(topo, cfg.httpPort), "conntrack entries for the HTTP knock port").toBe(0);

    // A valid knock (from an address that sent nothing else) leaves no socket behind in srv: the server
    // resets the connection after answering instead of retransmitting a reply the firewall drops.
    expectStep1NoReply(await step1("cli2", ssh, { family: 6 }), "cli2 IPv6 step 1");
    noteLease("cli2", 6, "https", Date.now(), STEP2_WINDOW_S);
    const peer = topo.addr.cli2.v6;
    await sleep(300);
    const sockets = (await listTcpSockets(topo, cfg.httpPort)).filter((l) => l.includes(`[${peer}]`));
    expect(sockets, "server-side sockets left by a valid step-1 knock").toEqual([]);
    expect(await listConntrack(topo, cfg.httpPort)).toBe(0);
  });

  it("10. IPv6: a knock from cli over IPv6 opens the services for cli's IPv6 address only", async () => {
    await waitExpired(leaseKey("cli", 4, ssh.name), leaseKey("cli", 4, openvpn.name));
    const [a, b] = await Promise.all([step1("cli", ssh, { family: 6 }), step1("cli", openvpn, { family: 6 })]);
    expectStep1NoReply(a, "step 1 ssh over IPv6");
    expectStep1NoReply(b, "step 1 openvpn over IPv6");
    noteLease("cli", 6, "https", Date.now(), STEP2_WINDOW_S);
    const r1 = await step2("cli", ssh, { family: 6 });
    const r2 = await step2("cli", openvpn, { family: 6 });
    expectOk(r1, "step 2 ssh over IPv6");
    expectOk(r2, "step 2 openvpn over IPv6");
    noteLease("cli", 6, ssh.name, Date.now(), DURATION_S);
    noteLease("cli", 6, openvpn.name, Date.now(), DURATION_S);
    expect(
      await states({
        "cli ssh v6": () => svc("cli", ssh, 6),
        "cli openvpn v6": () => svc("cli", openvpn, 6),
        "cli2 ssh v6": () => svc("cli2", ssh, 6),
        "cli2 openvpn v6": () => svc("cli2", openvpn, 6),
        "cli ssh v4": () => svc("cli", ssh, 4),
      }),
    ).toEqual({ "cli ssh v6": "open", "cli openvpn v6": "open", "cli2 ssh v6": "closed", "cli2 openvpn v6": "closed", "cli ssh v4": "closed" });
    const sets = await setsHolding(topo.addr.cli.v6);
    expect(sets.length, `sets holding cli's IPv6 address: ${sets.join(", ")}`).toBeGreaterThanOrEqual(2);
  });

  it("11. knockport status --json lists the lease with sane remaining seconds", async () => {
    const { done } = await fullKnock("cli", openvpn, 4);
    const leases = await stack.status();
    const lease = leases.find((l) => l.app === openvpn.name && l.ip === topo.addr.cli.v4 && l.step === 2);
    expect(lease, `status: ${JSON.stringify(leases)}`).toBeDefined();
    if (lease === undefined) return;
    expect({ port: lease.port, protocol: lease.protocol }).toEqual({ port: openvpn.port, protocol: openvpn.protocol });
    expect(lease.remainingSeconds).toBeGreaterThan(0);
    expect(lease.remainingSeconds).toBeLessThanOrEqual(DURATION_S);
    const elapsed = (Date.now() - done) / 1000;
    expect(lease.remainingSeconds, "remaining must account for the time since the knock").toBeGreaterThan(DURATION_S - elapsed - 1);
    const expiresAt = Date.parse(lease.expiresAt);
    expect(Number.isNaN(expiresAt), `expiresAt ${lease.expiresAt}`).toBe(false);
    expect(Math.abs(expiresAt - (Date.now() + lease.remainingSeconds * 1000)), "expiresAt agrees with remainingSeconds").toBeLessThan(1500);
    expect(Math.abs(expiresAt - (done + DURATION_S * 1000)), "expiresAt agrees with the knock time").toBeLessThan(1500);
    // Nothing listed for the bystander beyond what it really did (its service lease of test 6 has expired).
    await waitExpired(leaseKey("cli2", 4, ssh.name));
    const again = await stack.status();
    expect(again.filter((l) => l.ip === topo.addr.cli2.v4 && l.step === 2)).toEqual([]);
  });

  it("12. SIGTERM stops the helper cleanly and keeps the table (leases run out in the kernel); --uninstall-firewall removes it", async () => {
    await waitExpired(leaseKey("cli2", 4, ssh.name), leaseKey("cli2", 4, openvpn.name));
    const { done } = await fullKnock("cli", ssh, 4);
    stack.helper.signal("SIGTERM");
    const exit = await Promise.race([stack.helper.exited, sleep(5000).then(() => undefined)]);
    expect(exit, "the helper must exit within 5 s of SIGTERM").toBeDefined();
    expect(exit?.exitCode, `helper exit: ${JSON.stringify(exit)}`).toBe(0);
    expect(await readNftTable(topo), "the table must stay after a clean stop").toBeDefined();
    expect(
      await states({ "cli2 ssh": () => svc("cli2", ssh), "cli2 openvpn": () => svc("cli2", openvpn), "cli ssh": () => svc("cli", ssh) }),
      "with the helper stopped: bystander still locked out, the knocker's live lease still works",
    ).toEqual({ "cli2 ssh": "closed", "cli2 openvpn": "closed", "cli ssh": "open" });
    // The kernel expires the lease although no daemon is left to close it.
    await sleepUntil(done + DURATION_S * 1000 + CLOSE_MARGIN_MS);
    expect(await svc("cli", ssh), "the lease must expire in the kernel with the helper stopped").toBe("closed");

    const un = await stack.runHelperOnce(["--uninstall-firewall"]);
    expect(un.exitCode, `--uninstall-firewall: ${un.stdout}${un.stderr}`).toBe(0);
    expect(await readNftTable(topo), "the table must be gone after --uninstall-firewall").toBeUndefined();
    // Control: without KnockPort's table nothing blocks the service any more.
    expect(await svc("cli2", ssh)).toBe("open");
  });
});
