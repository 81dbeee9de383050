// End-to-end: the admin commands (knockport grant / revoke / status) against the real helper, and the
// server's loopback-only /metrics listener, in network namespaces with real connects.
import { beforeAll, expect, it } from "vitest";
import { describeKnockport } from "./describe-knockport.js";
import { e2eFirewalls, states } from "./harness.js";
import type { AppSpec } from "./testbed.js";

const DURATION_S = 30;
const METRICS_PORT = 9464;

/** The value of one sample line of a Prometheus text page. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const stack = { duration: DURATION_S, step2HttpsDuration: 5, rateLimitPerMinute: 1000, serverArgs: ["--metrics-port", String(METRICS_PORT)] };

describeKnockport("admin commands and metrics ($firewall, real kernel)", e2eFirewalls(), stack, (h) => {
  let ssh: AppSpec;
  let cliIp: string;

  beforeAll(() => {
    ssh = h.ssh;
    cliIp = h.topo.addr.cli.v4;
  });

  it("grant opens the service port for that address only, without a knock; revoke closes it at once", async () => {
    expect(await states({ cli: () => h.svc("cli", ssh) })).toEqual({ cli: "closed" });

    const g = await h.stack.cli(["grant", "--app", ssh.name, "--ip", cliIp, "--duration", "20", "--admin-socket", h.stack.adminSocketPath, "--json"]);
    expect(g.exitCode, g.stderr).toBe(0);
    expect(JSON.parse(g.stdout)).toMatchObject({ app: ssh.name, ip: cliIp, step: 2, durationSeconds: 20, refreshed: false });
    expect(await states({ cli: () => h.svc("cli", ssh), cli2: () => h.svc("cli2", ssh), https: () => h.https("cli") })).toEqual({
      cli: "open",
      cli2: "closed",
      https: "closed", // a grant opens the service, not the HTTPS knock port
    });
    const leases = await h.stack.status();
    expect(leases.filter((l) => l.ip === cliIp).map((l) => [l.app, l.step])).toEqual([[ssh.name, 2]]);

    const r = await h.stack.cli(["revoke", "--app", ssh.name, "--ip", cliIp, "--admin-socket", h.stack.adminSocketPath]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`closed 1 lease\\(s\\) of ${ssh.name} for ${cliIp.replace(/\./g, "\\.")}`));
    expect(await states({ cli: () => h.svc("cli", ssh) })).toEqual({ cli: "closed" });
    expect((await h.stack.status()).filter((l) => l.ip === cliIp)).toEqual([]);
  });

  it("grant refuses more than the app's duration and unknown apps, and opens nothing", async () => {
    const long = await h.stack.cli(["grant", "--app", ssh.name, "--ip", cliIp, "--duration", String(DURATION_S + 1), "--admin-socket", h.stack.adminSocketPath]);
    expect(long.exitCode).toBe(1);
    expect(long.stderr).toMatch(/longer than .*configured duration/);
    const unknown = await h.stack.cli(["grant", "--app", "nosuchapp", "--ip", cliIp, "--admin-socket", h.stack.adminSocketPath]);
    expect(unknown.exitCode).toBe(1);
    expect(unknown.stderr).toMatch(/--app nosuchapp: no such app/);
    expect(await states({ cli: () => h.svc("cli", ssh) })).toEqual({ cli: "closed" });
  });

  it("/metrics answers on the server's loopback only, counting knocks and open leases", async () => {
    await h.fullKnock("cli", ssh);
    const page = await h.topo.exec("srv", "curl", ["-sS", "-m", "5", `http://127.0.0.1:${METRICS_PORT}/metrics`]);
    expect(page.exitCode, page.stderr).toBe(0);
    expect(sample(page.stdout, 'knockport_knocks_total{step="1",outcome="ok"}')).toBeGreaterThanOrEqual(1);
    expect(sample(page.stdout, 'knockport_knocks_total{step="2",outcome="ok"}')).toBeGreaterThanOrEqual(1);
    expect(sample(page.stdout, `knockport_open_leases{app="${ssh.name}",step="2"}`)).toBe(1);
    expect(sample(page.stdout, 'knockport_helper_call_duration_seconds_count{method="open",result="ok"}')).toBeGreaterThanOrEqual(2);
    expect(sample(page.stdout, "knockport_helper_up")).toBe(1);
    // from the knocker's side the metrics port is not there
    const outside = await h.topo.exec("cli", "curl", ["-sS", "-m", "2", `http://${h.srvIp(4)}:${METRICS_PORT}/metrics`]);
    expect(outside.exitCode).not.toBe(0);
    await h.stack.cli(["revoke", "--app", ssh.name, "--ip", cliIp, "--admin-socket", h.stack.adminSocketPath]);
  });
});
