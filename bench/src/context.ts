/** What every measurement of `pnpm bench` shares: the running stack, its probes and fresh source addresses. */
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { exampleConfig, type ConfigSpec, type FirewallKind, type KnockportStack, type ManagedProcess, type Topology } from "@knockport/testbed";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const TOOLS = join(REPO, "bench/tools");

export interface Context {
  topo: Topology;
  firewall: FirewallKind;
  stack: KnockportStack;
  /** The running helper (the scale measurement restarts it). */
  helper: ManagedProcess;
  srvIp: string;
  nextSource: number;
}

export function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** The machine's 1-minute load average, two decimals: quoted beside every figure (the machine is shared). */
export function load1(): number {
  return Math.round((loadavg()[0] ?? 0) * 100) / 100;
}

/** The bench's config: long leases for app 0, 2 s leases for the second app (the expiry measurement). */
export function benchConfig(topo: Topology, httpsConnectionLimit: number | undefined): ConfigSpec {
  const config = exampleConfig({
    interfaceExt: topo.extInterface,
    duration: 600,
    step2HttpsDuration: 30,
    rateLimitPerMinute: 100_000,
    keyPairs: 1,
    // the burst stays KnockPort's default (20); the per-minute limit as asked, 0 = off
    ...(httpsConnectionLimit !== undefined ? { httpsConnectionLimit: { perMinute: httpsConnectionLimit, burst: 20 } } : {}),
  });
  const short = { ...config.apps[1]!, name: "web", port: 2223, protocol: "tcp" as const, duration: 2 };
  return { ...config, apps: [config.apps[0]!, short] };
}

/** Runs a bench/tools script in `host` with `job` on its stdin; its stdout's JSON. Needs only the topology (the cluster row has two). */
export async function runTool(ctx: Pick<Context, "topo">, host: "cli" | "cli2", tool: string, job: unknown, timeoutMs: number): Promise<unknown> {
  const res = await ctx.topo.exec(host, process.execPath, [join(TOOLS, tool)], {
    input: JSON.stringify(job),
    timeoutMs,
  });
  if (res.exitCode !== 0) throw new Error(`${tool} failed (exit ${String(res.exitCode)}): ${res.stderr}`);
  return JSON.parse(res.stdout) as unknown;
}

/** Fresh source addresses on cli's interface, so every knock starts from a closed port. */
export async function addSources(ctx: Context, count: number): Promise<string[]> {
  const ips: string[] = [];
  const lines: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const n = ctx.nextSource++;
    if (n > 250) throw new Error("out of source addresses in 198.51.100.0/24");
    const ip = `198.51.100.${n}`;
    ips.push(ip);
    lines.push(`addr add ${ip}/24 dev eth0`);
  }
  const res = await ctx.topo.exec("cli", "ip", ["-batch", "-"], { input: `${lines.join("\n")}\n`, timeoutMs: 30_000 });
  if (res.exitCode !== 0) throw new Error(`ip -batch failed: ${res.stderr}`);
  return ips;
}

/** What a knock tool needs to knock app 0 of `ctx`'s stack from `sourceIps`, plus `extra`. */
export function knockJob(ctx: Pick<Context, "stack" | "srvIp">, sourceIps: string[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  const cfg = ctx.stack.config;
  const app = cfg.apps[0];
  if (!app) throw new Error("no app");
  return {
    srvIp: ctx.srvIp,
    httpPort: cfg.httpPort,
    httpsPort: cfg.httpsPort,
    httpPath: cfg.httpPostPath,
    httpsPath: cfg.httpsPostPath,
    app: app.name,
    httpKey: app.accessKeysHttp[0],
    httpsKey: app.accessKeysHttps[0],
    servicePort: app.port,
    sourceIps,
    ...extra,
  };
}

/** A process's resident set in MB (one decimal), from /proc; undefined when it is gone. */
export function rssMb(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb === undefined ? undefined : Math.round(Number(kb) / 102.4) / 10;
  } catch {
    return undefined;
  }
}
