import { describe, expect, it } from "vitest";
import { HookMetrics } from "../src/metrics.js";

describe("HookMetrics.render", () => {
  it("writes every family with HELP and TYPE, the runs by hook and outcome, and the gauges given", () => {
    const m = new HookMetrics();
    m.countRun("on_open", "ok");
    m.countRun("on_open", "ok");
    m.countRun("on_close", "failed");
    m.closeRetries = 3;
    m.refusedOpens = 1;
    m.connected = true;
    expect(m.render({ pendingCloses: 2, recorded: 5 })).toBe(
      [
        "# HELP knockport_hook_runs_total Hook commands run, by hook and outcome.",
        "# TYPE knockport_hook_runs_total counter",
        'knockport_hook_runs_total{hook="on_open",outcome="ok"} 2',
        'knockport_hook_runs_total{hook="on_close",outcome="failed"} 1',
        "# HELP knockport_hook_close_retries_total on_close runs that failed and were scheduled again.",
        "# TYPE knockport_hook_close_retries_total counter",
        "knockport_hook_close_retries_total 3",
        "# HELP knockport_hook_open_refused_total on_open runs refused (record full or not writable).",
        "# TYPE knockport_hook_open_refused_total counter",
        "knockport_hook_open_refused_total 1",
        "# HELP knockport_hook_pending_closes Addresses whose on_close is queued, running or waiting for a retry.",
        "# TYPE knockport_hook_pending_closes gauge",
        "knockport_hook_pending_closes 2",
        "# HELP knockport_hook_recorded Addresses opened by on_open and not yet closed.",
        "# TYPE knockport_hook_recorded gauge",
        "knockport_hook_recorded 5",
        "# HELP knockport_hook_helper_connected 1 while the lease event stream from the helper is connected.",
        "# TYPE knockport_hook_helper_connected gauge",
        "knockport_hook_helper_connected 1",
        "",
      ].join("\n"),
    );
  });

  it("writes an empty runs family and a disconnected stream as 0 before anything ran", () => {
    const text = new HookMetrics().render({ pendingCloses: 0, recorded: 0 });
    expect(text).toContain("# TYPE knockport_hook_runs_total counter\n# HELP knockport_hook_close_retries_total");
    expect(text).toContain("knockport_hook_helper_connected 0\n");
  });
});
