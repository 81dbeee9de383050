/**
 * Prometheus metrics of the knock server (prom-client), with Node's default process metrics.
 * Served on a separate listener that only binds to loopback.
 */
import { createServer, type Server } from "node:http";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { CountersResult, KnockStep, MethodName, ParamsOf, ResultOf, StatsResult } from "@knockport/protocol";
import type { HelperPort } from "./app.js";
import { checkMetricsAddress } from "./metrics-address.js";

export { checkMetricsAddress };

export type KnockOutcome = "ok" | "bad_request" | "denied" | "not_found" | "rate_limited" | "error";
const STEPS: readonly KnockStep[] = [1, 2];
const OUTCOMES: readonly KnockOutcome[] = ["ok", "bad_request", "denied", "not_found", "rate_limited", "error"];

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

/** What the helper reported for one scrape (its knock-socket `counters` method, asked at most every 5 s). */
export interface HelperSnapshot {
  /** Live leases by app and step; undefined when the helper could not be asked. */
  openLeases: CountersResult["openLeases"] | undefined;
  /** The helper's self-heal / reconciliation counts; undefined when it could not be asked. */
  stats?: StatsResult | undefined;
}

export class ServerMetrics {
  /** The server's own series and the process metrics: always served. */
  private readonly own = new Registry();
  /** Series from the helper's `counters` answer: served only when it answered, never as stale zeros. */
  private readonly leasesRegistry = new Registry();
  private readonly statsRegistry = new Registry();
  readonly startedAt: number;

  private readonly knocks = new Counter({
    name: "knockport_knocks_total",
    help: "Knock requests answered, by step (1 = HTTP, 2 = HTTPS) and outcome.",
    labelNames: ["step", "outcome"] as const,
    registers: [this.own],
  });
  private readonly helperCalls = new Histogram({
    name: "knockport_helper_call_duration_seconds",
    help: "Time from sending a call to knockport-helper to its answer, by method and result.",
    labelNames: ["method", "result"] as const,
    buckets: [...LATENCY_BUCKETS],
    registers: [this.own],
  });
  private readonly helperUp = new Gauge({
    name: "knockport_helper_up",
    help: "1 when knockport-helper answered the last counters call (cached up to 5 s), else 0.",
    registers: [this.own],
  });
  private readonly leaseListFailures = new Counter({
    name: "knockport_lease_list_failures_total",
    help: "Calls for knockport-helper's lease counts and counters that failed.",
    registers: [this.own],
  });
  private readonly openLeases = new Gauge({
    name: "knockport_open_leases",
    help: "Live leases by app and step (1 = HTTPS knock port open, 2 = service port open).",
    labelNames: ["app", "step"] as const,
    registers: [this.leasesRegistry],
  });
  // Counted by the helper since it started: they restart with it (its start time tells when).
  private readonly helperStartTime = this.statsGauge("knockport_helper_start_time_seconds", "Start time of knockport-helper, seconds since the epoch; its *_total counters restart with it.");
  private readonly leasesRestored = this.statsCounter("knockport_helper_leases_restored_total", "Leases knockport-helper read back from the kernel's sets at start.");
  private readonly reinstalls = this.statsCounter("knockport_helper_reinstalls_total", "Times knockport-helper re-applied its whole firewall because its rules were gone (self-heal).");
  private readonly reconciliations = this.statsCounter("knockport_helper_reconciliations_total", "Times knockport-helper listed its sets' elements and compared them with its leases.");
  private readonly reconciledElements = new Counter({
    name: "knockport_helper_reconciled_elements_total",
    help: "Set elements the reconciliation corrected, by action: added (a live lease missing), retimed (wrong timeout), removed (no lease).",
    labelNames: ["action"] as const,
    registers: [this.statsRegistry],
  });
  private readonly selfHealFailures = this.statsCounter("knockport_helper_selfheal_failures_total", "Self-heal checks or re-applies of knockport-helper that failed (retried every 2 s).");

  constructor(
    /** Configured app names: every app gets a lease gauge, also at 0. */
    private readonly apps: readonly string[],
    now: () => number = Date.now,
  ) {
    this.startedAt = now();
    for (const step of STEPS) for (const outcome of OUTCOMES) this.knocks.inc({ step: String(step), outcome }, 0);
    new Gauge({ name: "knockport_server_start_time_seconds", help: "Start time of knockport-server, seconds since the epoch.", registers: [this.own] }).set(
      Math.floor(this.startedAt / 1000),
    );
    collectDefaultMetrics({ register: this.own });
  }

  private statsCounter(name: string, help: string): Counter {
    return new Counter({ name, help, registers: [this.statsRegistry] });
  }

  private statsGauge(name: string, help: string): Gauge {
    return new Gauge({ name, help, registers: [this.statsRegistry] });
  }

  countKnock(step: KnockStep, status: number): void {
    this.knocks.inc({ step: String(step), outcome: outcomeOfStatus(status) });
  }

  observeHelperCall(method: MethodName, result: "ok" | "error", seconds: number): void {
    this.helperCalls.observe({ method, result }, seconds);
  }

  countLeaseListFailure(): void {
    this.leaseListFailures.inc();
  }

  /** The exposition text (Prometheus text format 0.0.4) with `snapshot` as the helper's part. */
  async render(snapshot: HelperSnapshot): Promise<string> {
    this.helperUp.set(snapshot.openLeases === undefined ? 0 : 1);
    const pages = [await this.own.metrics()];
    if (snapshot.openLeases !== undefined) {
      this.openLeases.reset();
      for (const app of this.apps) for (const step of STEPS) this.openLeases.set({ app, step: String(step) }, 0);
      for (const l of snapshot.openLeases) this.openLeases.inc({ app: l.app, step: String(l.step) }, l.count);
      pages.push(await this.leasesRegistry.metrics());
    }
    const stats = snapshot.stats;
    if (stats !== undefined) {
      const startedMs = Date.parse(stats.startedAt);
      // The helper's counts since its start, set to its latest report.
      this.statsRegistry.resetMetrics();
      this.helperStartTime.set(Number.isFinite(startedMs) ? Math.floor(startedMs / 1000) : Number.NaN);
      this.leasesRestored.inc(stats.leasesRestored);
      this.reinstalls.inc(stats.reinstalls);
      this.reconciliations.inc(stats.reconciliations);
      this.reconciledElements.inc({ action: "added" }, stats.elementsAdded);
      this.reconciledElements.inc({ action: "retimed" }, stats.elementsRetimed);
      this.reconciledElements.inc({ action: "removed" }, stats.elementsRemoved);
      this.selfHealFailures.inc(stats.selfHealFailures);
      pages.push(await this.statsRegistry.metrics());
    }
    return pages.join("\n");
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
    void opts.helper
      .get()
      .then((snapshot) => opts.metrics.render(snapshot))
      .then(
        (body) => {
          res.writeHead(200, { "content-type": Registry.PROMETHEUS_CONTENT_TYPE, "cache-control": "no-store" });
          res.end(req.method === "HEAD" ? undefined : body);
        },
        () => res.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end("metrics unavailable\n"),
      );
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
