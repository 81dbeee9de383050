import { execa } from "execa";
import { expandHookArgv } from "@knockport/config";
import type { HookApp, HookKind, HookOutcome, LeaseTarget } from "./types.js";

export interface CommandLimits {
  /** Per run; the command is killed (SIGTERM, then SIGKILL 2 s later) after this. */
  readonly timeoutMs: number;
  /** Captured output per stream; a command printing more counts as failed. */
  readonly maxOutputBytes: number;
}

export const DEFAULT_COMMAND_LIMITS: CommandLimits = { timeoutMs: 10_000, maxOutputBytes: 16 * 1024 };
const REPORTED_STDERR_CHARS = 1000;

export interface CommandResult {
  readonly outcome: HookOutcome;
  readonly tookMs: number;
  readonly exitCode?: number;
  /** Why it did not succeed, for the log line. */
  readonly error?: string;
  readonly stderr?: string;
}

/**
 * Runs one hook: an argument vector (no shell, no PATH lookup), placeholders replaced inside each
 * argument, stdin closed, cwd /, a timeout and bounded output. Never throws.
 */
export async function runHookCommand(
  app: HookApp,
  kind: HookKind,
  target: LeaseTarget,
  durationSeconds: number,
  limits: CommandLimits = DEFAULT_COMMAND_LIMITS,
): Promise<CommandResult> {
  const template = kind === "on_open" ? app.onOpen : app.onClose;
  if (template === undefined) return { outcome: "ok", tookMs: 0 };
  const [program, ...args] = expandHookArgv(template, {
    ip: target.ip,
    port: String(target.port),
    protocol: target.protocol,
    duration: String(durationSeconds),
    app: app.name,
  }) as [string, ...string[]];
  const started = Date.now();
  try {
    const r = await execa(program, args, {
      shell: false,
      stdin: "ignore",
      reject: false,
      timeout: limits.timeoutMs,
      forceKillAfterDelay: 2000,
      maxBuffer: limits.maxOutputBytes,
      encoding: "utf8",
      stripFinalNewline: true,
      cwd: "/",
    });
    const tookMs = Date.now() - started;
    if (!r.failed) return { outcome: "ok", tookMs, exitCode: r.exitCode };
    const notStarted = r.exitCode === undefined && !r.isTerminated && !r.timedOut;
    const error = r.timedOut
      ? `timed out after ${limits.timeoutMs} ms`
      : r.isMaxBuffer
        ? `printed more than ${limits.maxOutputBytes} bytes`
        : notStarted
          ? `could not start ${program} (${(r.cause as NodeJS.ErrnoException | undefined)?.code ?? "error"})`
          : r.isTerminated
            ? `killed by ${r.signal ?? "a signal"}`
            : `exit code ${r.exitCode}`;
    const stderr = typeof r.stderr === "string" ? r.stderr.slice(0, REPORTED_STDERR_CHARS) : "";
    return { outcome: r.timedOut ? "timeout" : notStarted ? "not-started" : "failed", tookMs, exitCode: r.exitCode, error, stderr };
  } catch (err) {
    return { outcome: "not-started", tookMs: Date.now() - started, error: `could not run ${program} (${(err as Error).message})`.slice(0, 500) };
  }
}
