// End-to-end, secret hygiene and the helper socket's trust boundary (issue 4, items 6 and 7), on the
// real kernel with the real helper and server:
// - knocks with known keys and tokens (valid and invalid, both steps): no access key, knock path or
//   token in any line either process printed; the state dir (0700) holds only the 0600 lock file;
// - the helper socket is 0660 root:<server group>; a process outside the group is refused (EACCES);
//   whatever a process inside the group sends, only configured apps can open (firewall unchanged), and
//   the admin methods (grant, close, list, stats) are refused there; the admin socket is 0600 root.
// Runs once per firewall backend.
import { chmodSync, chownSync, mkdirSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, expect, it } from "vitest";
import { describeKnockport } from "./describe-knockport.js";
import { REPO_ROOT, accountId, e2eFirewalls, expectOk, expectStep1NoReply, type Harness } from "./harness.js";
import { formBody, knock, knockUrl, readNftTable, sleep, type AppSpec, type ExecResult, type FirewallKind } from "./testbed.js";
import { counterAt, totp } from "./totp.js";

/** The server's group (the testbed runs it as nobody:nogroup and gives the helper --socket-group nogroup). */
const SERVER_GROUP = "nogroup";
/** A group that is neither the socket's group nor root's. */
const OUTSIDE_GROUP = "daemon";
const TOKENS = ["493817", "082645", "731950"];

const gidOf = (group: string): number => accountId("/etc/group", group);

/**
 * Sends `frames` (one per line) to the helper socket as `user:group` without supplementary groups,
 * and prints {connected, error, answers}. Runs in srv (the socket is a file; the netns does not matter).
 */
const CLIENT_SCRIPT = `
const net = require("node:net");
const path = process.argv[1];
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const frames = JSON.parse(input);
  const out = { connected: false, error: null, answers: [], uid: process.getuid(), gid: process.getgid(), groups: process.getgroups() };
  let buf = "";
  let finished = false;
  const done = () => { if (finished) return; finished = true; process.stdout.write(JSON.stringify(out)); process.exit(0); };
  setTimeout(done, 4000);
  const s = net.createConnection({ path });
  s.on("error", (e) => { out.error = e.code; done(); });
  s.on("connect", () => { out.connected = true; s.write(frames.map((f) => f + "\\n").join("")); });
  s.on("data", (d) => {
    buf += d;
    for (let i = buf.indexOf("\\n"); i >= 0; i = buf.indexOf("\\n")) { out.answers.push(JSON.parse(buf.slice(0, i))); buf = buf.slice(i + 1); }
    if (out.answers.length >= frames.length) done();
  });
  s.on("close", done);
});
`;

interface SocketClientResult {
  connected: boolean;
  error: string | null;
  answers: { id?: unknown; result?: unknown; error?: { code: number; message: string } }[];
  uid: number;
  gid: number;
  groups: number[];
}

async function asUser(h: Harness, group: string, frames: string[]): Promise<SocketClientResult> {
  const res: ExecResult = await h.topo.exec("srv", process.execPath, ["-e", CLIENT_SCRIPT, h.stack.socketPath], {
    runAs: { user: "nobody", group },
    input: JSON.stringify(frames),
    timeoutMs: 15_000,
  });
  expect(res.exitCode, `socket client as nobody:${group}: ${res.stdout} ${res.stderr}`).toBe(0);
  return JSON.parse(res.stdout) as SocketClientResult;
}

/**
 * Everything of ours in the firewall, without element countdowns and rule counters (they change on
 * their own): nftables: the whole table as nft lists it; iptables: our sets' elements and every
 * KNOCKPORT rule as iptables-save / ip6tables-save print them.
 */
async function firewallSnapshot(h: Harness, firewall: FirewallKind): Promise<unknown> {
  if (firewall === "nftables") {
    const table = await readNftTable(h.topo);
    expect(table, "table inet knockport must exist").toBeDefined();
    return JSON.parse(JSON.stringify(table, (key, value: unknown) => (key === "expires" || key === "counter" ? undefined : value))) as unknown;
  }
  const state = await h.firewallState();
  expect(state, "KnockPort's chains and sets must exist").toBeDefined();
  const strip = (key: string, value: unknown): unknown => (key === "expires" || key === "counter" ? undefined : value);
  if (firewall !== "iptables-nft" && firewall !== "iptables-legacy") {
    // any other backend (VyOS) lives in nftables tables: the whole ruleset
    const r = await h.topo.exec("srv", "nft", ["-j", "list", "ruleset"]);
    expect(r.exitCode, `nft list ruleset: ${r.stderr}`).toBe(0);
    return { elements: (state?.elements ?? []).map((e) => `${e.set} ${e.ip}`).sort(), ruleset: JSON.parse(JSON.stringify(JSON.parse(r.stdout), strip)) as unknown };
  }
  const flavour = firewall === "iptables-nft" ? "nft" : "legacy";
  const rules: string[] = [];
  for (const tool of [`iptables-${flavour}-save`, `ip6tables-${flavour}-save`]) {
    const r = await h.topo.exec("srv", tool, []);
    expect(r.exitCode, `${tool}: ${r.stderr}`).toBe(0);
    rules.push(...r.stdout.split("\n").filter((l) => l.includes("KNOCKPORT")).map((l) => l.replace(/\[\d+:\d+\]/g, "")));
  }
  expect(rules.length).toBeGreaterThan(0);
  return { sets: [...(state?.sets ?? [])].sort(), elements: (state?.elements ?? []).map((e) => `${e.set} ${e.ip}`).sort(), rules };
}

const rpc = (id: number, method: unknown, params?: unknown): string =>
  JSON.stringify({ jsonrpc: "2.0", id, method, ...(params === undefined ? {} : { params }) });

// The server keeps spent 2FA codes in its own state dir.
const stack = { duration: 30, step2HttpsDuration: 10, rateLimitPerMinute: 1000, serverStateDir: true };

describeKnockport("knockport end to end ($firewall): secret hygiene and the helper socket's trust boundary", e2eFirewalls(), stack, (h, { firewall }) => {
  let ssh: AppSpec;
  let openvpn: AppSpec;
  /** openvpn's second step-1 key needs a TOTP code; its secret must not be logged either. */
  let twoFa: { key: string; secret: string; interval: number };
  const nftSnapshot = (): Promise<unknown> => firewallSnapshot(h, firewall);

  beforeAll(async () => {
    ssh = h.ssh;
    openvpn = h.openvpn;
    const folder = join(h.stack.dir, "2fa"); // the config's default 2fa_config_folder
    mkdirSync(folder, { mode: 0o700 });
    chownSync(folder, 0, gidOf(SERVER_GROUP)); // root:<server group> 0750: the server reads, never writes
    chmodSync(folder, 0o750);
    const key = openvpn.accessKeysHttp[1] ?? "";
    const setup = await h.topo.exec("srv", process.execPath, [join(REPO_ROOT, "bin/knockport"), "setup-2fa", "-c", h.stack.configPath, "--no-qr"], {
      env: { KNOCKPORT_HTTP_KEY: key },
      timeoutMs: 30_000,
    });
    expect(setup.exitCode, `${setup.stdout}${setup.stderr}`).toBe(0);
    const file = readdirSync(folder).find((f) => /^[0-9a-f]{32}\.json$/.test(f));
    if (file === undefined) throw new Error(`setup-2fa wrote no 2FA file: ${readdirSync(folder).join(", ")}`);
    const parsed = JSON.parse(readFileSync(join(folder, file), "utf8")) as { secret: string; interval?: number };
    twoFa = { key, secret: parsed.secret, interval: parsed.interval ?? 30 };
  });

  it("the helper socket is 0660 root:<server group>; a user outside the group is refused with EACCES", async () => {
    const st = statSync(h.stack.socketPath);
    expect(st.isSocket()).toBe(true);
    expect((st.mode & 0o777).toString(8)).toBe("660");
    expect(st.uid).toBe(0);
    expect(st.gid).toBe(gidOf(SERVER_GROUP));
    expect(gidOf(OUTSIDE_GROUP)).not.toBe(st.gid);

    const outsider = await asUser(h, OUTSIDE_GROUP, [rpc(1, "hello")]);
    expect(outsider.uid).toBe(65534);
    expect(outsider.gid).toBe(gidOf(OUTSIDE_GROUP));
    expect(outsider.groups).not.toContain(st.gid);
    expect({ connected: outsider.connected, error: outsider.error }).toEqual({ connected: false, error: "EACCES" });

    // Control: the same user in the socket's group gets in, so the refusal above is the group's doing.
    const member = await asUser(h, SERVER_GROUP, [rpc(1, "hello")]);
    expect(member.connected).toBe(true);
    expect(member.answers[0]?.result).toBeDefined();
  });

  it("the knock socket refuses the admin methods: a group member's valid grant, close, list and stats get METHOD_NOT_ALLOWED and change nothing", async () => {
    const before = await nftSnapshot();
    const target = { app: ssh.name, ip: h.topo.addr.cli2.v4 };
    const member = await asUser(h, SERVER_GROUP, [
      rpc(1, "grant", target),
      rpc(2, "grant", { ...target, durationSeconds: 20 }),
      rpc(3, "close", target),
      rpc(4, "list"),
      rpc(5, "stats"),
    ]);
    expect(member.connected).toBe(true);
    expect(
      member.answers.map((a) => [a.id, a.error?.code, (a.error as { data?: { name?: string } } | undefined)?.data?.name]),
      `answers: ${JSON.stringify(member.answers)}`,
    ).toEqual([1, 2, 3, 4, 5].map((id) => [id, -32009, "METHOD_NOT_ALLOWED"]));
    expect(await nftSnapshot(), "an admin method over the knock socket changed the firewall").toEqual(before);
    expect(await h.svc("cli2", ssh), "cli2 ssh after a grant over the knock socket").toBe("closed");
    // The server's read-only method for /metrics answers there, without addresses.
    const counters = await asUser(h, SERVER_GROUP, [rpc(6, "counters")]);
    expect(counters.answers[0]?.result).toMatchObject({ reinstalls: expect.any(Number), openLeases: expect.any(Array) });
    expect(JSON.stringify(counters.answers[0]?.result)).not.toMatch(/\d+\.\d+\.\d+\.\d+/);
  });

  it("the admin socket is 0600 root: the server's group cannot connect to it; root's grant there works", async () => {
    const st = statSync(h.stack.adminSocketPath);
    expect(st.isSocket()).toBe(true);
    expect((st.mode & 0o777).toString(8)).toBe("600");
    expect(st.uid).toBe(0);
    const res = await h.topo.exec("srv", process.execPath, ["-e", CLIENT_SCRIPT, h.stack.adminSocketPath], {
      runAs: { user: "nobody", group: SERVER_GROUP },
      input: JSON.stringify([rpc(1, "list")]),
      timeoutMs: 15_000,
    });
    expect(JSON.parse(res.stdout)).toMatchObject({ connected: false, error: "EACCES" });
    const grant = await h.stack.cli(["grant", "--app", ssh.name, "--ip", h.topo.addr.cli2.v4, "--duration", "5", "--admin-socket", h.stack.adminSocketPath]);
    expect(grant.exitCode, `${grant.stdout}${grant.stderr}`).toBe(0);
    expect(await h.svc("cli2", ssh)).toBe("open");
    const revoke = await h.stack.cli(["revoke", "--app", ssh.name, "--ip", h.topo.addr.cli2.v4, "--admin-socket", h.stack.adminSocketPath]);
    expect(revoke.exitCode, `${revoke.stdout}${revoke.stderr}`).toBe(0);
    expect(await h.svc("cli2", ssh)).toBe("closed");
  });

  it("whatever a group member sends, nothing but a configured app opens: hostile frames leave the firewall unchanged", async () => {
    const before = await nftSnapshot();
    // The helper's own open files (ip netns exec and setpriv exec, so the pid is node's).
    const helperFds = (): number => readdirSync(`/proc/${String(h.stack.helper.pid)}/fd`).length;
    const fdsBefore = helperFds();
    const cli = h.topo.addr.cli.v4;
    const hostile = [
      rpc(1, "open", { step: 1, app: "sshd", ip: cli }),
      rpc(2, "open", { step: 2, app: "nosuchapp", ip: cli }),
      rpc(3, "open", { step: 3, app: ssh.name, ip: cli }),
      rpc(4, "open", { step: 2, app: ssh.name, ip: cli }), // no step 1: refused
      rpc(5, "open", { step: 1, app: `${ssh.name}; flush ruleset`, ip: cli }),
      rpc(6, "open", { step: 1, app: ssh.name, ip: `${cli}; nft flush ruleset` }),
      rpc(7, "open", { step: 1, app: ssh.name, ip: "fe80::1%ext0" }),
      rpc(8, "open", { step: 1, app: ssh.name, ip: "0.0.0.0" }),
      rpc(9, "open", { step: 1, app: ssh.name, ip: "ff02::1" }),
      rpc(10, "open", { step: 1, app: ssh.name, ip: cli, port: 22 }),
      rpc(11, "open", { step: 1, app: ssh.name, ip: cli, protocol: "tcp", durationSeconds: 999999 }),
      rpc(12, "grant", { app: ssh.name, ip: cli }),
      rpc(13, "grant", { app: ssh.name, ip: cli, durationSeconds: 366 * 24 * 3600 }),
      rpc(14, "close", { app: "nosuchapp", ip: cli }),
      rpc(15, "flush"),
      rpc(16, "uninstall"),
      rpc(17, "exec", { cmd: "nft flush ruleset" }),
      '{"jsonrpc":"2.0","id":18,"method":"open","params":{"step":1,"app":"ssh\\"}","ip":"198.51.100.10"}}',
      '{"jsonrpc":"2.0","id":19,"method":"open","params":{"step":1,"app":"ssh\\u0000","ip":"198.51.100.10"}}',
      "{ not json",
      rpc(21, "open", [1, ssh.name, cli]),
    ];
    const member = await asUser(h, SERVER_GROUP, hostile);
    expect(member.connected).toBe(true);
    expect(member.answers).toHaveLength(hostile.length);
    const refused = member.answers.filter((a) => a.error !== undefined && a.result === undefined);
    expect(refused.map((a) => a.id), `answers: ${JSON.stringify(member.answers)}`).toHaveLength(hostile.length);
    expect(await nftSnapshot(), "the hostile frames changed the firewall").toEqual(before);
    for (const host of ["cli", "cli2"] as const) expect(await h.svc(host, ssh), `${host} ssh`).toBe("closed");

    // An oversized frame ends the connection with an error and changes nothing either.
    const huge = await asUser(h, SERVER_GROUP, [rpc(30, "open", { step: 1, app: "a".repeat(70_000), ip: cli })]);
    expect(huge.answers[0]?.error?.code).toBe(-32600);
    expect(await nftSnapshot()).toEqual(before);

    // Control: a valid request over the same channel does change the table (for a configured app only).
    const ok = await asUser(h, SERVER_GROUP, [rpc(40, "open", { step: 1, app: ssh.name, ip: h.topo.addr.cli2.v4 })]);
    expect(ok.answers[0]?.result).toBeDefined();
    expect(await nftSnapshot()).not.toEqual(before);
    expect(await h.https("cli2")).toBe("open");
    // and the helper holds no more files than before (every client connection was released)
    let fdsAfter = helperFds();
    for (let i = 0; i < 40 && fdsAfter > fdsBefore; i++) {
      await sleep(50);
      fdsAfter = helperFds();
    }
    expect(fdsAfter, `helper fds before ${fdsBefore}, after ${fdsAfter}`).toBeLessThanOrEqual(fdsBefore);
  });

  it("knocks with known keys and tokens, valid and invalid on both steps: no key, knock path or token in any log line", async () => {
    // valid knocks, IPv4 and IPv6, every key pair
    await h.fullKnock("cli", ssh);
    await h.fullKnock("cli", openvpn, 6);
    expectStep1NoReply(await h.step1("cli", ssh, { key: ssh.accessKeysHttp[1] }), "second key pair, step 1");
    expectOk(await h.step2("cli", ssh, { key: ssh.accessKeysHttps[1] }), "second key pair, step 2");
    // invalid: wrong key, another app's key, a step-2 key on step 1, an unknown app named like a key
    const bad1 = [
      { key: "wrong-key-0123456789" },
      { key: openvpn.accessKeysHttp[0] },
      { key: ssh.accessKeysHttps[0] },
      { appName: ssh.accessKeysHttp[0] },
      { appName: `${ssh.name}; flush ruleset` },
    ];
    for (const o of bad1) expectStep1NoReply(await h.step1("cli2", ssh, o), `bad step 1 ${JSON.stringify(Object.keys(o))}`);
    // step 1 with tokens (no 2FA file for these keys) and with a malformed token
    for (const token of TOKENS) {
      const body = formBody({ app: ssh.name, access_key: ssh.accessKeysHttp[0] ?? "", token });
      expectStep1NoReply(await h.step1("cli2", ssh, { body }), "step 1 with a token");
    }
    expectStep1NoReply(await h.step1("cli2", ssh, { body: `app=${ssh.name}&access_key=${ssh.accessKeysHttp[1]}&token=${TOKENS[0]}x` }), "bad token");
    // a 2FA key: without a code, with a wrong one, with the right one (opens), the same one again (refused)
    const code = totp(twoFa.secret, counterAt(twoFa.interval));
    const wrongCode = code === "000000" ? "000001" : "000000";
    const twoFaBody = (token?: string): string => formBody({ app: openvpn.name, access_key: twoFa.key, ...(token === undefined ? {} : { token }) });
    expectStep1NoReply(await h.step1("cli2", openvpn, { body: twoFaBody() }), "2FA key without a code");
    expectStep1NoReply(await h.step1("cli2", openvpn, { body: twoFaBody(wrongCode) }), "2FA key with a wrong code");
    expectStep1NoReply(await h.step1("cli2", openvpn, { body: twoFaBody(code), family: 6 }), "2FA key with the right code");
    expect(await h.https("cli2", 6), "the right code opens HTTPS").toBe("open");
    expectStep1NoReply(await h.step1("cli", openvpn, { body: twoFaBody(code), family: 6 }), "2FA code replayed");
    expect(await h.https("cli", 6), "a replayed code opens nothing").toBe("closed");
    TOKENS.push(code, wrongCode);
    // step 2 (HTTPS opened again for both, step2_https_duration is short): step-1 key, another app's key,
    // a wrong key, and an app this address did not knock step 1 for
    expectStep1NoReply(await h.step1("cli", ssh), "cli step 1 again");
    expectStep1NoReply(await h.step1("cli2", ssh), "cli2 step 1 for ssh (not openvpn)");
    const bad2: { host: "cli" | "cli2"; key: string | undefined; app?: AppSpec }[] = [
      { host: "cli", key: ssh.accessKeysHttp[0] },
      { host: "cli", key: openvpn.accessKeysHttps[0] },
      { host: "cli", key: "wrong-key-0123456789" },
      { host: "cli2", key: openvpn.accessKeysHttps[1], app: openvpn },
    ];
    for (const b of bad2) {
      const r = await h.step2(b.host, b.app ?? ssh, { key: b.key ?? "" });
      expect(r.status, `bad step 2 from ${b.host}`).toBe(403);
    }
    // step 2 on the wrong path, and a token on step 2
    const wrongPath = await knock(h.topo, "cli", {
      step: 2,
      url: knockUrl("https", h.srvIp(4), h.cfg.httpsPort, `${h.cfg.httpsPostPath}x`),
      body: formBody({ app: ssh.name, access_key: ssh.accessKeysHttps[0] ?? "", token: TOKENS[1] ?? "" }),
    });
    expect(wrongPath.status).toBe(404);
    const withToken = await knock(h.topo, "cli", {
      step: 2,
      url: knockUrl("https", h.srvIp(4), h.cfg.httpsPort, h.cfg.httpsPostPath),
      body: formBody({ app: ssh.name, access_key: ssh.accessKeysHttps[0] ?? "", token: TOKENS[2] ?? "" }),
    });
    expect(withToken.status).not.toBe(500);
    expect(withToken.status).toBeDefined();
    await sleep(500); // let the last log lines arrive

    const lines = [...h.stack.helper.lines, ...h.stack.server.lines].map((l) => l.line);
    // The check means something only if the knocks were logged, both the accepted and the refused ones.
    expect(lines.some((l) => l.includes('"event":"knock.accepted"'))).toBe(true);
    expect(lines.some((l) => l.includes('"event":"knock.refused"'))).toBe(true);
    expect(h.stack.helper.lines.some((l) => l.line.includes("lease.opened"))).toBe(true);

    const secrets = [
      ...h.cfg.apps.flatMap((a) => [...a.accessKeysHttp, ...a.accessKeysHttps]),
      h.cfg.httpPostPath,
      h.cfg.httpsPostPath,
      h.cfg.httpPostPath.slice(1),
      h.cfg.httpsPostPath.slice(1),
      twoFa.secret,
    ];
    const leaks: string[] = [];
    for (const line of lines) {
      for (const s of secrets) if (line.includes(s)) leaks.push(`secret ${s.slice(0, 6)}… in: ${line.slice(0, 300)}`);
      // Tokens are 6 digits: look for them as values, not inside timestamps or pids.
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        parsed = undefined;
      }
      const values: unknown[] = [];
      const walk = (v: unknown, key: string): void => {
        if (v !== null && typeof v === "object") for (const [k, x] of Object.entries(v)) walk(x, k);
        else if (key !== "time" && key !== "pid") values.push(v);
      };
      if (parsed === undefined) values.push(line);
      else walk(parsed, "");
      for (const v of values) {
        for (const t of TOKENS) {
          if ((typeof v === "string" && v.includes(t)) || (typeof v === "number" && String(v) === t) /* a code with leading zeros cannot be a JSON number */) {
            leaks.push(`token in: ${line.slice(0, 300)}`);
          }
        }
      }
    }
    expect(leaks).toEqual([]);
    expect(lines.length).toBeGreaterThan(20);
  });

  it("the state directory is root's 0700 and holds only the 0600 lock file (no lease is written to disk)", () => {
    const lock = `${h.stack.stateDir}/helper.lock`;
    const st = statSync(lock);
    expect((st.mode & 0o777).toString(8), lock).toBe("600");
    expect(st.uid).toBe(0);
    const dir = statSync(h.stack.stateDir);
    expect((dir.mode & 0o777).toString(8)).toBe("700");
    expect(readdirSync(h.stack.stateDir)).toEqual(["helper.lock"]);
    expect(readFileSync(lock, "utf8")).toMatch(/^\d+\n$/);
  });
});
