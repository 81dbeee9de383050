import { writeFileDurably } from "@knockport/durable-file";
import type { HookKind, HookOutcome } from "./types.js";

/** knockport-hooks' figures, written as a Prometheus text file (node_exporter's textfile collector). */
export class HookMetrics {
  private readonly runs = new Map<string, number>();
  closeRetries = 0;
  refusedOpens = 0;
  connected = false;

  countRun(kind: HookKind, outcome: HookOutcome): void {
    const key = `${kind}|${outcome}`;
    this.runs.set(key, (this.runs.get(key) ?? 0) + 1);
  }

  runsOf(kind: HookKind, outcome: HookOutcome): number {
    return this.runs.get(`${kind}|${outcome}`) ?? 0;
  }

  render(gauges: { pendingCloses: number; recorded: number }): string {
    const lines = [
      "# HELP knockport_hook_runs_total Hook commands run, by hook and outcome.",
      "# TYPE knockport_hook_runs_total counter",
      ...[...this.runs].map(([key, n]) => {
        const [hook, outcome] = key.split("|");
        return `knockport_hook_runs_total{hook="${hook}",outcome="${outcome}"} ${n}`;
      }),
      "# HELP knockport_hook_close_retries_total on_close runs that failed and were scheduled again.",
      "# TYPE knockport_hook_close_retries_total counter",
      `knockport_hook_close_retries_total ${this.closeRetries}`,
      "# HELP knockport_hook_open_refused_total on_open runs refused (record full or not writable).",
      "# TYPE knockport_hook_open_refused_total counter",
      `knockport_hook_open_refused_total ${this.refusedOpens}`,
      "# HELP knockport_hook_pending_closes Addresses whose on_close is queued, running or waiting for a retry.",
      "# TYPE knockport_hook_pending_closes gauge",
      `knockport_hook_pending_closes ${gauges.pendingCloses}`,
      "# HELP knockport_hook_recorded Addresses opened by on_open and not yet closed.",
      "# TYPE knockport_hook_recorded gauge",
      `knockport_hook_recorded ${gauges.recorded}`,
      "# HELP knockport_hook_helper_connected 1 while the lease event stream from the helper is connected.",
      "# TYPE knockport_hook_helper_connected gauge",
      `knockport_hook_helper_connected ${this.connected ? 1 : 0}`,
    ];
    return `${lines.join("\n")}\n`;
  }

  writeTo(file: string, gauges: { pendingCloses: number; recorded: number }): void {
    writeFileDurably(file, this.render(gauges), { mode: 0o644 });
  }
}
