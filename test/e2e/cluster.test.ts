// Cluster mode end to end: two gateways, each its own topology (srv = the gateway with the real helper,
// server and knockport-cluster-sync; cli, cli2 = clients), one real redis-server on a Unix socket both
// srv namespaces reach (no network leaves the namespaces). Both topologies use the same addresses, so
// "cli" is the same client address at gateway A and at gateway B, as behind round-robin DNS.
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { tmpdir } from "node:os";
import { createHmac, randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { twoFactorFileId } from "../../packages/config/src/index.js";
import { startTestRedis, type TestRedis } from "../../packages/cluster-store/test/redis-server.js";
import { REPO_ROOT } from "./harness.js";
import {
  cleanupStaleTopologies,
  createTopology,
  exampleConfig,
  formBody,
  knock,
  knockUrl,
  probeTcp,
  probeTcpConnect,
  startKnockport,
  type AppSpec,
  type ConfigSpec,
  type HostName,
  type KnockportStack,
  type ManagedProcess,
  type Topology,
} from "./testbed.js";

const DURATION_S = 6;
const SYNC_USER = { user: "daemon", group: "daemon" };

interface Gateway {
  name: string;
  topo: Topology;
  stack: KnockportStack;
  sync: ManagedProcess | undefined;
  serverState: string;
}

let redis: TestRedis;
let cfg: ConfigSpec;
let ssh: AppSpec;
let a: Gateway;
let b: Gateway;
const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const secretBase32 = [...randomBytes(32)].map((b) => BASE32[b % 32]).join("");
/** RFC 6238 TOTP (HMAC-SHA1, 6 digits, 30 s), independent of the code under test. */
function totpNow(): string {
  let bits = "";
  for (const c of secretBase32) bits += BASE32.indexOf(c).toString(2).padStart(5, "0");
  const key = Buffer.from((bits.match(/.{8}/g) ?? []).map((x) => parseInt(x, 2)));
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30_000)));
  const mac = createHmac("sha1", key).update(msg).digest();
  const offset = (mac[mac.length - 1] ?? 0) & 0x0f;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}
const nobody = { uid: 65534, gid: 65534 };

async function startSync(g: Gateway): Promise<ManagedProcess> {
  const p = g.topo.spawn(
    "srv",
    process.execPath,
    [join(REPO_ROOT, "bin/knockport-cluster-sync"), "-c", g.stack.configPath, "--admin-socket", g.stack.adminSocketPath, "--events-socket", g.stack.eventsSocketPath],
    { label: `cluster-sync ${g.name}`, runAs: SYNC_USER },
  );
  await p.waitForLine(/"event":"cluster.catch-up"/, 20_000);
  g.sync = p;
  return p;
}

async function gateway(name: string, extraHelperArgs: readonly string[] = []): Promise<Gateway> {
  const topo = await createTopology();
  const serverState = mkdtempSync(join(tmpdir(), "kp-cluster-state-"));
  chownSync(serverState, nobody.uid, nobody.gid);
  const stack = await startKnockport(topo, {
    repoRoot: REPO_ROOT,
    config: cfg,
    // the sync's access: the admin and events sockets' group, never root
    helperArgs: ["--admin-socket-group", SYNC_USER.group, "--events-socket-group", SYNC_USER.group, ...extraHelperArgs],
    serverArgs: ["--state-dir", serverState],
  });
  const folder = join(stack.dir, "2fa");
  mkdirSync(folder, { mode: 0o750 });
  chownSync(folder, 0, nobody.gid);
  const file = join(folder, `${twoFactorFileId(ssh.accessKeysHttp[1]!)}.json`);
  writeFileSync(file, JSON.stringify({ secret: secretBase32 }), { mode: 0o640 });
  chownSync(file, 0, nobody.gid);
  const g: Gateway = { name, topo, stack, sync: undefined, serverState };
  await startSync(g);
  return g;
}

const SRV = "198.51.100.1";
const step1 = (g: Gateway, from: HostName, key = 0, token?: string): ReturnType<typeof knock> =>
  knock(g.topo, from, {
    step: 1,
    url: knockUrl("http", SRV, cfg.httpPort, cfg.httpPostPath),
    body: formBody({ app: ssh.name, access_key: ssh.accessKeysHttp[key]!, ...(token ? { token } : {}) }),
  });
const step2 = (g: Gateway, from: HostName, key = 0): ReturnType<typeof knock> =>
  knock(g.topo, from, { step: 2, url: knockUrl("https", SRV, cfg.httpsPort, cfg.httpsPostPath), body: formBody({ app: ssh.name, access_key: ssh.accessKeysHttps[key]! }) });
const sshState = (g: Gateway, from: HostName): Promise<"open" | "closed"> => probeTcp(g.topo, from, SRV, ssh.port, 400);
const httpsState = (g: Gateway, from: HostName): Promise<"open" | "closed"> => probeTcpConnect(g.topo, from, SRV, cfg.httpsPort, 400);

async function until(what: string, check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}
/** pino's `time` of the last line of `p` matching `re`. */
function timeOf(p: ManagedProcess, re: RegExp): number | undefined {
  const line = [...p.lines].reverse().find((l) => re.test(l.line));
  return line === undefined ? undefined : (JSON.parse(line.line) as { time: number }).time;
}
/** The store's own answer (redis-cli, not the code under test): is this field in the leases hash? */
function storeHas(field: string): boolean {
  const r = spawnSync("redis-cli", ["-s", redis.socket, "HEXISTS", `${cfg.cluster!.keyPrefix}:leases`, field], { encoding: "utf8", timeout: 5000 });
  return r.stdout.trim() === "1";
}
async function leasesOf(g: Gateway, ip: string): Promise<{ step: number; remainingSeconds: number; expiresAt: string }[]> {
  return (await g.stack.status()).filter((l) => l.ip === ip && l.app === ssh.name);
}

beforeAll(async () => {
  cleanupStaleTopologies();
  redis = await startTestRedis(["--unixsocketperm", "777"]);
  chmodSync(dirname(redis.socket), 0o755);
  cfg = { ...exampleConfig({ interfaceExt: "ext0", duration: DURATION_S, step2HttpsDuration: 4, rateLimitPerMinute: 6, httpsConnectionLimit: { perMinute: 10_000, burst: 10_000 } }), cluster: { url: redis.url, keyPrefix: "e2e" } };
  ssh = cfg.apps.find((x) => x.name === "ssh")!;
  a = await gateway("A");
  b = await gateway("B");
}, 120_000);
afterAll(async () => {
  // KNOCKPORT_E2E_CLUSTER_LOGS=/tmp/cl keeps the servers' and syncs' logs (fan-out timings: "step 2 ok" → "cluster.lease.applied")
  if (process.env.KNOCKPORT_E2E_CLUSTER_LOGS) {
    for (const g of [a, b]) for (const p of [g?.stack.server, g?.sync]) if (p) writeFileSync(`${process.env.KNOCKPORT_E2E_CLUSTER_LOGS}-${g!.name}-${p.label.replace(/ .*/, "")}.log`, p.lines.map((l) => l.line).join("\n"));
  }
  for (const g of [a, b]) {
    await g?.sync?.stop(2000);
    await g?.stack.stop();
    await g?.topo.destroy();
    if (g) rmSync(g.serverState, { recursive: true, force: true });
  }
  await redis?.stop();
});

describe("cluster mode, two gateways (nftables)", () => {
  it("1. a knock on A opens ssh on A and on B for the knocker only, with the same deadline", async () => {
    const cliIp = a.topo.addr.cli.v4;
    await step1(a, "cli");
    const r = await step2(a, "cli");
    expect(r.status, r.stderr).toBe(200);
    await until("B's grant", async () => (await leasesOf(b, cliIp)).some((l) => l.step === 2));
    expect(await sshState(a, "cli")).toBe("open");
    expect(await sshState(b, "cli")).toBe("open");
    expect(await sshState(a, "cli2")).toBe("closed");
    expect(await sshState(b, "cli2")).toBe("closed");
    const [la] = (await leasesOf(a, cliIp)).filter((l) => l.step === 2);
    const [lb] = (await leasesOf(b, cliIp)).filter((l) => l.step === 2);
    // B's grant is the time left in whole seconds, rounded down: it ends at most 1 s before A's, never after
    const early = Date.parse(la!.expiresAt) - Date.parse(lb!.expiresAt);
    expect(early).toBeGreaterThanOrEqual(0);
    expect(early).toBeLessThanOrEqual(1000);
    const knocked = timeOf(a.stack.server, /"msg":"step 2 ok"/);
    const applied = timeOf(b.sync!, /"event":"cluster.lease.applied"/);
    process.stdout.write(`fan-out: step 2 answered at A → granted at B: ${String(applied! - knocked!)} ms\n`);
  });

  it("2. the lease ends on time on both gateways (kernel timeouts, no message needed)", async () => {
    const cliIp = a.topo.addr.cli.v4;
    const [lb] = (await leasesOf(b, cliIp)).filter((l) => l.step === 2);
    await new Promise((r) => setTimeout(r, lb!.remainingSeconds * 1000 + 1200));
    expect(await sshState(a, "cli")).toBe("closed");
    expect(await sshState(b, "cli")).toBe("closed");
  });

  it("3. step 1 at A, step 2 at B opens (B opened its HTTPS port from A's window)", async () => {
    await step1(a, "cli2");
    await until("B's HTTPS port for cli2", async () => (await httpsState(b, "cli2")) === "open");
    const r = await step2(b, "cli2");
    expect(r.status, r.stderr).toBe(200);
    expect(await sshState(b, "cli2")).toBe("open");
    await until("A's grant", async () => (await sshState(a, "cli2")) === "open");
    expect(await sshState(b, "cli")).toBe("closed");
  });

  it("4. a TOTP code used at A is refused at B (sniffed replay from another address)", async () => {
    // cli2's HTTPS port at B is open from test 3's window until it ends
    await until("test 3's window to end", async () => (await httpsState(b, "cli2")) === "closed", 6000);
    const token = totpNow();
    await step1(a, "cli", 1, token);
    expect(await httpsState(a, "cli")).toBe("open");
    await step1(b, "cli2", 1, token);
    expect(await httpsState(b, "cli2")).toBe("closed");
    expect(b.stack.server.lines.some((l) => /"event":"knock.refused","step":1,.*"reason":"token-spent"/.test(l.line))).toBe(true);
  });

  it("5. the rate limit is shared: step-2 requests at A and B count together (IPv6, unused by the other tests)", async () => {
    const srv6 = a.topo.addr.srv.v6;
    await knock(a.topo, "cli", { step: 1, url: knockUrl("http", srv6, cfg.httpPort, cfg.httpPostPath), body: formBody({ app: ssh.name, access_key: ssh.accessKeysHttp[0]! }) });
    await until("B's HTTPS port over IPv6", async () => (await probeTcpConnect(b.topo, "cli", srv6, cfg.httpsPort, 400)) === "open");
    const statuses: (number | undefined)[] = [];
    for (let i = 0; i < 8; i += 1) {
      const g = i % 2 === 0 ? a : b;
      const r = await knock(g.topo, "cli", { step: 2, url: knockUrl("https", srv6, cfg.httpsPort, cfg.httpsPostPath), body: formBody({ app: ssh.name, access_key: "wrong-key-0123456789" }) });
      statuses.push(r.status);
    }
    // 6 per minute across both gateways; each gateway alone would have answered all 4 of its own with 403
    expect(statuses).toEqual([403, 403, 403, 403, 403, 403, 429, 429]);
  });

  it("6. garbage in the store opens nothing; a far deadline is clamped to the app's duration", async () => {
    const raw = `${cfg.cluster!.keyPrefix}:events`;
    const { connectStore } = await import("../../packages/cluster-store/src/index.js");
    const { clusterFromRaw } = await import("../../packages/config/src/index.js");
    const conn = connectStore(clusterFromRaw({ url: redis.url, key_prefix: "e2e" }, (p) => p, () => undefined)!, { queueWhileDisconnected: true });
    try {
      await conn.publish(raw, JSON.stringify({ kind: "lease", app: ssh.name, ip: "198.51.100.11", deadline: "never" }));
      await conn.publish(raw, JSON.stringify({ kind: "lease", app: "nope", ip: "198.51.100.11", deadline: Date.now() + 60_000 }));
      await conn.publish(raw, JSON.stringify({ kind: "lease", app: ssh.name, ip: "198.51.100.11", deadline: Date.now() + 86_400_000 }));
      await until("the clamped grant", async () => (await leasesOf(b, "198.51.100.11")).length > 0);
      const [l] = await leasesOf(b, "198.51.100.11");
      expect(l!.remainingSeconds).toBeLessThanOrEqual(DURATION_S);
    } finally {
      conn.disconnect();
    }
  });

  it("7. a gateway whose sync was down catches up on start: live leases applied, ended ones not", async () => {
    await b.sync!.stop(2000);
    await step1(a, "cli");
    expect((await step2(a, "cli")).status).toBe(200);
    expect(await sshState(b, "cli")).toBe("closed");
    await startSync(b);
    expect(await sshState(b, "cli")).toBe("open");
    await new Promise((r) => setTimeout(r, DURATION_S * 1000 + 1200));
    await b.sync!.stop(2000);
    await startSync(b);
    expect(timeOf(b.sync!, /"event":"cluster.catch-up"/)).toBeDefined();
    expect(b.sync!.lines.some((l) => /"event":"cluster.catch-up".*"applied":0/.test(l.line))).toBe(true);
    expect(await sshState(b, "cli")).toBe("closed");
  });

  it("8. store killed and restarted empty: knocks open nothing meanwhile (503 on the visible step 2); after: they work again, and A's lease from before is back in the store", async () => {
    const cli2Ip = a.topo.addr.cli2.v4;
    await step1(a, "cli2");
    expect((await step2(a, "cli2")).status).toBe(200);
    await until("B's grant for cli2", async () => (await sshState(b, "cli2")) === "open");
    expect(storeHas(`ssh ${cli2Ip}`)).toBe(true);
    await step1(a, "cli");
    await until("B's HTTPS port", async () => (await httpsState(b, "cli")) === "open");
    await redis.down();
    const r = await step2(b, "cli");
    expect(r.status).toBe(503);
    expect(await sshState(b, "cli")).toBe("closed");
    await redis.up();
    await until("the server's reconnect", async () => b.stack.server.lines.some((l) => /cluster.store.ready/.test(l.line) && (JSON.parse(l.line) as { time: number }).time > Date.now() - 5000), 8000);
    await step1(b, "cli");
    expect((await step2(b, "cli")).status).toBe(200);
    await until("A's grant after the restart", async () => (await sshState(a, "cli")) === "open", 8000);
    // the restarted store began empty; A's sync put its live knocked lease back when it caught up
    expect(storeHas(`ssh ${cli2Ip}`)).toBe(true);
    expect(a.sync!.lines.some((l) => /"event":"cluster.catch-up".*"republished":[1-9]/.test(l.line))).toBe(true);
  });

  it("9. a revoke at B (knockport revoke) closes the lease on A too", async () => {
    const cliIp = a.topo.addr.cli.v4;
    await step1(a, "cli");
    expect((await step2(a, "cli")).status).toBe(200);
    await until("B's grant", async () => (await sshState(b, "cli")) === "open");
    const r = await b.stack.cli(["revoke", "--app", ssh.name, "--ip", cliIp, "--admin-socket", b.stack.adminSocketPath]);
    expect(r.exitCode, r.stderr).toBe(0);
    await until("A's close", async () => (await sshState(a, "cli")) === "closed");
    expect(await sshState(b, "cli")).toBe("closed");
    expect(a.sync!.lines.some((l) => /"event":"cluster.lease.revoked"/.test(l.line))).toBe(true);
  });

  it("10. A stopped: B's lease keeps working and ends on time", async () => {
    await step1(a, "cli2");
    expect((await step2(a, "cli2")).status).toBe(200);
    await until("B's grant", async () => (await sshState(b, "cli2")) === "open");
    await a.sync!.stop(2000);
    await a.stack.stop();
    expect(await sshState(b, "cli2")).toBe("open");
    await new Promise((r) => setTimeout(r, DURATION_S * 1000 + 1200));
    expect(await sshState(b, "cli2")).toBe("closed");
  });

  it("11. a clean stop of A with --service-rule-cleanup-on-shutdown ends A's leases only: B keeps the lease open", async () => {
    await a.topo.destroy();
    rmSync(a.serverState, { recursive: true, force: true });
    a = await gateway("A", ["--service-rule-cleanup-on-shutdown"]);
    await step1(b, "cli");
    expect((await step2(b, "cli")).status).toBe(200);
    await until("A's grant", async () => (await sshState(a, "cli")) === "open");
    a.stack.helper.signal("SIGTERM");
    const exit = await a.stack.helper.exited;
    expect(a.stack.helper.lines.some((l) => /"event":"leases.revoked_on_shutdown".*"revoked":[1-9]/.test(l.line))).toBe(true);
    expect(exit.exitCode).toBe(0);
    // the cleanup closed A's element (A's table and its drops stay)
    expect(await sshState(a, "cli")).toBe("closed");
    await new Promise((r) => setTimeout(r, 1000));
    // no revoke went out: the lease is still in the store and still open on B
    expect(storeHas(`ssh ${a.topo.addr.cli.v4}`)).toBe(true);
    expect(await sshState(b, "cli")).toBe("open");
  });
});
