import { execa } from "execa";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { sleep } from "./util.js";

export type OutputStream = "stdout" | "stderr";

export interface OutputLine {
  readonly stream: OutputStream;
  readonly line: string;
  /** Date.now() when the line arrived. */
  readonly at: number;
}

export interface ExitInfo {
  /** Exit code, or undefined when the process ended by a signal. */
  readonly exitCode: number | undefined;
  /** Signal name (e.g. "SIGTERM") when the process ended by a signal. */
  readonly signal: string | undefined;
}

export type LineMatcher = RegExp | ((line: string) => boolean);

export interface SpawnOptions {
  /** Extra environment variables (merged over the current environment). */
  env?: Record<string, string>;
  cwd?: string;
  /** Run the command as this user/group through `setpriv --reuid --regid --clear-groups`. */
  runAs?: { user: string; group: string };
  /** A short label for diagnostics (defaults to the file name). */
  label?: string;
  /** At most this many lines are kept (oldest dropped). Default 5000. */
  maxLines?: number;
}

/** A child process started inside a namespace and owned by its topology (killed by `destroy()`). */
export interface ManagedProcess {
  readonly label: string;
  readonly host: string;
  readonly pid: number | undefined;
  /** The argv that was started (for diagnostics), e.g. ["ip","netns","exec","kpab12cd-srv","node",...]. */
  readonly command: readonly string[];
  /** Every captured line of stdout and stderr in arrival order (bounded by maxLines). */
  readonly lines: readonly OutputLine[];
  /** Resolves once when the process has ended; never rejects. */
  readonly exited: Promise<ExitInfo>;
  /** Undefined while the process runs. */
  readonly exitInfo: ExitInfo | undefined;
  /**
   * Resolves with the first line (already captured or arriving later) that matches; rejects when
   * `timeoutMs` passes or the process exits first. The error message carries the output's tail.
   */
  waitForLine(matcher: LineMatcher, timeoutMs: number): Promise<string>;
  /** Sends a signal to the process group (no-op when it has ended). */
  signal(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs` (default 2000). Resolves when it has ended. Never rejects. */
  stop(graceMs?: number): Promise<ExitInfo>;
  /** The last `maxLines` lines as text, each prefixed with the stream name. */
  tail(maxLines?: number): string;
}

function matches(matcher: LineMatcher, line: string): boolean {
  return typeof matcher === "function" ? matcher(line) : matcher.test(line);
}

interface Waiter {
  matcher: LineMatcher;
  resolve: (line: string) => void;
}

export class ManagedChild implements ManagedProcess {
  readonly label: string;
  readonly host: string;
  readonly command: readonly string[];
  readonly lines: OutputLine[] = [];
  readonly exited: Promise<ExitInfo>;
  exitInfo: ExitInfo | undefined;
  readonly pid: number | undefined;
  private readonly waiters = new Set<Waiter>();
  private readonly maxLines: number;

  constructor(host: string, argv: readonly string[], opts: SpawnOptions) {
    this.host = host;
    this.command = argv;
    this.label = opts.label ?? argv[argv.length - 1] ?? "process";
    this.maxLines = opts.maxLines ?? 5000;
    const [file, ...args] = argv;
    if (file === undefined) throw new Error("spawn: empty command");
    const child = execa(file, args, {
      reject: false,
      buffer: false,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      // Own process group, so stop() reaches grandchildren (e.g. a long-lived `nft -i`) and a
      // terminal's Ctrl-C reaches only us (we clean up and stop the children ourselves).
      detached: true,
      cleanup: true,
      env: opts.env ?? {},
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    });
    this.pid = child.pid;
    this.capture(child.stdout, "stdout");
    this.capture(child.stderr, "stderr");
    this.exited = child.then(
      (result) => {
        const info: ExitInfo = { exitCode: result.exitCode, signal: result.signal };
        this.exitInfo = info;
        return info;
      },
      (error: unknown) => {
        const info: ExitInfo = { exitCode: undefined, signal: undefined };
        this.exitInfo = info;
        this.lines.push({ stream: "stderr", line: `[testbed] spawn failed: ${String(error)}`, at: Date.now() });
        return info;
      },
    );
  }

  private capture(stream: Readable | null, name: OutputStream): void {
    if (stream === null) return;
    const rl = createInterface({ input: stream, crlfDelay: Infinity });
    rl.on("line", (line) => {
      this.lines.push({ stream: name, line, at: Date.now() });
      if (this.lines.length > this.maxLines) this.lines.splice(0, this.lines.length - this.maxLines);
      for (const waiter of [...this.waiters]) {
        if (matches(waiter.matcher, line)) {
          this.waiters.delete(waiter);
          waiter.resolve(line);
        }
      }
    });
  }

  waitForLine(matcher: LineMatcher, timeoutMs: number): Promise<string> {
    const found = this.lines.find((l) => matches(matcher, l.line));
    if (found !== undefined) return Promise.resolve(found.line);
    return new Promise<string>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = {
        matcher,
        resolve: (line) => {
          if (timer !== undefined) clearTimeout(timer);
          resolve(line);
        },
      };
      const fail = (why: string): void => {
        if (!this.waiters.delete(waiter)) return;
        if (timer !== undefined) clearTimeout(timer);
        reject(new Error(`${this.label} (${this.host}): ${why} while waiting for ${String(matcher)}\n--- output tail ---\n${this.tail(40)}`));
      };
      this.waiters.add(waiter);
      timer = setTimeout(() => fail(`no matching line within ${timeoutMs} ms`), timeoutMs);
      void this.exited.then((info) => {
        // Give readline a moment to deliver the last lines before declaring failure.
        setTimeout(() => fail(`process exited (code ${String(info.exitCode)}, signal ${String(info.signal)})`), 50);
      });
    });
  }

  signal(signal: NodeJS.Signals): void {
    if (this.exitInfo !== undefined || this.pid === undefined) return;
    try {
      process.kill(-this.pid, signal);
    } catch {
      try {
        process.kill(this.pid, signal);
      } catch {
        /* already gone */
      }
    }
  }

  async stop(graceMs = 2000): Promise<ExitInfo> {
    if (this.exitInfo !== undefined) return this.exitInfo;
    this.signal("SIGTERM");
    const early = await Promise.race([this.exited, sleep(graceMs).then(() => undefined)]);
    if (early !== undefined) {
      this.signal("SIGKILL"); // stray grandchildren in the group
      return early;
    }
    this.signal("SIGKILL");
    const late = await Promise.race([this.exited, sleep(2000).then(() => undefined)]);
    return late ?? { exitCode: undefined, signal: "SIGKILL" };
  }

  /** Synchronous best-effort kill for the process-exit safety net. */
  killNow(): void {
    this.signal("SIGKILL");
  }

  tail(maxLines = 60): string {
    return this.lines
      .slice(-maxLines)
      .map((l) => `${l.stream === "stderr" ? "ERR" : "OUT"}| ${l.line}`)
      .join("\n");
  }
}
