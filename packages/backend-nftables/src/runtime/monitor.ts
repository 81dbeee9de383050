import { spawn, type ChildProcess } from "node:child_process";
import type { BackendLog } from "@knockport/firewall";
import { logEvent } from "@knockport/protocol";

export interface NftMonitorOptions {
  /** `nft monitor` (under --use-sudo: sudo -n -- nft monitor). */
  readonly command: string;
  readonly args: readonly string[];
  /** `inet knockport`, the admin's `inet <name>`, VyOS's `ip vyos_filter`: other tables' events are ignored. */
  readonly tables: readonly string[];
  readonly onChange: (event: string) => void;
  readonly log: BackendLog;
  /** Restart delays after nft exits: doubling up to `max`, back to `first` after a minute of running. */
  readonly restartDelayMs?: { first: number; max: number };
}

/**
 * Whether a `nft monitor` line is a table, chain, rule or set event naming one of the tables. Element
 * events (every knock, the session's sync element) are left to the periodic reconciliation; `flush
 * ruleset` arrives as the deletion of every object, our table among them.
 */
export function touchesTable(line: string, tables: readonly string[]): boolean {
  const m = /^(?:add|delete|replace|flush|create|insert|update|destroy|rename) (table|chain|rule|set|map|flowtable|counter|quota|limit|ct \w+|synproxy|secmark) (\S+ \S+)(?:\s|$)/.exec(line);
  return m !== null && tables.includes(m[2] ?? "");
}

/** Longest `nft monitor` line read whole: its event lines (a rule with its comment) stay far below it. */
export const MAX_MONITOR_LINE = 4096;

/**
 * Cuts a stream into lines while holding at most `max` characters of one: the rest of a longer line is
 * skipped as it arrives (never buffered) and `onOverlong` is called once for it.
 */
export function lineSplitter(max: number, onLine: (line: string) => void, onOverlong: () => void): (chunk: string) => void {
  let held = "";
  let skipping = false;
  return (chunk) => {
    let start = 0;
    for (let nl = chunk.indexOf("\n"); nl !== -1; nl = chunk.indexOf("\n", start)) {
      const line = held + chunk.slice(start, nl);
      if (!skipping) {
        if (line.length <= max) onLine(line);
        else onOverlong();
      }
      held = "";
      skipping = false;
      start = nl + 1;
    }
    if (skipping) return;
    if (held.length + chunk.length - start > max) {
      held = "";
      skipping = true;
      onOverlong();
    } else held += chunk.slice(start);
  };
}

/**
 * A long-lived `nft monitor`: a change to our table is known within milliseconds, not at the next periodic
 * check. When nft exits (killed, netlink buffer overrun) it restarts after a bounded, doubling delay, and
 * `onChange` is called once: events may have been missed.
 */
export class NftMonitor {
  private proc: ChildProcess | undefined;
  private stopped = false;
  private delayMs: number;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly first: number;
  private readonly max: number;

  constructor(private readonly options: NftMonitorOptions) {
    this.first = options.restartDelayMs?.first ?? 100;
    this.max = options.restartDelayMs?.max ?? 10_000;
    this.delayMs = this.first;
  }

  start(): void {
    this.stopped = false;
    this.spawnMonitor();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    this.proc?.kill("SIGTERM");
    this.proc = undefined;
  }

  private spawnMonitor(): void {
    const { command, args, tables, onChange, log } = this.options;
    const startedAt = performance.now();
    const proc = spawn(command, [...args], { stdio: ["ignore", "pipe", "pipe"] });
    this.proc = proc;
    let stderr = "";
    proc.stderr?.setEncoding("utf8");
    proc.stderr?.on("data", (chunk: string) => void (stderr = (stderr + chunk).slice(-2000)));
    // A line too long to be an event of ours may still be one of a table we watch: checked, not ignored.
    const split = lineSplitter(
      MAX_MONITOR_LINE,
      (line) => touchesTable(line, tables) && onChange(line.slice(0, 200)),
      () => onChange(`nft monitor printed a line over ${MAX_MONITOR_LINE} characters`),
    );
    proc.stdout?.setEncoding("utf8");
    proc.stdout?.on("data", split);
    let ended = false;
    const onEnd = (why: string): void => {
      if (ended) return;
      ended = true;
      if (this.proc === proc) this.proc = undefined;
      if (this.stopped) return;
      if (performance.now() - startedAt > 60_000) this.delayMs = this.first;
      const delay = this.delayMs;
      this.delayMs = Math.min(this.max, this.delayMs * 2);
      logEvent(log, "warn", "firewall.monitor_restart",
        { reason: why, stderr: stderr.trim().slice(0, 300), restartInMs: delay },
        "nft monitor ended; restarting it, and checking the firewall meanwhile",
      );
      onChange(`nft monitor ended (${why})`);
      this.restartTimer = setTimeout(() => {
        if (!this.stopped) this.spawnMonitor();
      }, delay);
      this.restartTimer.unref();
    };
    proc.on("error", (err) => onEnd(err.message));
    proc.on("close", (code, signal) => onEnd(signal !== null ? `signal ${signal}` : `exit ${String(code)}`));
  }
}
