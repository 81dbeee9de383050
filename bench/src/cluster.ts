/**
 * The cluster row of `pnpm bench` (`--only cluster`): a knock on gateway A, until the service port is
 * open on gateway B. Two topologies (each srv its own helper, server and knockport-cluster-sync, as
 * the deployment runs them), one real redis-server on a Unix socket in a directory both reach; the
 * same client addresses at both, as behind round-robin DNS. Measured with 1 live lease and with
 * 10,000 (written to the store, then taken up by both gateways' syncs on their start: the path a
 * gateway joining the cluster takes).
 */
import { spawnSync } from "node:child_process";
import { chmodSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createTopology, startKnockport, startTestRedis, type FirewallKind, type KnockportStack, type ManagedProcess, type TestRedis, type Topology } from "@knockport/testbed";
import { REPO, TOOLS, benchConfig, knockJob, load1, log, runTool } from "./context.js";
import { formatSummary, summarize, type Summary } from "./stats.js";

const SYNC_USER = { user: "daemon", group: "daemon" };
const KEY_PREFIX = "bench";
const READY_MS = 60_000;
const METHOD =
  "step 2 sent at A (in A's cli) → the first of new connects every 1 ms from the same address to B's service port (in B's cli) that succeeds; epoch ms across the two probes; each knock from a new address, 3 warm-up knocks per size";

interface Gateway {
  topo: Topology;
  stack: KnockportStack;
  sync: ManagedProcess;
}

interface Run {
  ip: string;
  answerMs?: number;
  openAMs?: number;
  openBMs?: number;
  /** Epoch ms of the step-2 send. */
  sentAt?: number;
  error?: string;
}

/** pino's `time` (epoch ms) of the last line of `p` about `ip` whose event is `event` (and step 2, for the helper's). */
function loggedAt(p: ManagedProcess, event: string, ip: string): number | undefined {
  for (let i = p.lines.length - 1; i >= 0; i -= 1) {
    const line = p.lines[i]!.line;
    if (!line.includes(`"ip":"${ip}"`) || !line.includes(`"event":"${event}"`)) continue;
    const doc = JSON.parse(line) as { time: number; step?: number };
    if (doc.step === undefined || doc.step === 2) return doc.time;
  }
  return undefined;
}

/**
 * Where the time goes, from the daemons' own log lines (pino's `time`, whole ms, the same clock as the
 * probes'): from the step-2 send to A's helper committing the lease (kernel and journal; its watch event
 * goes out then), to B's helper committing its grant, to B's sync having the grant's answer.
 */
function hops(a: Gateway, b: Gateway, runs: readonly Run[]): Record<string, Summary> {
  const out: Record<string, number[]> = { aCommitted: [], bCommitted: [], bSyncAnswered: [], fanOut: [] };
  for (const r of runs) {
    if (r.sentAt === undefined) continue;
    const aAt = loggedAt(a.stack.helper, "lease.opened", r.ip);
    const bAt = loggedAt(b.stack.helper, "lease.opened", r.ip);
    const syncAt = loggedAt(b.sync, "cluster.lease.applied", r.ip);
    if (aAt === undefined || bAt === undefined || syncAt === undefined) continue;
    out.aCommitted!.push(aAt - r.sentAt);
    out.bCommitted!.push(bAt - r.sentAt);
    out.bSyncAnswered!.push(syncAt - r.sentAt);
    out.fanOut!.push(bAt - aAt);
  }
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, summarize(v)]));
}

function startSync(g: Gateway): ManagedProcess {
  const argv = [join(REPO, "bin/knockport-cluster-sync"), "-c", g.stack.configPath, "--admin-socket", g.stack.adminSocketPath, "--events-socket", g.stack.eventsSocketPath];
  return g.topo.spawn("srv", process.execPath, argv, { label: "knockport-cluster-sync", runAs: SYNC_USER });
}

async function gateway(firewall: FirewallKind, redisUrl: string): Promise<Gateway> {
  const topo = await createTopology();
  const config = { ...benchConfig(topo, undefined), cluster: { url: redisUrl, keyPrefix: KEY_PREFIX } };
  const stack = await startKnockport(topo, {
    repoRoot: REPO,
    config,
    firewall,
    // the sync's access: the admin and events sockets' group, never root
    helperArgs: ["--admin-socket-group", SYNC_USER.group, "--events-socket-group", SYNC_USER.group],
  });
  const g: Gateway = { topo, stack, sync: undefined as unknown as ManagedProcess };
  g.sync = startSync(g);
  await g.sync.waitForLine(/"event":"cluster.catch-up"/, READY_MS);
  return g;
}

/** The same fresh client addresses on A's and B's cli (so every knock starts from a closed port on both). */
async function addSources(gs: readonly Gateway[], first: number, count: number): Promise<string[]> {
  const ips = Array.from({ length: count }, (_, i) => `198.51.100.${first + i}`);
  if (first + count > 250) throw new Error("out of source addresses in 198.51.100.0/24");
  for (const g of gs) {
    const res = await g.topo.exec("cli", "ip", ["-batch", "-"], { input: ips.map((ip) => `addr add ${ip}/24 dev eth0\n`).join(""), timeoutMs: 30_000 });
    if (res.exitCode !== 0) throw new Error(`ip -batch failed: ${res.stderr}`);
  }
  return ips;
}

async function knockAtoB(a: Gateway, b: Gateway, socketPath: string, ips: string[]): Promise<{ atB: Summary; atA: Summary; answer: Summary; hops: Record<string, Summary>; errors: string[]; load: number[] }> {
  const job = knockJob({ stack: a.stack, srvIp: a.topo.addr.srv.v4 }, ips, { role: "knock", socketPath });
  const loadBefore = load1();
  const { runs } = (await runTool(a, "cli", "cluster-probe.mjs", job, 30_000 + ips.length * 10_000)) as { runs: Run[] };
  const ok = runs.filter((r) => r.openBMs !== undefined);
  return {
    atB: summarize(ok.map((r) => r.openBMs!)),
    atA: summarize(ok.map((r) => r.openAMs!)),
    answer: summarize(ok.map((r) => r.answerMs!)),
    hops: hops(a, b, ok),
    errors: runs.flatMap((r) => (r.error ? [r.error] : [])),
    load: [loadBefore, load1()],
  };
}

/** `count` live leases of app 0 written to the store's hash in one redis-cli pipe (what knocks elsewhere leave there). */
function storeLeases(socket: string, app: string, count: number, deadline: number): void {
  const resp = (args: string[]): string => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`;
  let input = "";
  for (let i = 0; i < count; i += 1) {
    // distinct addresses in the benchmarking range 198.18.0.0/15, none ending in .0
    input += resp(["HSET", `${KEY_PREFIX}:leases`, `${app} 198.18.${Math.floor(i / 250)}.${(i % 250) + 1}`, JSON.stringify({ deadline })]);
  }
  const res = spawnSync("redis-cli", ["-s", socket, "--pipe"], { input, encoding: "utf8", timeout: 60_000 });
  if (res.status !== 0 || !/errors: 0, replies: \d+/.test(res.stdout)) throw new Error(`redis-cli --pipe failed: ${res.stdout}${res.stderr}`);
}

export async function runCluster(firewall: FirewallKind, opts: { runs: number; leases: number }): Promise<Record<string, unknown>> {
  log(`\n== cluster (${firewall}): knock on A → service open on B ==`);
  let redis: TestRedis | undefined;
  const gateways: Gateway[] = [];
  let watcher: ManagedProcess | undefined;
  try {
    // the syncs run as SYNC_USER, not as this user: the socket and its directory open to them
    redis = await startTestRedis(["--unixsocketperm", "777"]);
    const dir = dirname(redis.socket);
    chmodSync(dir, 0o755);
    const a = await gateway(firewall, redis.url);
    gateways.push(a);
    const b = await gateway(firewall, redis.url);
    gateways.push(b);
    // the knock probe (A's cli) hands the watch probe (B's cli) each address here; removed with the store's directory
    const probeSocket = join(dir, "probe.sock");
    const watchJob = { role: "watch", socketPath: probeSocket, srvIp: b.topo.addr.srv.v4, servicePort: b.stack.config.apps[0]!.port };
    watcher = b.topo.spawn("cli", process.execPath, [join(TOOLS, "cluster-probe.mjs"), JSON.stringify(watchJob)], { label: "cluster-probe watch" });
    await watcher.waitForLine(/^watching$/, 10_000);

    let next = 30;
    const measure = async (what: string): Promise<Awaited<ReturnType<typeof knockAtoB>>> => {
      await knockAtoB(a, b, probeSocket, await addSources(gateways, next, 3)); // warm-up: first knocks run cold code
      next += 3;
      const r = await knockAtoB(a, b, probeSocket, await addSources(gateways, next, opts.runs));
      next += opts.runs;
      log(`  ${what}: open on B after step 2 at A: ${formatSummary(r.atB)} (errors ${r.errors.length}; load ${r.load.join(" → ")})`);
      log(`  ${what}: open on A:                      ${formatSummary(r.atA)}; step-2 answer ${formatSummary(r.answer)}`);
      for (const [hop, sum] of Object.entries(r.hops)) log(`    ${hop}: ${formatSummary(sum)}`);
      return r;
    };
    const one = await measure("1 live lease");
    if (opts.leases === 0) return { method: METHOD, oneLease: { openOnB: one.atB, openOnA: one.atA, step2Answer: one.answer, hops: one.hops, errors: one.errors, loadAverage1m: one.load } };

    log(`  writing ${opts.leases} leases to the store; restarting both syncs (catch-up) ...`);
    const app = a.stack.config.apps[0]!;
    storeLeases(redis.socket, app.name, opts.leases, Date.now() + (app.duration - 10) * 1000);
    const catchUpMs: number[] = [];
    for (const g of gateways) {
      await g.sync.stop(5000);
      const started = Date.now();
      g.sync = startSync(g);
      const line = await g.sync.waitForLine(/"event":"cluster.catch-up"/, 600_000);
      catchUpMs.push(Date.now() - started);
      const applied = (JSON.parse(line) as { applied: number }).applied;
      if (applied < opts.leases) throw new Error(`catch-up applied ${applied} of ${opts.leases} leases`);
    }
    const listed = [(await a.stack.status()).length, (await b.stack.status()).length];
    log(`  catch-up of ${opts.leases} leases: ${catchUpMs.join(" / ")} ms (A / B); leases listed ${listed.join(" / ")}`);
    const many = await measure(`${opts.leases} live leases`);
    return {
      method: METHOD,
      oneLease: { openOnB: one.atB, openOnA: one.atA, step2Answer: one.answer, hops: one.hops, errors: one.errors, loadAverage1m: one.load },
      manyLeases: { leases: opts.leases, openOnB: many.atB, openOnA: many.atA, step2Answer: many.answer, hops: many.hops, errors: many.errors, loadAverage1m: many.load, catchUpMs, listed },
    };
  } finally {
    // KNOCKPORT_BENCH_CLUSTER_LOGS=DIR keeps every process's log (per-hop timings from pino's `time`)
    const logDir = process.env.KNOCKPORT_BENCH_CLUSTER_LOGS;
    if (logDir !== undefined) {
      gateways.forEach((g, i) => {
        for (const p of [g.stack.helper, g.stack.server, g.sync]) writeFileSync(join(logDir, `${"AB"[i]!}-${p.label.replace(/ .*/, "")}.log`), p.lines.map((l) => l.line).join("\n"));
      });
    }
    await watcher?.stop(1000);
    for (const g of gateways) {
      await g.sync.stop(2000);
      await g.stack.stop();
      await g.topo.destroy();
    }
    await redis?.stop();
  }
}
