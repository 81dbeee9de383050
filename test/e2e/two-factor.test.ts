// End-to-end 2FA and knock client: the real helper and server (as nobody, with its own --state-dir) in the
// namespace topology, a 2FA file written by `knockport setup-2fa`, knocks with real curl and with
// `knockport knock` run in the client namespaces.
import { chmodSync, chownSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeKnockport } from "./describe-knockport.js";
import { REPO_ROOT, accountId, describeResult, e2eFirewalls, expectOk, expectStep1NoReply } from "./harness.js";
import { formBody, knock, knockUrl, type AppSpec, type ExecResult, type HostName, type ManagedProcess } from "./testbed.js";
import { counterAt, totp } from "./totp.js";

const DURATION_S = 5;
const STEP2_WINDOW_S = 4;

const NOBODY = accountId("/etc/passwd", "nobody");
const NOGROUP = accountId("/etc/group", "nogroup");

// The 2FA logic lives in the server, but step 1 of the knock client must also pass each backend's
// stealth-port filter, so the file runs once per backend (KNOCKPORT_E2E_FIREWALLS narrows it).
const stack = { duration: DURATION_S, step2HttpsDuration: STEP2_WINDOW_S, rateLimitPerMinute: 1000, serverStateDir: true };

describeKnockport("2FA and the knock client end to end ($firewall)", e2eFirewalls(), stack, (h) => {
  let ssh: AppSpec;
  let openvpn: AppSpec;
  let secret: { secret: string; interval: number };
  let twoFaKey: string;
  let spentBody: string;
  let restarted: ManagedProcess | undefined;

  /** `node bin/knockport ...` in a namespace, with extra environment and stdin. */
  function cli(host: HostName, args: readonly string[], env: Record<string, string> = {}, input?: string): Promise<ExecResult> {
    return h.topo.exec(host, process.execPath, [join(REPO_ROOT, "bin/knockport"), ...args], {
      timeoutMs: 30_000,
      env,
      ...(input !== undefined ? { input } : {}),
    });
  }
  const show = (r: ExecResult): string => `exit ${String(r.exitCode)}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

  beforeAll(async () => {
    ssh = h.ssh;
    openvpn = h.openvpn;
    twoFaKey = ssh.accessKeysHttp[0] ?? "";
    // The 2FA folder (config default: "2fa" next to the config), root:<server group> 0750: the server reads, never writes.
    const folder = join(h.stack.dir, "2fa");
    mkdirSync(folder, { mode: 0o700 });
    chownSync(folder, 0, NOGROUP);
    chmodSync(folder, 0o750);
    // The key travels in the environment, not on the command line.
    const setup = await cli("srv", ["setup-2fa", "-c", h.stack.configPath, "--no-qr"], { KNOCKPORT_HTTP_KEY: twoFaKey });
    expect(setup.exitCode, show(setup)).toBe(0);
    expect(setup.stdout).toContain('app "ssh"');
    expect(setup.stdout + setup.stderr).not.toContain(twoFaKey);
    const files = readdirSync(folder);
    const json = files.find((f) => /^[0-9a-f]{32}\.json$/.test(f));
    expect(files.some((f) => /^[0-9a-f]{32}_qr\.png$/.test(f)), files.join(", ")).toBe(true);
    if (json === undefined) throw new Error(`no 2FA file in ${files.join(", ")}`);
    const st = statSync(join(folder, json));
    expect({ mode: st.mode & 0o777, uid: st.uid, gid: st.gid }).toEqual({ mode: 0o640, uid: 0, gid: NOGROUP });
    secret = JSON.parse(readFileSync(join(folder, json), "utf8")) as { secret: string; interval: number };
  });
  afterAll(async () => {
    await restarted?.stop(3000);
  });

  it("1. the server uses its --state-dir (no fail-closed warning)", () => {
    expect(h.topo.logs(200)).not.toContain("2fa.store.unavailable");
  });

  it("2. a 2FA key without a token, or with a wrong one, does not open HTTPS", async () => {
    const noToken = await h.step1("cli", ssh, { key: twoFaKey });
    expectStep1NoReply(noToken, "2FA key without token");
    const right = totp(secret.secret, counterAt(secret.interval));
    const wrong = right === "000000" ? "000001" : "000000";
    const wrongToken = await h.step1("cli", ssh, { body: formBody({ app: ssh.name, access_key: twoFaKey, token: wrong }) });
    expectStep1NoReply(wrongToken, "2FA key with a wrong token");
    expect(await h.https("cli"), "HTTPS must stay closed for cli").toBe("closed");
    expect(await h.setsHolding(h.topo.addr.cli.v4)).toEqual([]);
  });

  it("3. a 2FA key with a generated token opens HTTPS; step 2 opens the service for cli only", async () => {
    spentBody = formBody({ app: ssh.name, access_key: twoFaKey, token: totp(secret.secret, counterAt(secret.interval)) });
    expectStep1NoReply(await h.step1("cli", ssh, { body: spentBody }), "2FA step 1 with a valid token");
    h.noteLease("cli", 4, "https", Date.now(), STEP2_WINDOW_S);
    expect(await h.https("cli"), "HTTPS open for cli after a valid token").toBe("open");
    const s2 = await h.step2("cli", ssh);
    expectOk(s2, "step 2 after a 2FA step 1");
    h.noteLease("cli", 4, ssh.name, Date.now(), DURATION_S);
    expect({ cli: await h.svc("cli", ssh), cli2: await h.svc("cli2", ssh) }).toEqual({ cli: "open", cli2: "closed" });
  });

  it("4. the bystander replaying the same step-1 request (same token) is refused", async () => {
    const replay = await knock(h.topo, "cli2", {
      step: 1,
      url: knockUrl("http", h.srvIp(4), h.cfg.httpPort, h.cfg.httpPostPath),
      body: spentBody,
    });
    expectStep1NoReply(replay, "replay from cli2");
    expect(await h.https("cli2"), "HTTPS must stay closed for cli2").toBe("closed");
    expect(await h.setsHolding(h.topo.addr.cli2.v4), "no set may hold cli2's address").toEqual([]);
    const s2 = await h.step2("cli2", ssh);
    expect(s2.status, `step 2 from cli2 must not be answered: ${describeResult(s2)}`).toBeUndefined();
    expect(await h.svc("cli2", ssh)).toBe("closed");
    // the spent token is remembered in the server's own state file (0600, owned by the server's user),
    // which holds neither the token nor the secret
    const stateFile = join(h.serverStateDir, "used-totp.json");
    const st = statSync(stateFile);
    expect({ mode: st.mode & 0o777, uid: st.uid }).toEqual({ mode: 0o600, uid: NOBODY });
    const text = readFileSync(stateFile, "utf8");
    expect(Object.keys((JSON.parse(text) as { used: object }).used)).toHaveLength(1);
    expect(text).not.toContain(new URLSearchParams(spentBody).get("token") ?? "-");
    expect(text).not.toContain(secret.secret);
  });

  it("5. knockport knock from cli: both steps, keys from the environment, verified TLS, --check-port udp", async () => {
    expect(await h.svc("cli", openvpn), "precondition: openvpn closed for cli").toBe("closed");
    const r = await cli(
      "cli",
      ["knock", "--host", h.srvIp(4), "--app", openvpn.name, "--ca", h.stack.certPath, "--tls-name", "knockport.test", "--check-port", `${openvpn.port}/udp`],
      {
        KNOCKPORT_HTTP_KEY: openvpn.accessKeysHttp[1] ?? "",
        KNOCKPORT_HTTPS_KEY: openvpn.accessKeysHttps[1] ?? "",
        KNOCKPORT_HTTP_PATH: h.cfg.httpPostPath,
        KNOCKPORT_HTTPS_PATH: h.cfg.httpsPostPath,
        KNOCKPORT_HTTP_PORT: String(h.cfg.httpPort),
        KNOCKPORT_HTTPS_PORT: String(h.cfg.httpsPort),
      },
    );
    h.noteLease("cli", 4, openvpn.name, Date.now(), DURATION_S);
    expect(r.exitCode, show(r)).toBe(0);
    expect(r.stdout).toContain("no answer, as designed");
    expect(r.stdout).toContain(`check: udp/${openvpn.port} on ${h.srvIp(4)} is open`);
    for (const s of [...openvpn.accessKeysHttp, ...openvpn.accessKeysHttps, h.cfg.httpPostPath, h.cfg.httpsPostPath]) {
      expect(r.stdout + r.stderr).not.toContain(s);
    }
    expect({ cli: await h.svc("cli", openvpn), cli2: await h.svc("cli2", openvpn) }).toEqual({ cli: "open", cli2: "closed" });
  });

  const base = (app: AppSpec, pair: number): string[] => [
    "knock", "--host", h.srvIp(4), "--app", app.name, "--insecure",
    "--http-path", h.cfg.httpPostPath, "--https-path", h.cfg.httpsPostPath,
    "--http-port", String(h.cfg.httpPort), "--https-port", String(h.cfg.httpsPort),
    "--http-key", app.accessKeysHttp[pair] ?? "", "--https-key", app.accessKeysHttps[pair] ?? "",
  ];

  it("6. knockport knock with the spent token: step 1 refused, the HTTPS port stays closed (exit 4)", async () => {
    const token = new URLSearchParams(spentBody).get("token") ?? "";
    const r = await cli("cli2", [...base(ssh, 0), "--token", token, "--step2-timeout", "1500"]);
    expect(r.exitCode, show(r)).toBe(4);
    expect(r.stderr).toContain("stayed closed");
    expect(await h.setsHolding(h.topo.addr.cli2.v4)).toEqual([]);
  });

  it("7. knockport knock --totp-prompt (code on stdin, next period: skew 1) from cli2 opens ssh, --check-port tcp", async () => {
    expect(await h.svc("cli2", ssh), "precondition: ssh closed for cli2").toBe("closed");
    const next = totp(secret.secret, counterAt(secret.interval) + 1);
    const r = await cli("cli2", [...base(ssh, 0), "--totp-prompt", "--check-port", String(ssh.port)], {}, `${next}\n`);
    expect(r.exitCode, show(r)).toBe(0);
    expect(r.stdout).toContain(`check: tcp/${ssh.port} on ${h.srvIp(4)} is open`);
    expect(r.stdout + r.stderr).not.toContain(next);
    expect(await h.svc("cli2", ssh)).toBe("open");
  });

  it("8. knockport knock with a wrong HTTPS key: step 2 refused (exit 5), the service stays closed", async () => {
    const args = base(openvpn, 0);
    args[args.indexOf("--https-key") + 1] = openvpn.accessKeysHttps[1] ?? ""; // the other pair's key
    const r = await cli("cli2", args);
    expect(r.exitCode, show(r)).toBe(5);
    expect(r.stderr).toContain("step 2: refused (403)");
    expect(await h.svc("cli2", openvpn)).toBe("closed");
  });

  it("9. deploy/clients/knock-curl.sh with a settings file opens the app for cli2 (curl, verified TLS, keys never on a command line)", async () => {
    expect(await h.svc("cli2", openvpn), "precondition: openvpn closed for cli2").toBe("closed");
    const settings = join(h.stack.dir, "client.env");
    writeFileSync(
      settings,
      [
        `KNOCKPORT_HOST=${h.srvIp(4)}`,
        `KNOCKPORT_APP=${openvpn.name}`,
        `KNOCKPORT_HTTP_PATH=${h.cfg.httpPostPath}`,
        `KNOCKPORT_HTTP_PORT=${h.cfg.httpPort}`,
        `KNOCKPORT_HTTP_KEY=${openvpn.accessKeysHttp[0] ?? ""}`,
        `KNOCKPORT_HTTPS_PATH=${h.cfg.httpsPostPath}`,
        `KNOCKPORT_HTTPS_PORT=${h.cfg.httpsPort}`,
        `KNOCKPORT_HTTPS_KEY=${openvpn.accessKeysHttps[0] ?? ""}`,
        // verified TLS: the server's certificate names knockport.test, the script connects to the address
        `KNOCKPORT_CA=${h.stack.certPath}`,
        "KNOCKPORT_TLS_NAME=knockport.test",
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    const r = await h.topo.exec("cli2", "sh", [join(REPO_ROOT, "deploy/clients/knock-curl.sh"), settings], { timeoutMs: 30_000 });
    expect(r.exitCode, show(r)).toBe(0);
    expect(r.stdout).toContain(`${openvpn.name} opened for this address`);
    expect(await h.svc("cli2", openvpn)).toBe("open");
    // the same settings file drives the node client too (a re-knock refreshes the lease)
    const k = await cli("cli2", ["knock", "--config", settings, "--check-port", `${openvpn.port}/udp`]);
    h.noteLease("cli2", 4, "https", Date.now(), STEP2_WINDOW_S);
    expect(k.exitCode, show(k)).toBe(0);
  });

  it("10. a code accepted before a server restart is still refused after it (the server's --state-dir file)", async () => {
    // A second 2FA key (ssh pair 1), so this test does not depend on the codes spent above.
    const key = ssh.accessKeysHttp[1] ?? "";
    const setup = await cli("srv", ["setup-2fa", "-c", h.stack.configPath, "--no-qr", "--label", "restart-test"], { KNOCKPORT_HTTP_KEY: key });
    expect(setup.exitCode, show(setup)).toBe(0);
    const file = /secret file: (\S+\.json)/.exec(setup.stdout)?.[1] ?? "";
    const s = JSON.parse(readFileSync(file, "utf8")) as { secret: string; interval: number };
    const counter = counterAt(s.interval);
    const body = formBody({ app: ssh.name, access_key: key, token: totp(s.secret, counter) });
    const url = knockUrl("http", h.srvIp(4), h.cfg.httpPort, h.cfg.httpPostPath);
    expectStep1NoReply(await knock(h.topo, "cli", { step: 1, url, body }), "step 1 with the second key's code");
    h.noteLease("cli", 4, "https", Date.now(), STEP2_WINDOW_S);
    expect(await h.https("cli"), "control: the code opened HTTPS for cli").toBe("open");

    // Restart the server (same flags, same --state-dir).
    await h.stack.server.stop(3000);
    restarted = h.topo.spawn(
      "srv",
      process.execPath,
      [
        join(REPO_ROOT, "bin/knockport-server"),
        "-c", h.stack.configPath,
        "--http-port", String(h.cfg.httpPort),
        "--https-port", String(h.cfg.httpsPort),
        "--cert", h.stack.certPath,
        "--key", h.stack.keyPath,
        "--socket", h.stack.socketPath,
        "--state-dir", h.serverStateDir,
      ],
      { label: "knockport-server (restarted)", runAs: { user: "nobody", group: "nogroup" } },
    );
    await restarted.waitForLine(/"msg":"server ready"/, 20_000);

    // The bystander replays the accepted code: refused by the restarted server.
    await h.waitExpired(h.leaseKey("cli2", 4, "https"));
    expect(await h.https("cli2"), "precondition: cli2's earlier HTTPS window has expired").toBe("closed");
    // (still inside the code's validity window, so only the spent-code record can refuse it)
    expect(counterAt(s.interval), "timing: the code must still be inside its validity window").toBeLessThanOrEqual(counter + 1);
    expectStep1NoReply(await knock(h.topo, "cli2", { step: 1, url, body }), "replay after the restart");
    expect(await h.https("cli2"), "HTTPS must stay closed for cli2 after the replay").toBe("closed");
    // Control: the restarted server does accept a newer code of the same key (next period, skew 1).
    const fresh = formBody({ app: ssh.name, access_key: key, token: totp(s.secret, counter + 1) });
    expectStep1NoReply(await knock(h.topo, "cli2", { step: 1, url, body: fresh }), "newer code after the restart");
    expect(await h.https("cli2"), "control: a newer code opens HTTPS for cli2").toBe("open");
  });

  it("11. knockport knock over IPv6 (address literal, -6): both steps and --check-port through the stealth port's packet limit", async () => {
    expect(await h.svc("cli", openvpn, 6), "precondition: openvpn closed for cli over IPv6").toBe("closed");
    const r = await cli("cli", [...base(openvpn, 1), "-6", "--check-port", `${openvpn.port}/udp`].map((a) => (a === h.srvIp(4) ? h.srvIp(6) : a)));
    expect(r.exitCode, show(r)).toBe(0);
    expect(r.stdout).toContain(`sent to [${h.srvIp(6)}]:${h.cfg.httpPort}`);
    expect(await h.svc("cli", openvpn, 6)).toBe("open");
    expect(await h.svc("cli2", openvpn, 6)).toBe("closed");
  });
});
