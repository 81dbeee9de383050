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
    const runs = [...this.runs].map(([key, n]) => {
      const [hook, outcome] = key.split("|");
      return `knockport_hook_runs_total{hook="${hook}",outcome="${outcome}"} ${n}`;
    });
    const lines = [
      ...family("knockport_hook_runs_total", "counter", "Hook commands run, by hook and outcome.", runs),
      ...family("knockport_hook_close_retries_total", "counter", "on_close runs that failed and were scheduled again.", this.closeRetries),
      ...family("knockport_hook_open_refused_total", "counter", "on_open runs refused (record full or not writable).", this.refusedOpens),
      ...family("knockport_hook_pending_closes", "gauge", "Addresses whose on_close is queued, running or waiting for a retry.", gauges.pendingCloses),
      ...family("knockport_hook_recorded", "gauge", "Addresses opened by on_open and not yet closed.", gauges.recorded),
      ...family("knockport_hook_helper_connected", "gauge", "1 while the lease event stream from the helper is connected.", this.connected ? 1 : 0),
    ];
    return `${lines.join("\n")}\n`;
  }

  writeTo(file: string, gauges: { pendingCloses: number; recorded: number }): void {
    writeFileDurably(file, this.render(gauges), { mode: 0o644 });
  }
}

/** One metric family in the Prometheus text format: HELP, TYPE, then its samples (one unlabelled value, or sample lines). */
function family(name: string, type: "counter" | "gauge", help: string, samples: number | readonly string[]): string[] {
  return [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...(typeof samples === "number" ? [`${name} ${samples}`] : samples)];
}
