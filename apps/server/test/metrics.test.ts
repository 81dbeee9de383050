import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HelperCallError } from "@knockport/helper-client";
import { buildKnockApp, createKnockContext } from "../src/app.js";
import { parseServerArgs } from "../src/args.js";
import {
  CachedHelperSnapshot,
  ServerMetrics,
  checkMetricsAddress,
  instrumentHelper,
  outcomeOfStatus,
  startMetricsListener,
  type MetricsListener,
} from "../src/metrics.js";
import { FakeHelper, HTTP_PATH, HTTPS_PATH, KEYS, makeConfig, tempDir } from "./fixtures.js";

const FORM = { "content-type": "application/x-www-form-urlencoded" };
const CLIENT = "198.51.100.7";

/** A series as `name{labels}` with its labels sorted: label order carries no meaning in the format. */
function seriesKey(series: string): string {
  const m = /^([^{ ]+)(?:\{(.*)\})?$/.exec(series);
  if (!m) throw new Error(`not a series: ${series}`);
  const labels = (m[2] ?? "").match(/[a-z_]+="(?:[^"\\]|\\.)*"/g) ?? [];
  return `${m[1]}{${[...labels].sort().join(",")}}`;
}

/** The value of one sample line, or undefined. */
function sample(text: string, series: string): number | undefined {
  const wanted = seriesKey(series);
  const line = text.split("\n").find((l) => !l.startsWith("#") && l.includes(" ") && seriesKey(l.slice(0, l.lastIndexOf(" "))) === wanted);
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

describe("metrics", () => {
  it("maps answers to outcomes", () => {
    expect([200, 400, 403, 404, 429, 500, 503].map(outcomeOfStatus)).toEqual([
      "ok",
      "bad_request",
      "denied",
      "not_found",
      "rate_limited",
      "error",
      "error",
    ]);
  });

  it("counts knocks by step and outcome through the real listeners, and times helper calls", async () => {
    const twoFa = tempDir("kp-metrics-2fa-");
    const config = makeConfig({ "2fa_config_folder": twoFa.path, step1_2_rate_limit_per_minute: 3 });
    const metrics = new ServerMetrics(config.apps.map((a) => a.name));
    const helper = new FakeHelper();
    const context = createKnockContext(config, instrumentHelper(helper, metrics));
    const step1 = await buildKnockApp({ step: 1, context, logger: false, metrics });
    const step2 = await buildKnockApp({ step: 2, context, logger: false, metrics });
    const post = (app: typeof step1, url: string, fields: Record<string, string>) =>
      app.inject({ method: "POST", url, payload: new URLSearchParams(fields).toString(), headers: FORM, remoteAddress: CLIENT });
    try {
      expect((await post(step1, HTTP_PATH, { app: "ssh", access_key: KEYS.sshHttp[0] })).statusCode).toBe(200);
      expect((await post(step1, HTTP_PATH, { app: "ssh", access_key: "wrong-key-00000" })).statusCode).toBe(403);
      expect((await post(step1, "/other", { app: "ssh" })).statusCode).toBe(404);
      expect((await post(step1, HTTP_PATH, { app: "ssh" })).statusCode).toBe(400); // no access_key
      expect((await post(step1, HTTP_PATH, { app: "ssh" })).statusCode).toBe(429); // 4th knock this minute (the 404 is not limited)
      helper.failNext(new HelperCallError("HELPER_UNREACHABLE", "down"));
      expect((await post(step2, HTTPS_PATH, { app: "ssh", access_key: KEYS.sshHttps[0] })).statusCode).toBe(500);
      expect((await post(step2, HTTPS_PATH, { app: "ssh", bogus: "x" })).statusCode).toBe(400);
    } finally {
      await step1.close();
      await step2.close();
      twoFa.remove();
    }
    const text = await metrics.render({ openLeases: [] });
    expect(sample(text, 'knockport_knocks_total{step="1",outcome="ok"}')).toBe(1);
    expect(sample(text, 'knockport_knocks_total{step="1",outcome="denied"}')).toBe(1);
    expect(sample(text, 'knockport_knocks_total{step="1",outcome="not_found"}')).toBe(1);
    expect(sample(text, 'knockport_knocks_total{step="1",outcome="rate_limited"}')).toBe(1);
    expect(sample(text, 'knockport_knocks_total{step="1",outcome="bad_request"}')).toBe(1);
    expect(sample(text, 'knockport_knocks_total{step="2",outcome="error"}')).toBe(1);
    expect(sample(text, 'knockport_knocks_total{step="2",outcome="bad_request"}')).toBe(1);
    expect(sample(text, 'knockport_knocks_total{step="2",outcome="ok"}')).toBe(0);
    expect(sample(text, 'knockport_helper_call_duration_seconds_count{method="open",result="ok"}')).toBe(1);
    expect(sample(text, 'knockport_helper_call_duration_seconds_count{method="open",result="error"}')).toBe(1);
    expect(sample(text, 'knockport_helper_call_duration_seconds_bucket{method="open",result="ok",le="+Inf"}')).toBe(1);
  });

  it("renders valid exposition text: HELP/TYPE once per family, cumulative buckets, leases per app and step", async () => {
    const metrics = new ServerMetrics(["openvpn", "ssh"], () => 1_700_000_000_000);
    metrics.observeHelperCall("open", "ok", 0.0007);
    metrics.observeHelperCall("open", "ok", 0.003);
    metrics.observeHelperCall("open", "ok", 9);
    const text = await metrics.render({ openLeases: [{ app: "ssh", step: 2, count: 2 }, { app: "ssh", step: 1, count: 1 }] });
    const families = text.split("\n").filter((l) => l.startsWith("# TYPE ")).map((l) => l.split(" ")[2]);
    expect(new Set(families).size).toBe(families.length);
    for (const line of text.split("\n").filter((l) => l !== "" && !l.startsWith("#"))) {
      expect(line).toMatch(/^[a-z_][a-z0-9_]*(\{[a-z_]+="[^"\n]*"(,[a-z_]+="[^"\n]*")*\})? (-?[0-9.e+-]+|[+-]Inf|Nan)$/);
    }
    const b = (le: string) => sample(text, `knockport_helper_call_duration_seconds_bucket{method="open",result="ok",le="${le}"}`);
    expect([b("0.0005"), b("0.001"), b("0.005"), b("5"), b("+Inf")]).toEqual([0, 1, 2, 2, 3]);
    expect(sample(text, 'knockport_helper_call_duration_seconds_sum{method="open",result="ok"}')).toBeCloseTo(9.0037);
    expect(sample(text, 'knockport_open_leases{app="ssh",step="2"}')).toBe(2);
    expect(sample(text, 'knockport_open_leases{app="ssh",step="1"}')).toBe(1);
    expect(sample(text, 'knockport_open_leases{app="openvpn",step="2"}')).toBe(0);
    expect(sample(text, "knockport_helper_up")).toBe(1);
    expect(sample(text, "knockport_server_start_time_seconds")).toBe(1_700_000_000);
    const down = await metrics.render({ openLeases: undefined });
    expect(sample(down, "knockport_helper_up")).toBe(0);
    expect(down).not.toContain("knockport_open_leases{");
  });

  it("serves Node's default process metrics next to its own, and reports a later helper answer, not the first", async () => {
    const metrics = new ServerMetrics(["ssh"]);
    // The counter is the CPU used since the metrics were created: on a busy machine the kernel may not
    // have accounted any yet, so spend some (bounded) before asking.
    const since = process.cpuUsage().user;
    const deadline = Date.now() + 2000;
    while (process.cpuUsage().user - since < 20_000 && Date.now() < deadline) Math.sqrt(Math.random());
    const text = await metrics.render({ openLeases: [] });
    expect(sample(text, "process_cpu_user_seconds_total")).toBeGreaterThan(0);
    expect(sample(text, "process_resident_memory_bytes")).toBeGreaterThan(1_000_000);
    expect(sample(text, "nodejs_heap_size_used_bytes")).toBeGreaterThan(0);
    expect(text).toContain("# TYPE nodejs_eventloop_lag_seconds gauge\n");
    const stats = { startedAt: "2026-11-26T01:02:03.400Z", leasesRestored: 0, reinstalls: 2, reconciliations: 4, elementsAdded: 1, elementsRetimed: 0, elementsRemoved: 0, selfHealFailures: 0 };
    await metrics.render({ openLeases: [{ app: "ssh", step: 2, count: 5 }], stats });
    const later = await metrics.render({ openLeases: [{ app: "ssh", step: 1, count: 1 }], stats: { ...stats, reinstalls: 3, elementsAdded: 2 } });
    expect(sample(later, "knockport_helper_reinstalls_total")).toBe(3);
    expect(sample(later, 'knockport_helper_reconciled_elements_total{action="added"}')).toBe(2);
    expect(sample(later, 'knockport_open_leases{app="ssh",step="2"}')).toBe(0);
    expect(sample(later, 'knockport_open_leases{app="ssh",step="1"}')).toBe(1);
  });

  it("asks the helper's knock-socket counters at most once per 5 s, also under concurrent scrapes", async () => {
    const helper = new FakeHelper();
    helper.openLeases = [{ app: "ssh", step: 2, count: 3 }];
    const clock = { t: 0 };
    const metrics = new ServerMetrics([]);
    const cache = new CachedHelperSnapshot(helper, metrics, 5000, () => clock.t);
    await Promise.all([cache.get(), cache.get(), cache.get()]);
    clock.t = 4999;
    expect(await cache.get()).toEqual({ openLeases: helper.openLeases, stats: helper.stats });
    expect(helper.calls.map((c) => c.method)).toEqual(["counters"]);
    clock.t = 5000;
    helper.failNext(new HelperCallError("HELPER_TIMEOUT", "slow"));
    const down = await cache.get();
    expect(down).toEqual({ openLeases: undefined, stats: undefined });
    expect(helper.calls.map((c) => c.method)).toEqual(["counters", "counters"]);
    const text = await metrics.render(down);
    expect(sample(text, "knockport_lease_list_failures_total")).toBe(1);
    expect(sample(text, "knockport_helper_up")).toBe(0);
    expect(text).not.toContain("knockport_helper_reinstalls_total");
  });

  it("renders the helper's self-heal and reconciliation counts as knockport_helper_*_total counters", async () => {
    const metrics = new ServerMetrics(["ssh"]);
    const text = await metrics.render({
      openLeases: [],
      stats: {
        startedAt: "2026-11-26T01:02:03.400Z",
        leasesRestored: 3,
        reinstalls: 2,
        reconciliations: 41,
        elementsAdded: 5,
        elementsRetimed: 1,
        elementsRemoved: 7,
        selfHealFailures: 4,
      },
    });
    expect(sample(text, "knockport_helper_start_time_seconds")).toBe(Date.UTC(2026, 10, 26, 1, 2, 3) / 1000);
    expect(sample(text, "knockport_helper_leases_restored_total")).toBe(3);
    expect(sample(text, "knockport_helper_reinstalls_total")).toBe(2);
    expect(sample(text, "knockport_helper_reconciliations_total")).toBe(41);
    expect(sample(text, 'knockport_helper_reconciled_elements_total{action="added"}')).toBe(5);
    expect(sample(text, 'knockport_helper_reconciled_elements_total{action="retimed"}')).toBe(1);
    expect(sample(text, 'knockport_helper_reconciled_elements_total{action="removed"}')).toBe(7);
    expect(sample(text, "knockport_helper_selfheal_failures_total")).toBe(4);
    for (const name of ["leases_restored", "reinstalls", "reconciliations", "reconciled_elements", "selfheal_failures"]) {
      expect(text).toContain(`# TYPE knockport_helper_${name}_total counter\n`);
      expect(text).toMatch(new RegExp(`# HELP knockport_helper_${name}_total \\S`));
    }
    expect(text).toContain("# TYPE knockport_helper_start_time_seconds gauge\n");
    const families = text.split("\n").filter((l) => l.startsWith("# TYPE ")).map((l) => l.split(" ")[2]);
    expect(new Set(families).size).toBe(families.length);
  });

  it("only loopback addresses are accepted for the metrics listener", () => {
    // ::ffff:127.0.0.1 is IPv4 loopback reached through an IPv6 socket: loopback too.
    for (const ok of ["127.0.0.1", "127.1.2.3", "::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"]) expect(checkMetricsAddress(ok)).toBe(ok);
    for (const bad of ["0.0.0.0", "::", "198.51.100.7", "2001:db8::1", "localhost", "::ffff:198.51.100.7", "", "127.0.0.1 "]) {
      expect(() => checkMetricsAddress(bad)).toThrow(/--metrics-address: must be a loopback address/);
    }
  });

  it("server flags: metrics are off by default; --metrics-address must be loopback and needs --metrics-port", () => {
    const base = ["-c", "x.yaml", "--cert", "c.pem", "--key", "k.pem"];
    const off = parseServerArgs(base);
    expect(off !== "help" && off.metricsPort).toBeUndefined();
    const on = parseServerArgs([...base, "--metrics-port", "9464"]);
    expect(on !== "help" && [on.metricsPort, on.metricsAddress]).toEqual([9464, "127.0.0.1"]);
    expect(() => parseServerArgs([...base, "--metrics-port", "9464", "--metrics-address", "0.0.0.0"])).toThrow(/loopback/);
    expect(() => parseServerArgs([...base, "--metrics-address", "::1"])).toThrow(/--metrics-address needs --metrics-port/);
    expect(() => parseServerArgs([...base, "--metrics-port", "0"])).toThrow(/--metrics-port: must be an integer/);
  });

  describe("listener", () => {
    let listener: MetricsListener;
    const helper = new FakeHelper();
    const metrics = new ServerMetrics(["ssh"]);
    beforeAll(async () => {
      listener = await startMetricsListener({ address: "127.0.0.1", port: 0, metrics, helper: new CachedHelperSnapshot(helper, metrics) });
    });
    afterAll(() => listener.close());

    const get = (path: string, method = "GET") =>
      new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port: listener.port, path, method }, (res) => {
          let body = "";
          res.setEncoding("utf8").on("data", (c: string) => (body += c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"]), body }));
        });
        req.on("error", reject).end();
      });

    it("serves GET /metrics in the Prometheus text format, nothing else", async () => {
      const r = await get("/metrics");
      expect(r.status).toBe(200);
      expect(r.type).toBe("text/plain; version=0.0.4; charset=utf-8");
      expect(sample(r.body, 'knockport_open_leases{app="ssh",step="2"}')).toBe(0);
      expect(sample(r.body, "knockport_helper_up")).toBe(1);
      expect(sample(r.body, "knockport_helper_reinstalls_total")).toBe(0);
      expect((await get("/")).status).toBe(404);
      expect((await get("/metrics", "POST")).status).toBe(405);
    });

    it("refuses to bind to a public address", async () => {
      await expect(startMetricsListener({ address: "0.0.0.0", port: 0, metrics, helper: new CachedHelperSnapshot(helper, metrics) })).rejects.toThrow(
        /loopback/,
      );
    });
  });
});
