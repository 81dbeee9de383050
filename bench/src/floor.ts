/**
 * The floor row of `pnpm bench`: the same black-box measurements against a do-nothing Node HTTPS server
 * (bench/tools/floor-server.mjs: same certificate, same node options as the server's unit, same account,
 * same namespace) in the same run, and KnockPort's figures as ratios to it: the step-2 answer (curl's
 * time_total), 20 concurrent knockers, start until protected and listening, idle RSS per process.
 * In a topology of its own, so its source addresses do not eat into the other measurements'.
 */
import { join } from "node:path";
import { createTopology, startKnockport, unitNodeOptions, type FirewallKind, type KnockportStack, type ManagedProcess } from "@knockport/testbed";
import { REPO, TOOLS, addSources, benchConfig, knockJob, load1, log, rssMb, runTool, type Context } from "./context.js";
import { formatSummary, summarize, type Summary } from "./stats.js";

const FLOOR_PORT = 9443;
const READY_MS = 30_000;
/** The goals (#15); each is reported against the floor measured in the same run. */
const GOALS = { answerOverFloorMs: 1, concurrentLastOpenMs: 60, startBothMs: 600, rssAllMb: 90 } as const;

export interface FloorOptions {
  /** curl knocks (each with a floor request beside it). */
  runs: number;
  /** Rounds of 20 concurrent knockers. */
  concurrentRounds: number;
  /** Cold starts (firewall uninstalled before each). */
  startRuns: number;
  httpsConnectionLimit: number | undefined;
  /** `--profile`: node options for the helper and the server of the knock measurements (not the cold starts). */
  nodeOptions?: { helper?: string[]; server?: string[] } | undefined;
}

const ratio = (a: number, b: number): number => Math.round((a / b) * 100) / 100;
const spread = (s: Summary): string => `median ${s.median} (min ${s.min}, max ${s.max}, n=${s.n})`;

/** ms from `since` to the first line matching `re` (arrival time of the line). */
async function readyAfter(p: ManagedProcess, re: RegExp, since: number): Promise<number> {
  await p.waitForLine(re, READY_MS);
  const line = p.lines.find((l) => re.test(l.line));
  return (line?.at ?? Date.now()) - since;
}

interface Spawned {
  helper: ManagedProcess;
  server: ManagedProcess;
  floor: ManagedProcess;
}

function spawnFloor(ctx: Context): ManagedProcess {
  const { stack } = ctx;
  const argv = [...unitNodeOptions(REPO, "knockport-server.service"), join(TOOLS, "floor-server.mjs"), stack.certPath, stack.keyPath, String(FLOOR_PORT)];
  return ctx.topo.spawn("srv", process.execPath, argv, { label: "floor", runAs: stack.serverUser });
}
const spawnHelper = (ctx: Context): ManagedProcess => ctx.topo.spawn("srv", process.execPath, [...ctx.stack.helperArgv], { label: "knockport-helper (start-up)" });
const spawnServer = (ctx: Context): ManagedProcess =>
  ctx.topo.spawn("srv", process.execPath, [...ctx.stack.serverArgv], { label: "knockport-server (start-up)", runAs: ctx.stack.serverUser });

async function uninstallFirewall(stack: KnockportStack): Promise<void> {
  const res = await stack.firewallCommand("uninstall-firewall");
  if (res.exitCode !== 0) throw new Error(`knockport uninstall-firewall failed: ${res.stderr}`);
}

/**
 * Start-up, cold (no table, no leases): `each` = helper alone until "helper ready" (its firewall is in),
 * then the server alone until "server ready" (both listeners bound); `both` = both spawned at one
 * instant, as systemd starts them (Type=simple: the server right after the helper's exec), until
 * "server ready". The floor: spawn until "floor listening". Idle RSS: 3 s after the `each` start.
 */
async function startUp(ctx: Context, runs: number): Promise<Record<string, unknown>> {
  const helperMs: number[] = [];
  const serverMs: number[] = [];
  const eachMs: number[] = [];
  const bothMs: number[] = [];
  const floorMs: number[] = [];
  const rss = { helper: [] as number[], server: [] as number[], floor: [] as number[] };
  for (let i = 0; i < runs; i += 1) {
    await uninstallFirewall(ctx.stack);
    const t0 = Date.now();
    const run: Partial<Spawned> = { helper: spawnHelper(ctx) };
    try {
      const h = await readyAfter(run.helper!, /"msg":"helper ready"/, t0);
      const t1 = Date.now();
      run.server = spawnServer(ctx);
      const s = await readyAfter(run.server, /"msg":"server ready"/, t1);
      const t2 = Date.now();
      run.floor = spawnFloor(ctx);
      floorMs.push(await readyAfter(run.floor, /^floor listening$/, t2));
      helperMs.push(h);
      serverMs.push(s);
      eachMs.push(h + s);
      await new Promise((r) => setTimeout(r, 3000));
      for (const who of ["helper", "server", "floor"] as const) {
        const mb = rssMb(run[who]?.pid);
        if (mb !== undefined) rss[who].push(mb);
      }
    } finally {
      for (const p of [run.server, run.floor, run.helper]) await p?.stop(3000);
    }
    await uninstallFirewall(ctx.stack);
    const b0 = Date.now();
    const both = { helper: spawnHelper(ctx), server: spawnServer(ctx) };
    try {
      bothMs.push(await readyAfter(both.server, /"msg":"server ready"/, b0));
    } finally {
      for (const p of [both.server, both.helper]) await p.stop(3000);
    }
  }
  const all = rss.helper.map((h, i) => h + (rss.server[i] ?? Number.NaN));
  return {
    method: `${runs} cold starts (firewall uninstalled before each; spawn through ip netns exec, the server and the floor via setpriv as ${ctx.stack.serverUser.user}); ms from spawn to the ready line's arrival; RSS from /proc 3 s after the start, no knock yet`,
    helperMs: summarize(helperMs),
    serverMs: summarize(serverMs),
    eachMs: summarize(eachMs),
    bothMs: summarize(bothMs),
    floorMs: summarize(floorMs),
    rssMb: { helper: summarize(rss.helper), server: summarize(rss.server), allKnockport: summarize(all), floor: summarize(rss.floor), hooks: "not started: the bench's config has no hooks" },
  };
}

interface CurlRun {
  floorMs?: number;
  answerMs?: number;
  openAtAnswer?: boolean;
  floorError?: string;
  knockError?: string;
}

interface ConcurrentRound {
  knocks: { openMs?: number; answerMs?: number; error?: string }[];
  floor: { status: number; answerMs: number }[];
}

export async function runFloor(firewall: FirewallKind, opts: FloorOptions): Promise<Record<string, unknown>> {
  log(`\n== ${firewall}: floor (a do-nothing Node HTTPS server on port ${FLOOR_PORT}, same certificate) ==`);
  const topo = await createTopology();
  let stack: KnockportStack | undefined;
  let floor: ManagedProcess | undefined;
  const out: Record<string, unknown> = { loadAverage1mAtStart: load1() };
  try {
    stack = await startKnockport(topo, { repoRoot: REPO, config: benchConfig(topo, opts.httpsConnectionLimit), firewall, ...(opts.nodeOptions ? { nodeOptions: opts.nodeOptions } : {}) });
    const ctx: Context = { topo, firewall, stack, helper: stack.helper, srvIp: topo.addr.srv.v4, nextSource: 30 };
    floor = spawnFloor(ctx);
    await floor.waitForLine(/^floor listening$/, READY_MS);

    log(`step-2 answer with curl: ${opts.runs} knocks and ${opts.runs} floor requests, interleaved, each from a fresh address (load ${load1()}) ...`);
    const ips = await addSources(ctx, opts.runs);
    const curl = (await runTool(ctx, "cli", "floor-probe.mjs", knockJob(ctx, ips, { mode: "curl", floorPort: FLOOR_PORT }), 300_000)) as { runs: CurlRun[] };
    const floorAnswer = summarize(curl.runs.flatMap((r) => (r.floorMs === undefined ? [] : [r.floorMs])));
    const answer = summarize(curl.runs.flatMap((r) => (r.answerMs === undefined ? [] : [r.answerMs])));
    const closedAtAnswer = curl.runs.filter((r) => r.answerMs !== undefined && r.openAtAnswer !== true).length;
    const errors = curl.runs.flatMap((r) => [r.floorError, r.knockError].filter((e): e is string => e !== undefined));
    out.step2Answer = {
      method: "curl -k --interface <fresh address> POST, curl's time_total; a knock (step 1 raw, wait until the HTTPS port accepts, step 2) and a floor request per address, order alternating; one connect to the service port right after the answer",
      knockport: answer,
      floor: floorAnswer,
      ratioOfMedians: ratio(answer.median, floorAnswer.median),
      overFloorMs: Math.round((answer.median - floorAnswer.median) * 100) / 100,
      portClosedAtAnswer: closedAtAnswer,
      errors: errors.length,
      errorSamples: errors.slice(0, 5),
      loadAverage1m: load1(),
    };
    log(`  KnockPort step-2 answer: ${formatSummary(answer)}`);
    log(`  floor answer:            ${formatSummary(floorAnswer)}  -> ratio ${ratio(answer.median, floorAnswer.median)}, port closed at the answer ${closedAtAnswer}, errors ${errors.length}`);

    log(`20 concurrent knockers: ${opts.concurrentRounds} rounds (load ${load1()}) ...`);
    const lastOpen: number[] = [];
    const floorLast: number[] = [];
    let concurrentErrors = 0;
    for (let i = 0; i < opts.concurrentRounds; i += 1) {
      const round = (await runTool(ctx, "cli", "floor-probe.mjs", knockJob(ctx, await addSources(ctx, 20), { mode: "concurrent", floorPort: FLOOR_PORT }), 60_000)) as ConcurrentRound;
      concurrentErrors += round.knocks.filter((k) => k.openMs === undefined).length + round.floor.filter((f) => f.status !== 200).length;
      lastOpen.push(Math.max(...round.knocks.map((k) => k.openMs ?? Number.POSITIVE_INFINITY)));
      floorLast.push(Math.max(...round.floor.map((f) => f.answerMs)));
    }
    const concurrent = { knockport: summarize(lastOpen), floor: summarize(floorLast) };
    out.concurrent20 = {
      method: "20 knockers from 20 fresh addresses start at one instant (step 1 raw, wait until HTTPS accepts, step 2 over node https, connect poll every 2 ms): ms until the last service port is open; floor: 20 concurrent POSTs, ms until the last answer; one figure per round",
      lastPortOpenMs: concurrent.knockport,
      floorLastAnswerMs: concurrent.floor,
      ratioOfMedians: ratio(concurrent.knockport.median, concurrent.floor.median),
      errors: concurrentErrors,
      loadAverage1m: load1(),
    };
    log(`  last port open: ${spread(concurrent.knockport)} ms; floor's last answer: ${spread(concurrent.floor)} ms; errors ${concurrentErrors}`);

    const afterKnocks = { helper: rssMb(stack.helper.pid), server: rssMb(stack.server.pid), floor: rssMb(floor.pid) };
    await floor.stop(3000);
    await stack.server.stop(3000);
    await stack.helper.stop(3000);

    log(`start-up: ${opts.startRuns} cold starts of each and of both (load ${load1()}) ...`);
    const start = await startUp(ctx, opts.startRuns);
    out.startUp = { ...start, rssMbAfterTheKnocks: afterKnocks, loadAverage1m: load1() };
    const s = start as Record<string, Summary> & { rssMb: Record<string, Summary> };
    log(`  helper ${spread(s.helperMs!)} ms, server ${spread(s.serverMs!)} ms, one after the other ${spread(s.eachMs!)} ms, both at once ${spread(s.bothMs!)} ms; floor ${spread(s.floorMs!)} ms`);
    log(`  idle RSS MB: helper ${spread(s.rssMb.helper!)}, server ${spread(s.rssMb.server!)}, both ${spread(s.rssMb.allKnockport!)}; floor ${spread(s.rssMb.floor!)}`);

    const goals = [
      {
        goal: `step-2 answer median ≤ floor + ${GOALS.answerOverFloorMs} ms`,
        measured: `${answer.median} ms vs floor ${floorAnswer.median} ms`,
        pass: answer.median <= floorAnswer.median + GOALS.answerOverFloorMs,
      },
      { goal: "service port open when step 2 answers (every knock)", measured: `${closedAtAnswer} of ${answer.n} closed`, pass: closedAtAnswer === 0 && answer.n > 0 },
      {
        goal: `20 concurrent knockers, last port open ≤ ${GOALS.concurrentLastOpenMs} ms (median of rounds)`,
        measured: `${concurrent.knockport.median} ms; floor's last answer ${concurrent.floor.median} ms`,
        pass: concurrent.knockport.median <= GOALS.concurrentLastOpenMs,
      },
      {
        goal: `start until protected and listening, both daemons ≤ ${GOALS.startBothMs} ms (median)`,
        measured: `${s.bothMs!.median} ms at once, ${s.eachMs!.median} ms one after the other; floor ${s.floorMs!.median} ms`,
        pass: s.bothMs!.median <= GOALS.startBothMs,
      },
      {
        goal: `idle RSS, all processes ≤ ${GOALS.rssAllMb} MB (median)`,
        measured: `${s.rssMb.allKnockport!.median} MB; floor ${s.rssMb.floor!.median} MB`,
        pass: s.rssMb.allKnockport!.median <= GOALS.rssAllMb,
      },
    ];
    out.goals = goals;
    for (const g of goals) log(`  ${g.pass ? "PASS" : "FAIL"}  ${g.goal}: ${g.measured}`);
  } finally {
    await floor?.stop(3000);
    await stack?.stop();
    await topo.destroy();
  }
  return out;
}
