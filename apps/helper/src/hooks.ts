import { execa } from "execa";
import type { Logger } from "./log.js";
import { expandHookArgv, type AppConfig } from "@knockport/config";
import type { HookReport, IpAddress } from "@knockport/protocol";

export type HookKind = "on_open" | "on_close";

/** Why a hook ended the way it did; also the metric/audit label. */
export type HookOutcome = "ok" | "failed" | "timeout" | "not-started" | "dropped";

export interface HookRun {
  readonly kind: HookKind;
  readonly app: AppConfig;
  readonly ip: IpAddress;
  /** Seconds the lease lasts ({duration}); 0 for on_close. */
  readonly durationSeconds: number;
  /** Why it runs: knock, admin grant, expiry, revoke, expired-while-down. */
  readonly reason: string;
}

export interface HookRunnerOptions {
  /** Per command; it is killed (SIGTERM, then SIGKILL 2 s later) after this. */
  timeoutMs?: number;
  /** Captured stdout/stderr per stream; more is cut off (and logged as truncated). */
  maxOutputBytes?: number;
  /** Hook runs waiting at once, over all addresses; more are dropped and logged. */
  maxPending?: number;
}

export const DEFAULT_HOOK_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_OUTPUT_BYTES = 16 * 1024;
const LOGGED_OUTPUT_CHARS = 1000;

/**
 * Runs apps' on_open / on_close commands with execa: an argument vector (no shell), placeholders
 * replaced per argument, stdin closed, a timeout, bounded output. Runs for one app and address
 * are serialised (an on_close never overtakes its on_open); different addresses run in parallel.
 * A hook never throws: its outcome is logged as an audit line and returned.
 */
export class HookRunner {
  private readonly chains = new Map<string, Promise<HookOutcome>>();
  private pending = 0;
  private readonly timeoutMs: number;
  private readonly maxOutputBytes: number;
  private readonly maxPending: number;

  constructor(
    private readonly log: Logger,
    options: HookRunnerOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS;
    this.maxOutputBytes = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
    this.maxPending = options.maxPending ?? 1000;
  }

  /** True when the app has a command of this kind. */
  static has(app: AppConfig, kind: HookKind): boolean {
    return (kind === "on_open" ? app.onOpen : app.onClose) !== undefined;
  }

  /** Run the hooks (in order) and summarise them for a method result; undefined when none ran. */
  async runAll(runs: readonly HookRun[]): Promise<HookReport | undefined> {
    const outcomes = await Promise.all(runs.filter((r) => HookRunner.has(r.app, r.kind)).map((r) => this.run(r)));
    if (outcomes.length === 0) return undefined;
    return { ran: outcomes.length, failed: outcomes.filter((o) => o !== "ok").length };
  }

  run(r: HookRun): Promise<HookOutcome> {
    const argv = r.kind === "on_open" ? r.app.onOpen : r.app.onClose;
    if (argv === undefined) return Promise.resolve("ok");
    if (this.pending >= this.maxPending) {
      this.audit(r, "dropped", { error: `more than ${this.maxPending} hook runs waiting` });
      return Promise.resolve("dropped");
    }
    const key = `${r.app.name}|${r.ip}`;
    const previous = this.chains.get(key) ?? Promise.resolve<HookOutcome>("ok");
    this.pending += 1;
    // exec never rejects (a thrown error becomes "not-started"), so no chain can reject unhandled.
    const next = previous.then(() =>
      this.exec(r, argv).catch((err: unknown) => {
        this.audit(r, "not-started", { error: `could not run the command (${(err as Error)?.message ?? String(err)})`.slice(0, 500) });
        return "not-started" as const;
      }),
    );
    this.chains.set(key, next);
    void next.finally(() => {
      this.pending -= 1;
      if (this.chains.get(key) === next) this.chains.delete(key);
    });
    return next;
  }

  /** Waits for every queued hook (tests, clean stop). */
  async idle(): Promise<void> {
    for (let i = 0; i < 100 && this.chains.size > 0; i += 1) await Promise.all([...this.chains.values()]);
  }

  private async exec(r: HookRun, template: readonly string[]): Promise<HookOutcome> {
    const argv = expandHookArgv(template, {
      ip: r.ip,
      port: String(r.app.port),
      protocol: r.app.protocol,
      duration: String(r.durationSeconds),
      app: r.app.name,
    });
    const [program, ...args] = argv as [string, ...string[]];
    const started = Date.now();
    const result = await execa(program, args, {
      shell: false,
      stdin: "ignore",
      reject: false,
      timeout: this.timeoutMs,
      forceKillAfterDelay: 2000,
      maxBuffer: this.maxOutputBytes,
      encoding: "utf8",
      stripFinalNewline: true,
      cwd: "/",
    });
    const tookMs = Date.now() - started;
    const fields = { exitCode: result.exitCode, tookMs };
    if (!result.failed) {
      this.audit(r, "ok", fields);
      return "ok";
    }
    const outcome: HookOutcome = result.timedOut ? "timeout" : result.exitCode === undefined && !result.isTerminated ? "not-started" : "failed";
    const stderr = typeof result.stderr === "string" ? result.stderr.slice(0, LOGGED_OUTPUT_CHARS) : "";
    const why = result.timedOut
      ? `timed out after ${this.timeoutMs} ms`
      : result.isMaxBuffer
        ? `printed more than ${this.maxOutputBytes} bytes`
        : result.exitCode === undefined && !result.isTerminated
          ? `could not start ${program} (${(result.cause as NodeJS.ErrnoException | undefined)?.code ?? "error"})`
          : result.isTerminated
            ? `killed by ${result.signal ?? "a signal"}`
            : `exit code ${result.exitCode}`;
    this.audit(r, outcome, { ...fields, error: why, stderr });
    return outcome;
  }

  private audit(r: HookRun, outcome: HookOutcome, fields: Record<string, unknown>): void {
    const line = {
      audit: true,
      event: outcome === "ok" ? "hook.ran" : "hook.failed",
      hook: r.kind,
      reason: r.reason,
      app: r.app.name,
      ip: r.ip,
      port: r.app.port,
      protocol: r.app.protocol,
      outcome,
      ...fields,
    };
    if (outcome === "ok") this.log.info(line, `${r.kind} hook of ${r.app.name} ran for ${r.ip}`);
    else this.log.warn(line, `${r.kind} hook of ${r.app.name} for ${r.ip} ${outcome}: ${String(fields.error ?? "")}`);
  }
}
