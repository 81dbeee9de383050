/**
 * `pnpm bench`: KnockPort's speed and scale on the real kernel, in throwaway network namespaces.
 * Prints a table and writes bench/results/<timestamp>.json (and latest.json). Not a test: it
 * asserts nothing; every figure comes with its method, run count and spread.
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { HelperClient } from "@knockport/helper-client";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { cleanupStaleTopologies, createTopology, startKnockport, type FirewallKind, type KnockportStack } from "@knockport/testbed";
import { REPO, TOOLS, addSources, benchConfig, knockJob, load1, log, rssMb, runTool, type Context } from "./context.js";
import { runCluster } from "./cluster.js";
import { runFloor } from "./floor.js";
import { formatSummary, summarize, type Summary } from "./stats.js";

/** VyOS runs only simulated here (fake vbash), so its figures would say nothing about VyOS. */
const BENCH_FIREWALLS: readonly FirewallKind[] = ["nftables", "iptables-nft", "iptables-legacy"];

interface KnockRun {
  ip: string;
  step1ToHttpsMs?: number;
  openMs?: number;
  answerMs?: number;
  answerEpochMs?: number;
  error?: string;
}

async function knockToOpen(ctx: Context, runs: number): Promise<{ runs: KnockRun[]; open: Summary; answer: Summary; step1: Summary; errors: number }> {
  const ips = await addSources(ctx, runs);
  const out = (await runTool(ctx, "cli", "knock-to-open.mjs", knockJob(ctx, ips), 120_000)) as { runs: KnockRun[] };
  const ok = out.runs.filter((r) => r.openMs !== undefined);
  return {
    runs: out.runs,
    open: summarize(ok.map((r) => r.openMs ?? 0)),
    answer: summarize(ok.map((r) => r.answerMs ?? 0)),
    step1: summarize(ok.map((r) => r.step1ToHttpsMs ?? 0)),
    errors: out.runs.length - ok.length,
  };
}

async function expiryPrecision(ctx: Context, runs: number, killHelper: boolean): Promise<{ lateMs: Summary; errors: number }> {
  const duration = ctx.stack.config.apps[1]?.duration ?? 2;
  const ips = await addSources(ctx, runs);
  // the second app has a short duration; knock it, then watch each address's port close
  const app = ctx.stack.config.apps[1];
  if (!app) throw new Error("no short app");
  const job = {
    ...knockJob(ctx, ips),
    app: app.name,
    httpKey: app.accessKeysHttp[0],
    httpsKey: app.accessKeysHttps[0],
    servicePort: app.port,
  };
  const knocked = (await runTool(ctx, "cli", "knock-to-open.mjs", job, 120_000)) as { runs: KnockRun[] };
  if (killHelper) ctx.helper.signal("SIGKILL");
  const watched = (await runTool(ctx, "cli", "knock-to-open.mjs", { ...job, mode: "watch", giveUpMs: (duration + 5) * 1000 }, 60_000)) as {
    results: { ip: string; firstFailEpoch?: number }[];
  };
  const late: number[] = [];
  let errors = 0;
  for (const r of knocked.runs) {
    const w = watched.results.find((x) => x.ip === r.ip);
    if (r.answerEpochMs === undefined || w?.firstFailEpoch === undefined) {
      errors += 1;
      continue;
    }
    // The lease began between sending step 2 and its answer: measure from the answer (the later bound).
    late.push(w.firstFailEpoch - (r.answerEpochMs + duration * 1000));
  }
  return { lateMs: summarize(late), errors };
}

const CLOCK_TICKS = 100; // USER_HZ on Linux
const CORES = Math.max(1, availableParallelism());
const round2 = (x: number): number => Math.round(x * 100) / 100;

/** CPU seconds (user + system) a process has used so far; 0 when it is gone. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS; // utime, stime
  } catch {
    return 0;
  }
}

/** All cores' ticks so far, and those not idle (from /proc/stat). */
function machineCpu(): { totalTicks: number; busyTicks: number } {
  const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  const total = cpu.reduce((x, y) => x + y, 0);
  return { totalTicks: total, busyTicks: total - (cpu[3] ?? 0) - (cpu[4] ?? 0) };
}

async function ruleCount(ctx: Context): Promise<number> {
  if (ctx.firewall !== "nftables") {
    const flavour = ctx.firewall === "iptables-legacy" ? "legacy" : "nft";
    let count = 0;
    for (const bin of [`iptables-${flavour}-save`, `ip6tables-${flavour}-save`]) {
      const res = await ctx.topo.exec("srv", bin, [], { timeoutMs: 60_000 });
      count += res.stdout.split("\n").filter((l) => l.startsWith("-A KNOCKPORT")).length;
    }
    return count;
  }
  const res = await ctx.topo.exec("srv", "nft", ["-a", "list", "table", "inet", "knockport"], { timeoutMs: 60_000 });
  // rules carry "# handle N" after a statement; set and chain headers do not end in a verdict/statement line
  return res.stdout.split("\n").filter((l) => /^\t\t\S/.test(l) && /# handle \d+$/.test(l) && !/^\t\t(type|flags|elements|comment|policy)\b/.test(l)).length;
}

/** The i-th of up to 131,000 distinct addresses in the benchmarking range 198.18.0.0/15, none ending in .0. */
export function benchLeaseAddress(i: number): string {
  const block = Math.floor(i / 250);
  return `198.${18 + Math.floor(block / 256)}.${block % 256}.${(i % 250) + 1}`;
}
const MAX_SCALE_LEASES = 512 * 250;

/**
 * N simultaneous leases (--scale-leases, default 10,000): written to the helper's journal, restored by a restarted helper
 * (time to reconcile), then knock-to-open, rule count and memory at that size.
 */
/**
 * Grants `leases` leases through the helper's admin socket (as `knockport grant` does), 2,000 calls at a
 * time over one connection (the helper batches them into transactions); ms until the last is in.
 */
async function grantLeases(ctx: Context, app: string, leases: number): Promise<number> {
  const client = new HelperClient({ socketPath: ctx.stack.adminSocketPath, timeoutMs: 120_000 });
  const started = Date.now();
  try {
    for (let i = 0; i < leases; i += GRANT_BATCH) {
      const batch = Array.from({ length: Math.min(GRANT_BATCH, leases - i) }, (_, j) => client.call("grant", { app, ip: benchLeaseAddress(i + j) }));
      await Promise.all(batch);
    }
  } finally {
    client.close();
  }
  return Date.now() - started;
}
const GRANT_BATCH = 2000;

async function scale(ctx: Context, leases: number, runs: number): Promise<Record<string, unknown>> {
  const app = ctx.stack.config.apps[0]!;
  const before = { rules: await ruleCount(ctx), helperRssMb: rssMb(ctx.helper.pid), serverRssMb: rssMb(ctx.stack.server.pid) };
  // The kernel's timed set elements are the lease book: a restarted helper reads them back.
  const grantMs = await grantLeases(ctx, app.name, leases);
  ctx.helper.signal("SIGTERM");
  await ctx.helper.exited;
  const started = Date.now();
  const helper = ctx.topo.spawn("srv", process.execPath, [...ctx.stack.helperArgv], { label: "knockport-helper (scale)" });
  await helper.waitForLine(/"msg":"helper ready"/, 120_000);
  const restoreMs = Date.now() - started;
  const status = await ctx.stack.status();
  await knockToOpen(ctx, 5); // warm-up: the restarted helper's first knocks run cold code
  const k = await knockToOpen(ctx, runs);
  const after = { rules: await ruleCount(ctx), helperRssMb: rssMb(helper.pid), serverRssMb: rssMb(ctx.stack.server.pid) };
  ctx.helper = helper; // keeps running for the measurements after this one
  return {
    method: `${leases} leases granted through the admin socket, helper restarted (it reads them back from the kernel); then knock-to-open (${runs} knocks) at that size`,
    grantMs,
    leasesRestored: status.length,
    helperStartWithLeasesMs: restoreMs,
    knockToOpenAtScale: k.open,
    step2AnswerAtScale: k.answer,
    errors: k.errors,
    errorSamples: k.runs.flatMap((r) => (r.error ? [r.error] : [])).slice(0, 5),
    rulesBefore: before.rules,
    rulesAfter: after.rules,
    rssBefore: before,
    rssAfter: after,
  };
}

async function flood(
  ctx: Context,
  host: "cli" | "cli2",
  job: Record<string, unknown>,
  seconds: number,
): Promise<{ sent: number; answered: Record<string, number>; dropped: number; errors: number; seconds: number }> {
  return (await runTool(ctx, host, "flood.mjs", { ...job, seconds }, (seconds + 30) * 1000)) as {
    sent: number;
    answered: Record<string, number>;
    dropped: number;
    errors: number;
    seconds: number;
  };
}

/** Every measurement `want` selects, against one firewall backend, in a topology of its own. */
/**
 * `--profile DIR`: node's CPU profiler in the helper and the server, one .cpuprofile per process
 * (written when it exits) under DIR/<backend>/{helper,server}; summarise with bench/tools/profile-top.mjs.
 */
function profileOptions(profileDir: string | undefined, firewall: FirewallKind): { helper?: string[]; server?: string[] } | undefined {
  if (profileDir === undefined) return undefined;
  const out: { helper: string[]; server: string[] } = { helper: [], server: [] };
  for (const who of ["helper", "server"] as const) {
    const dir = join(resolve(profileDir), firewall, who);
    mkdirSync(dir, { recursive: true });
    // the server runs as nobody: its profile directory must be writable by it
    if (who === "server") chmodSync(dir, 0o1777);
    out[who] = ["--cpu-prof", `--cpu-prof-dir=${dir}`];
  }
  return out;
}

interface ExtraNodeOptions {
  helper: readonly string[];
  server: readonly string[];
}

/** `--helper-node-options` / `--server-node-options`: node flags after the units' own, for an A/B of V8 flags. */
function parseNodeOptions(flag: string, value: string | undefined): string[] {
  const options = (value ?? "").split(/\s+/).filter((o) => o !== "");
  if (options.some((o) => !/^--[a-z0-9][a-z0-9-]*(=[A-Za-z0-9._/-]+)?$/.test(o))) throw new Error(`${flag}: node flags such as "--lite-mode --max-old-space-size=64"`);
  return options;
}

function nodeOptionsFor(profileDir: string | undefined, firewall: FirewallKind, extra: ExtraNodeOptions): { helper?: string[]; server?: string[] } | undefined {
  const profile = profileOptions(profileDir, firewall);
  if (profile === undefined && extra.helper.length === 0 && extra.server.length === 0) return undefined;
  return { helper: [...extra.helper, ...(profile?.helper ?? [])], server: [...extra.server, ...(profile?.server ?? [])] };
}

async function runBackend(
  firewall: FirewallKind,
  runs: number,
  want: (name: string) => boolean,
  profileDir?: string,
  httpsConnectionLimit?: number,
  scaleLeases: readonly number[] = [10_000],
  extraNodeOptions: ExtraNodeOptions = { helper: [], server: [] },
): Promise<Record<string, unknown>> {
  log(`\n== ${firewall} ==`);
  const topo = await createTopology();
  const spec = benchConfig(topo, httpsConnectionLimit);
  let stack: KnockportStack | undefined;
  const results: Record<string, unknown> = {};
  try {
    const nodeOptions = nodeOptionsFor(profileDir, firewall, extraNodeOptions);
    stack = await startKnockport(topo, { repoRoot: REPO, config: spec, firewall, ...(nodeOptions ? { nodeOptions } : {}) });
    const ctx: Context = { topo, firewall, stack, helper: stack.helper, srvIp: topo.addr.srv.v4, nextSource: 30 };

    if (want("knock-to-open")) {
      log(`knock-to-open: ${runs} knocks, each from a fresh source address ...`);
      const k = await knockToOpen(ctx, runs);
      results.knockToOpen = {
        method: "connect poll every 1 ms from the step-2 send; each knock from a new address",
        ...k,
        runs: undefined,
        errorSamples: k.runs.flatMap((r) => (r.error ? [r.error] : [])).slice(0, 5),
      };
      log(`  service open after step 2: ${formatSummary(k.open)} (errors ${k.errors})`);
      log(`  step-2 answer:             ${formatSummary(k.answer)}`);
      log(`  HTTPS open after step 1:   ${formatSummary(k.step1)}`);
    }

    if (want("under-attack")) {
      log(`under attack: knock-to-open while cli2 sends invalid step-2 knocks at 1000/s ...`);
      const cfg = stack.config;
      const app = cfg.apps[0]!;
      // cli2 passes step 1 so the HTTPS port is open to it, then floods wrong step-2 keys
      await topo.exec("cli2", "curl", ["-s", "-m", "1", "-d", `app=${app.name}&access_key=${app.accessKeysHttp[0]}`, `http://${ctx.srvIp}:${cfg.httpPort}${cfg.httpPostPath}`], { timeoutMs: 5000 });
      const attackSeconds = 25;
      const cpuBefore = { server: cpuSeconds(ctx.stack.server.pid), helper: cpuSeconds(ctx.helper.pid), machine: machineCpu() };
      // An attacker does not wait for SYN retransmits: a connection not established within 100 ms
      // (the firewall dropped the SYN) is given up and counted as dropped.
      const attack = flood(
        ctx,
        "cli2",
        { url: `https://${ctx.srvIp}:${cfg.httpsPort}${cfg.httpsPostPath}`, body: `app=${app.name}&access_key=wrong-key-000000`, rate: 1000, concurrency: 64, connectTimeoutMs: 100 },
        attackSeconds,
      );
      await new Promise((r) => setTimeout(r, 2000));
      const k = await knockToOpen(ctx, Math.min(runs, 30));
      const a = await attack;
      const machine = machineCpu();
      const cpu = {
        seconds: (machine.totalTicks - cpuBefore.machine.totalTicks) / CLOCK_TICKS / CORES,
        serverCpuSeconds: round2(cpuSeconds(ctx.stack.server.pid) - cpuBefore.server),
        helperCpuSeconds: round2(cpuSeconds(ctx.helper.pid) - cpuBefore.helper),
        machineBusyFraction: round2((machine.busyTicks - cpuBefore.machine.busyTicks) / Math.max(1, machine.totalTicks - cpuBefore.machine.totalTicks)),
      };
      results.underAttack = {
        method:
          "as knock-to-open, while cli2 (knocked: in the HTTPS set) floods step 2 with wrong keys (target 1000/s, 64 connections, connect given up after 100 ms = dropped by the firewall); CPU: /proc over the attack, all cores",
        httpsConnectionLimit: cfg.httpsConnectionLimit ?? "KnockPort's default (60/minute, burst 20)",
        open: k.open,
        answer: k.answer,
        errors: k.errors,
        attack: a,
        cpu,
      };
      log(`  service open after step 2: ${formatSummary(k.open)} (errors ${k.errors})`);
      log(
        `  attack achieved ${(a.sent / a.seconds).toFixed(0)} attempts/s: dropped by the firewall ${a.dropped}, answered ${JSON.stringify(a.answered)}, other errors ${a.errors}`,
      );
      log(`  CPU during the attack: server ${cpu.serverCpuSeconds} s, helper ${cpu.helperCpuSeconds} s of ${cpu.seconds.toFixed(1)} s; machine ${(cpu.machineBusyFraction * 100).toFixed(0)}% busy`);
    }

    if (want("scale")) {
      const idleMedian = (results.knockToOpen as { open?: Summary } | undefined)?.open?.median;
      const sizes: Record<string, unknown> = {};
      for (const leases of scaleLeases) {
        log(`scale: ${leases} leases restored by a restarted helper, then knock-to-open at that size ...`);
        const sc = await scale(ctx, leases, Math.min(runs, 30));
        const open = sc.knockToOpenAtScale as Summary;
        sizes[String(leases)] = { ...sc, ratioToIdleMedian: idleMedian === undefined ? "knock-to-open not measured in this run" : round2(open.median / idleMedian) };
        log(`  helper restart with the leases: ${String(sc.helperStartWithLeasesMs)} ms; leases listed: ${String(sc.leasesRestored)}`);
        log(`  service open after step 2 at ${leases} leases: ${formatSummary(open)}${idleMedian === undefined ? "" : ` (${round2(open.median / idleMedian)}x idle)`}`);
        log(`  rules in the table: ${String(sc.rulesBefore)} before, ${String(sc.rulesAfter)} at ${leases} leases`);
        log(`  RSS (MB) before ${JSON.stringify(sc.rssBefore)}, at ${leases} ${JSON.stringify(sc.rssAfter)}`);
      }
      // one size: the shape older result files have
      results.scale = scaleLeases.length === 1 ? sizes[String(scaleLeases[0])] : sizes;
    }

    if (want("throughput")) {
      log("throughput: invalid knocks per second on each listener (new connection per request, 32 at a time, 8 s) ...");
      const cfg = stack.config;
      const app = cfg.apps[0]!;
      const body = `app=${app.name}&access_key=wrong-key-000000`;
      // from srv over loopback: the stealth firewall applies on ext0 only, so answers come back
      const run = async (url: string): Promise<unknown> => {
        const res = await topo.exec("srv", process.execPath, [join(TOOLS, "flood.mjs")], {
          input: JSON.stringify({ url, body, rate: 0, concurrency: 32, seconds: 8 }),
          timeoutMs: 60_000,
        });
        return JSON.parse(res.stdout) as unknown;
      };
      const http = (await run(`http://127.0.0.1:${cfg.httpPort}${cfg.httpPostPath}`)) as { sent: number; seconds: number; answered: Record<string, number> };
      const https = (await run(`https://127.0.0.1:${cfg.httpsPort}${cfg.httpsPostPath}`)) as { sent: number; seconds: number; answered: Record<string, number> };
      results.throughput = {
        method: "flood.mjs in srv over loopback, invalid key (403), a new TCP/TLS connection per request, concurrency 32, 8 s",
        http: { perSecond: Math.round(http.sent / http.seconds), answered: http.answered },
        https: { perSecond: Math.round(https.sent / https.seconds), answered: https.answered },
      };
      log(`  step 1 (HTTP):  ${Math.round(http.sent / http.seconds)} req/s ${JSON.stringify(http.answered)}`);
      log(`  step 2 (HTTPS): ${Math.round(https.sent / https.seconds)} req/s ${JSON.stringify(https.answered)}`);
    }

    if (want("expiry")) {
      const n = Math.min(runs, 20);
      log(`expiry precision: ${n} leases of 2 s, helper alive${want("scale") ? ` (${String(scaleLeases.at(-1))} other leases in the table)` : ""} ...`);
      const alive = await expiryPrecision(ctx, n, false);
      log(`  closed after deadline: ${formatSummary(alive.lateMs)} (errors ${alive.errors})`);
      log(`expiry precision: ${n} leases of 2 s, helper killed (SIGKILL) right after the knocks ...`);
      const killed = await expiryPrecision(ctx, n, true);
      log(`  closed after deadline: ${formatSummary(killed.lateMs)} (errors ${killed.errors})`);
      results.expiry = {
        method: "connect attempts every 10 ms (150 ms timeout); close = start of the first attempt that fails; deadline = step-2 answer + duration (the lease began up to one answer time earlier)",
        helperAlive: alive,
        helperKilled: killed,
      };
    }
  } finally {
    await stack?.stop();
    await topo.destroy();
  }
  return results;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: "string", default: "50" },
      only: { type: "string" },
      firewall: { type: "string", default: "nftables,iptables-nft,iptables-legacy" },
      profile: { type: "string" },
      // node flags for the helper / the server after the units' own (an A/B of V8 flags)
      "helper-node-options": { type: "string" },
      "server-node-options": { type: "string" },
      // lease counts of the scale measurement, one helper restart each, in this order
      "scale-leases": { type: "string", default: "10000" },
      // cold starts in the floor measurement
      "start-runs": { type: "string", default: "5" },
      // live leases of the cluster measurement's second half (0: only the one-lease half)
      "cluster-leases": { type: "string", default: "10000" },
      // global.https_connection_limit_per_minute for the bench's config (default: not written, so 60; 0 = off, for an A/B)
      "https-connection-limit": { type: "string" },
    },
  });
  const limitArg = values["https-connection-limit"];
  const httpsConnectionLimit = limitArg === undefined ? undefined : Number(limitArg);
  if (httpsConnectionLimit !== undefined && !(Number.isInteger(httpsConnectionLimit) && httpsConnectionLimit >= 0 && httpsConnectionLimit <= 10_000)) {
    throw new Error("--https-connection-limit: an integer 0-10000 (0 = off)");
  }
  const extraNodeOptions: ExtraNodeOptions = {
    helper: parseNodeOptions("--helper-node-options", values["helper-node-options"]),
    server: parseNodeOptions("--server-node-options", values["server-node-options"]),
  };
  const scaleLeases = values["scale-leases"].split(",").map(Number);
  if (scaleLeases.some((n) => !(Number.isInteger(n) && n >= 1 && n <= MAX_SCALE_LEASES))) throw new Error(`--scale-leases: comma-separated integers 1-${MAX_SCALE_LEASES}`);
  const runs = Math.min(Math.max(Number(values.runs) || 50, 5), 100);
  const clusterLeases = Math.min(Math.max(Math.floor(Number(values["cluster-leases"])) || 0, 0), 50_000);
  const startRuns = Math.min(Math.max(Number(values["start-runs"]) || 5, 1), 20);
  const only = values.only ? new Set(values.only.split(",")) : undefined;
  const firewalls = values.firewall.split(",").filter((f): f is FirewallKind => (BENCH_FIREWALLS as readonly string[]).includes(f));
  if (firewalls.length === 0) throw new Error(`--firewall: use ${BENCH_FIREWALLS.join(", ")}`);

  await cleanupStaleTopologies();
  const results: Record<string, unknown> = {
    when: new Date().toISOString(),
    node: process.version,
    machine: `${CORES} cores, network namespaces on one kernel`,
    loadAverage1mAtStart: load1(),
    extraNodeOptions,
    command: `pnpm bench -- ${process.argv.slice(2).join(" ")}`.trim(),
    backends: {} as Record<string, unknown>,
  };
  for (const firewall of firewalls) {
    // the full set on the first backend; the others get the per-backend measurements
    const perBackend = firewall === firewalls[0] ? undefined : new Set(["floor", "knock-to-open", "scale", "expiry"]);
    const want = (name: string): boolean => (!only || only.has(name)) && (!perBackend || perBackend.has(name));
    const backend: Record<string, unknown> = {};
    if (want("floor")) {
      backend.floor = await runFloor(firewall, { runs: Math.min(runs, 60), concurrentRounds: 5, startRuns, httpsConnectionLimit, nodeOptions: nodeOptionsFor(values.profile, firewall, extraNodeOptions) });
    }
    if (want("cluster")) backend.cluster = await runCluster(firewall, { runs, leases: clusterLeases });
    const others = ["knock-to-open", "under-attack", "scale", "throughput", "expiry"];
    if (others.some(want)) Object.assign(backend, await runBackend(firewall, runs, want, values.profile, httpsConnectionLimit, scaleLeases, extraNodeOptions));
    (results.backends as Record<string, unknown>)[firewall] = backend;
  }
  const dir = join(REPO, "bench/results");
  mkdirSync(dir, { recursive: true });
  results.loadAverage1mAtEnd = load1();
  const text = `${JSON.stringify(results, null, 2)}\n`;
  writeFileSync(join(dir, `${String(results.when).replace(/[:.]/g, "-")}.json`), text);
  writeFileSync(join(dir, "latest.json"), text);
  log(`load average (1 min): ${String(results.loadAverage1mAtStart)} at the start, ${String(results.loadAverage1mAtEnd)} at the end`);
  log(`results written to bench/results/latest.json`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error)?.message ?? String(err)}\n`);
  process.exit(1);
});
