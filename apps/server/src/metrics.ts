/**
 * Prometheus metrics of the knock server, in the text exposition format (version 0.0.4), written
 * by hand (no client library). Served on a separate listener that only binds to loopback.
 */
import { createServer, type Server } from "node:http";
import { BlockList, isIP } from "node:net";
import { UsageError } from "@knockport/config";
import type { CountersResult, KnockStep, MethodName, ParamsOf, ResultOf, StatsResult } from "@knockport/protocol";
import type { HelperPort } from "./app.js";

export type KnockOutcome = "ok" | "bad_request" | "denied" | "not_found" | "rate_limited" | "error";

/** The answer's status is the outcome: every answer, also 404 and 429, goes through one reply function. */
export function outcomeOfStatus(status: number): KnockOutcome {
  switch (status) {
    case 200:
      return "ok";
    case 400:
      return "bad_request";
    case 403:
      return "denied";
    case 404:
      return "not_found";
    case 429:
      return "rate_limited";
    default:
      return "error";
  }
}

/** Helper call latency buckets, seconds: a grant should take about a millisecond. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const;

interface Histogram {
  counts: number[]; // per bucket, not cumulative
  sum: number;
  count: number;
}

/** Label values are configured app names, method names and fixed words; escaped all the same. */
function label(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function num(n: number): string {
  return Number.isFinite(n) ? String(n) : n > 0 ? "+Inf" : n < 0 ? "-Inf" : "NaN";
}

/** What the helper reported for one scrape (its knock-socket `counters` method, asked at most every 5 s). */
export interface HelperSnapshot {
  /** Live leases by app and step; undefined when the helper could not be asked. */
  openLeases: CountersResult["openLeases"] | undefined;
  /** The helper's self-heal / reconciliation counts; undefined when it could not be asked. */
  stats?: StatsResult | undefined;
}

export class ServerMetrics {
  private readonly knocks = new Map<string, number>();
  private readonly helperCalls = new Map<string, Histogram>();
  private leaseListFailures = 0;
  readonly startedAt: number;

  constructor(
    /** Configured app names: every app gets a lease gauge, also at 0. */
    private readonly apps: readonly string[],
    private readonly now: () => number = Date.now,
  ) {
    this.startedAt = now();
  }

  countKnock(step: KnockStep, status: number): void {
    const key = `${step}|${outcomeOfStatus(status)}`;
    this.knocks.set(key, (this.knocks.get(key) ?? 0) + 1);
  }

  observeHelperCall(method: MethodName, result: "ok" | "error", seconds: number): void {
    const key = `${method}|${result}`;
    let h = this.helperCalls.get(key);
    if (!h) {
      h = { counts: LATENCY_BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.helperCalls.set(key, h);
    }
    const i = LATENCY_BUCKETS.findIndex((b) => seconds <= b);
    if (i >= 0) h.counts[i]! += 1;
    h.sum += seconds;
    h.count += 1;
  }

  countLeaseListFailure(): void {
    this.leaseListFailures += 1;
  }

  render(snapshot: HelperSnapshot): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    };

    family("knockport_knocks_total", "counter", "Knock requests answered, by step (1 = HTTP, 2 = HTTPS) and outcome.");
    const steps: KnockStep[] = [1, 2];
    const outcomes: KnockOutcome[] = ["ok", "bad_request", "denied", "not_found", "rate_limited", "error"];
    for (const step of steps) {
      for (const outcome of outcomes) {
        out.push(`knockport_knocks_total{step="${step}",outcome="${outcome}"} ${this.knocks.get(`${step}|${outcome}`) ?? 0}`);
      }
    }

    family("knockport_helper_call_duration_seconds", "histogram", "Time from sending a call to knockport-helper to its answer, by method and result.");
    for (const [key, h] of [...this.helperCalls].sort(([a], [b]) => a.localeCompare(b))) {
      const [method = "", result = ""] = key.split("|");
      const labels = `method="${label(method)}",result="${label(result)}"`;
      let cumulative = 0;
      LATENCY_BUCKETS.forEach((b, i) => {
        cumulative += h.counts[i]!;
        out.push(`knockport_helper_call_duration_seconds_bucket{${labels},le="${b}"} ${cumulative}`);
      });
      out.push(`knockport_helper_call_duration_seconds_bucket{${labels},le="+Inf"} ${h.count}`);
      out.push(`knockport_helper_call_duration_seconds_sum{${labels}} ${num(h.sum)}`);
      out.push(`knockport_helper_call_duration_seconds_count{${labels}} ${h.count}`);
    }

    family("knockport_helper_up", "gauge", "1 when knockport-helper answered the last counters call (cached up to 5 s), else 0.");
    out.push(`knockport_helper_up ${snapshot.openLeases === undefined ? 0 : 1}`);
    family("knockport_lease_list_failures_total", "counter", "Calls for knockport-helper's lease counts and counters that failed.");
    out.push(`knockport_lease_list_failures_total ${this.leaseListFailures}`);

    if (snapshot.openLeases !== undefined) {
      family("knockport_open_leases", "gauge", "Live leases by app and step (1 = HTTPS knock port open, 2 = service port open).");
      const counts = new Map<string, number>();
      for (const app of this.apps) for (const step of steps) counts.set(`${app}|${step}`, 0);
      for (const l of snapshot.openLeases) counts.set(`${l.app}|${l.step}`, (counts.get(`${l.app}|${l.step}`) ?? 0) + l.count);
      for (const [key, n] of [...counts].sort(([a], [b]) => a.localeCompare(b))) {
        const [app = "", step = ""] = key.split("|");
        out.push(`knockport_open_leases{app="${label(app)}",step="${step}"} ${n}`);
      }
    }

    const stats = snapshot.stats;
    if (stats !== undefined) {
      // Counted by the helper since it started: they restart with it (its start time tells when).
      const startedMs = Date.parse(stats.startedAt);
      family("knockport_helper_start_time_seconds", "gauge", "Start time of knockport-helper, seconds since the epoch; its *_total counters restart with it.");
      out.push(`knockport_helper_start_time_seconds ${Number.isFinite(startedMs) ? Math.floor(startedMs / 1000) : "NaN"}`);
      family("knockport_helper_leases_restored_total", "counter", "Leases knockport-helper put back from its journal at start.");
      out.push(`knockport_helper_leases_restored_total ${stats.leasesRestored}`);
      family("knockport_helper_reinstalls_total", "counter", "Times knockport-helper re-applied its whole firewall because its rules were gone (self-heal).");
      out.push(`knockport_helper_reinstalls_total ${stats.reinstalls}`);
      family("knockport_helper_reconciliations_total", "counter", "Times knockport-helper listed its sets' elements and compared them with its leases.");
      out.push(`knockport_helper_reconciliations_total ${stats.reconciliations}`);
      family(
        "knockport_helper_reconciled_elements_total",
        "counter",
        "Set elements the reconciliation corrected, by action: added (a live lease missing), retimed (wrong timeout), removed (no lease).",
      );
      out.push(`knockport_helper_reconciled_elements_total{action="added"} ${stats.elementsAdded}`);
      out.push(`knockport_helper_reconciled_elements_total{action="retimed"} ${stats.elementsRetimed}`);
      out.push(`knockport_helper_reconciled_elements_total{action="removed"} ${stats.elementsRemoved}`);
      family("knockport_helper_selfheal_failures_total", "counter", "Self-heal checks or re-applies of knockport-helper that failed (retried every 2 s).");
      out.push(`knockport_helper_selfheal_failures_total ${stats.selfHealFailures}`);
    }

    family("knockport_server_start_time_seconds", "gauge", "Start time of knockport-server, seconds since the epoch.");
    out.push(`knockport_server_start_time_seconds ${Math.floor(this.startedAt / 1000)}`);
    return `${out.join("\n")}\n`;
  }
}

/** The helper port, timing each call into `metrics`. */
export function instrumentHelper(helper: HelperPort, metrics: ServerMetrics, clock: () => bigint = process.hrtime.bigint): HelperPort {
  return {
    call: async <M extends MethodName>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> => {
      const started = clock();
      try {
        const result = await helper.call(method, params);
        metrics.observeHelperCall(method, "ok", Number(clock() - started) / 1e9);
        return result;
      } catch (err) {
        metrics.observeHelperCall(method, "error", Number(clock() - started) / 1e9);
        throw err;
      }
    },
  } as HelperPort;
}

/**
 * The helper's lease counts and counters (`counters`, the knock socket's read-only method: no
 * addresses), asked at most once per `ttlMs` however often Prometheus scrapes. A failed call is counted.
 */
export class CachedHelperSnapshot {
  private cached: { at: number; snapshot: HelperSnapshot } | undefined;
  private inFlight: Promise<HelperSnapshot> | undefined;

  constructor(
    private readonly helper: HelperPort,
    private readonly metrics: ServerMetrics,
    private readonly ttlMs = 5000,
    private readonly now: () => number = Date.now,
  ) {}

  async get(): Promise<HelperSnapshot> {
    if (this.cached && this.now() - this.cached.at < this.ttlMs) return this.cached.snapshot;
    this.inFlight ??= this.helper.call("counters", {}).then(
      ({ openLeases, ...stats }): HelperSnapshot => this.keep({ openLeases, stats }),
      (): HelperSnapshot => {
        this.metrics.countLeaseListFailure();
        return this.keep({ openLeases: undefined, stats: undefined });
      },
    );
    return this.inFlight;
  }

  private keep(snapshot: HelperSnapshot): HelperSnapshot {
    this.cached = { at: this.now(), snapshot };
    this.inFlight = undefined;
    return snapshot;
  }
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/** --metrics-address must be a loopback address: the metrics listener is never public. */
export function checkMetricsAddress(address: string): string {
  const family = isIP(address);
  const loopback = family !== 0 && LOOPBACK.check(address, family === 4 ? "ipv4" : "ipv6");
  if (!loopback) {
    throw new UsageError(
      `--metrics-address: must be a loopback address such as 127.0.0.1 or ::1 (got "${address}"); the metrics listener is never exposed, scrape it locally or through a proxy`,
    );
  }
  return address;
}

export interface MetricsListener {
  readonly port: number;
  close(): Promise<void>;
}

/** GET /metrics on `address:port`; every other path or method is 404/405. Short timeouts, small. */
export async function startMetricsListener(opts: {
  address: string;
  port: number;
  metrics: ServerMetrics;
  helper: CachedHelperSnapshot;
}): Promise<MetricsListener> {
  const address = checkMetricsAddress(opts.address);
  const server: Server = createServer({ requestTimeout: 5000, headersTimeout: 5000, keepAliveTimeout: 5000 }, (req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("Not Found\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" }).end("Method Not Allowed\n");
      return;
    }
    void opts.helper.get().then((snapshot) => {
      const body = opts.metrics.render(snapshot);
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8", "cache-control": "no-store" });
      res.end(req.method === "HEAD" ? undefined : body);
    });
  });
  server.maxConnections = 16;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port: opts.port, host: address }, () => resolve());
  });
  const bound = server.address();
  return {
    port: typeof bound === "object" && bound ? bound.port : opts.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
