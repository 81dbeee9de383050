// End-to-end load (issue 4 §8): 1,000 valid knocks (step 1 + step 2) from 200 client addresses on cli's
// veth within 10 s: every one answers 200 and opens, none is lost (`knockport status --json` holds every
// lease, every address reaches the service), and the per-address rate limit still holds for one address
// that exceeds it. The knocks come from one Node process in cli (test/e2e/tools/load-knock.mjs).
// nftables only: the grant path under load is the helper's group commit, the same for every backend.
import { join } from "node:path";
import { beforeAll, expect, it } from "vitest";
import { describeKnockport } from "./describe-knockport.js";
import { REPO_ROOT, e2eFirewalls } from "./harness.js";

const ADDRESSES = 200;
const KNOCKS_PER_ADDRESS = 5;
/** step1_2_rate_limit_per_minute: exactly the 5 knocks of an address pass, a 6th is refused. */
const RATE_LIMIT = KNOCKS_PER_ADDRESS;
const LOAD_ADDRS = Array.from({ length: ADDRESSES }, (_, i) => `198.51.100.${30 + i}`);
const GREEDY = "198.51.100.235";
const NEVER_KNOCKED = "198.51.100.236";

interface KnockOutcome {
  ip: string;
  app: string;
  status: number | string;
  attempts: number;
  ms: number;
}
interface LoadResult {
  knocksDoneMs: number;
  results: KnockOutcome[];
  checks: { ip: string; state: "open" | "closed" }[];
}

const stack = { duration: 120, step2HttpsDuration: 60, rateLimitPerMinute: RATE_LIMIT };

describeKnockport("knockport end to end (nftables): load", e2eFirewalls().filter((f) => f === "nftables"), stack, (h) => {
  beforeAll(async () => {
    const batch = [...LOAD_ADDRS, GREEDY, NEVER_KNOCKED].map((a) => `addr add ${a}/24 dev eth0`).join("\n");
    const r = await h.topo.exec("cli", "/usr/sbin/ip", ["-b", "-"], { input: `${batch}\n`, timeoutMs: 20_000 });
    if (r.exitCode !== 0) throw new Error(`adding cli addresses: ${r.stderr}`);
  });

  const run = async (job: object): Promise<LoadResult> => {
    const r = await h.topo.exec("cli", process.execPath, [join(REPO_ROOT, "test/e2e/tools/load-knock.mjs")], {
      input: JSON.stringify(job),
      timeoutMs: 60_000,
    });
    if (r.exitCode !== 0) throw new Error(`load-knock.mjs exit ${String(r.exitCode)}: ${r.stderr}`);
    return JSON.parse(r.stdout) as LoadResult;
  };

  const baseJob = () => ({
    srvIp: h.srvIp(4),
    httpPort: h.cfg.httpPort,
    httpsPort: h.cfg.httpsPort,
    httpPath: h.cfg.httpPostPath,
    httpsPath: h.cfg.httpsPostPath,
    servicePort: h.ssh.port,
  });
  /**
   * The app of an address: ssh and openvpn alternate between addresses. An address keeps to one app: step 1
   * is never answered, so a client cannot tell when its step 1 was handled, only that the HTTPS port opened
   * (for any app); with one app, a step 2 racing its own step 1 still finds the previous knock's step-1 lease.
   */
  const appOf = (ip: string) => (LOAD_ADDRS.indexOf(ip) % 2 === 0 ? h.ssh : h.openvpn);
  const knockOf = (ip: string) => {
    const app = ip === GREEDY ? h.ssh : appOf(ip);
    return { ip, app: app.name, httpKey: app.accessKeysHttp[0], httpsKey: app.accessKeysHttps[0] };
  };
  const sshAddrs = (): string[] => LOAD_ADDRS.filter((ip) => appOf(ip) === h.ssh);
  const vpnAddrs = (): string[] => LOAD_ADDRS.filter((ip) => appOf(ip) === h.openvpn);

  it(`${ADDRESSES * KNOCKS_PER_ADDRESS} knocks from ${ADDRESSES} addresses within 10 s: every one opens, none lost`, async () => {
    const knocks = LOAD_ADDRS.flatMap((ip) => Array.from({ length: KNOCKS_PER_ADDRESS }, () => knockOf(ip)));
    // Service check over TCP: the ssh knockers (open), the openvpn knockers and one that never knocked (closed).
    const res = await run({ ...baseJob(), knocks, checkIps: [...LOAD_ADDRS, NEVER_KNOCKED] });
    const bad = res.results.filter((k) => k.status !== 200);
    const ms = res.results.map((k) => k.ms).sort((a, b) => a - b);
    const pct = (p: number): number => ms[Math.min(ms.length - 1, Math.floor((p / 100) * ms.length))] ?? NaN;
    console.info(
      `[load] ${res.results.length} knocks from ${LOAD_ADDRS.length} addresses in ${res.knocksDoneMs} ms ` +
        `(${Math.round((res.results.length / res.knocksDoneMs) * 1000)} knocks/s); per knock (step 1 -> step 2 answered) ` +
        `median ${pct(50)} ms, p95 ${pct(95)} ms, max ${pct(100)} ms; step-2 connect retries ${res.results.reduce((s, k) => s + k.attempts - 1, 0)}`,
    );
    if (process.env.KP_LOAD_DEBUG) {
      const count = (lines: readonly { line: string }[]) => {
        const m = new Map<string, number>();
        for (const l of lines) {
          const k = l.line.replace(/"(time|pid|reqId|ip|hostname|expiresAt|responseTime|remainingSeconds|durationMs|ms)":("[^"]*"|[0-9.]+),?/g, "").slice(0, 300);
          m.set(k, (m.get(k) ?? 0) + 1);
        }
        return [...m].sort((a, b) => b[1] - a[1]).slice(0, 25);
      };
      console.info(JSON.stringify({ server: count(h.stack.server.lines), helper: count(h.stack.helper.lines) }, null, 1));
    }
    expect(res.results, "every knock ran").toHaveLength(ADDRESSES * KNOCKS_PER_ADDRESS);
    expect(bad.slice(0, 10), `${bad.length} knocks did not answer 200`).toEqual([]);
    expect(res.knocksDoneMs, "all knocks answered within 10 s").toBeLessThan(10_000);
    // Every ssh knocker reaches the ssh port; the openvpn knockers and an address that never knocked do not.
    const stateOf = (ips: string[]) => res.checks.filter((c) => ips.includes(c.ip)).map((c) => c.state);
    expect(stateOf(sshAddrs()).filter((s) => s !== "open").length, "ssh knockers whose ssh port is not open").toBe(0);
    expect(stateOf(sshAddrs())).toHaveLength(ADDRESSES / 2);
    expect(stateOf(vpnAddrs()).filter((s) => s !== "closed").length, "openvpn knockers that reach ssh").toBe(0);
    expect(stateOf([NEVER_KNOCKED]), "an address that never knocked").toEqual(["closed"]);
    // None lost: the helper lists every address's step-1 and step-2 lease, and the kernel holds them.
    const leases = (await h.stack.status()).filter((l) => LOAD_ADDRS.includes(l.ip));
    const listed = (step: number, ips: string[], app: string): number => new Set(leases.filter((l) => l.step === step && l.app === app && ips.includes(l.ip)).map((l) => l.ip)).size;
    expect(
      { ssh: listed(2, sshAddrs(), h.ssh.name), openvpn: listed(2, vpnAddrs(), h.openvpn.name), step1: listed(1, sshAddrs(), h.ssh.name) + listed(1, vpnAddrs(), h.openvpn.name) },
      "leases listed by knockport status --json",
    ).toEqual({ ssh: ADDRESSES / 2, openvpn: ADDRESSES / 2, step1: ADDRESSES });
    expect(leases, "no lease other than those").toHaveLength(2 * ADDRESSES);
    const state = await h.firewallState();
    const inKernel = (set: string, ips: string[]): number => new Set(state?.elements.filter((e) => e.set === set && ips.includes(e.ip)).map((e) => e.ip)).size;
    expect(
      { ssh: inKernel("svc_ssh_v4", sshAddrs()), openvpn: inKernel("svc_openvpn_v4", vpnAddrs()), https: inKernel("https_v4", LOAD_ADDRS), strays: inKernel("svc_ssh_v4", vpnAddrs()) },
      "kernel elements",
    ).toEqual({ ssh: ADDRESSES / 2, openvpn: ADDRESSES / 2, https: ADDRESSES, strays: 0 });
  });

  it(`the rate limit still holds: the ${RATE_LIMIT + 1}th knock of one address in a minute answers 429`, async () => {
    const knocks = Array.from({ length: RATE_LIMIT + 1 }, () => knockOf(GREEDY));
    const res = await run({ ...baseJob(), knocks, checkIps: [] });
    const statuses = res.results.map((k) => k.status);
    expect(statuses, `statuses ${JSON.stringify(statuses)}`).toEqual([...Array<number>(RATE_LIMIT).fill(200), 429]);
  });
});
