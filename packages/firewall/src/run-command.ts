import { spawn } from "node:child_process";

// The helper's one way to run a program (nft, iptables, ipset, conntrack, vbash, hooks): an absolute
// path and an argument array, never a shell; never rejects, the caller reads the outcome. The subset
// of execa's options and result fields the helper uses, in node:child_process alone.

export interface RunOptions {
  readonly input?: string;
  readonly stdin?: "ignore";
  /** Milliseconds until SIGTERM. */
  readonly timeout: number;
  /** Milliseconds after SIGTERM until SIGKILL (default 2 s). */
  readonly forceKillAfterDelay?: number;
  /** Bytes of stdout or of stderr past which the command is stopped (default 100 MiB). */
  readonly maxBuffer?: number;
  readonly cwd?: string;
}

export interface RunResult {
  /** undefined when the program did not start or was killed. */
  readonly exitCode: number | undefined;
  readonly signal: NodeJS.Signals | undefined;
  readonly stdout: string;
  readonly stderr: string;
  readonly failed: boolean;
  readonly timedOut: boolean;
  readonly isMaxBuffer: boolean;
  /** Killed by a signal. */
  readonly isTerminated: boolean;
  /** Why the program could not start (its message is also in stderr). */
  readonly cause?: Error;
}

const stripFinalNewline = (s: string): string => s.replace(/\r?\n$/, "");

export function runCommand(file: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const maxBuffer = options.maxBuffer ?? 100 * 1024 * 1024;
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      shell: false,
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    });
    const out = { stdout: "", stderr: "" };
    let timedOut = false;
    let isMaxBuffer = false;
    let startError: Error | undefined;
    let forceKill: NodeJS.Timeout | undefined;
    const stop = (): void => {
      child.kill("SIGTERM");
      forceKill ??= setTimeout(() => child.kill("SIGKILL"), options.forceKillAfterDelay ?? 2000);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, options.timeout);
    for (const name of ["stdout", "stderr"] as const) {
      child[name]!.setEncoding("utf8");
      child[name]!.on("data", (chunk: string) => {
        if (isMaxBuffer) return;
        if (out[name].length + chunk.length > maxBuffer) {
          out[name] += chunk.slice(0, maxBuffer - out[name].length);
          isMaxBuffer = true;
          stop();
          return;
        }
        out[name] += chunk;
      });
    }
    if (options.input !== undefined) {
      // A program that exits without reading its input is reported by its exit status, not by EPIPE.
      child.stdin!.on("error", () => undefined);
      child.stdin!.end(options.input);
    }
    child.on("error", (err) => (startError = err));
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      clearTimeout(forceKill);
      const exitCode = startError !== undefined ? undefined : (code ?? undefined);
      resolve({
        exitCode,
        signal: signal ?? undefined,
        stdout: stripFinalNewline(out.stdout),
        stderr: startError !== undefined ? startError.message : stripFinalNewline(out.stderr),
        failed: exitCode !== 0 || timedOut || isMaxBuffer || startError !== undefined,
        timedOut,
        isMaxBuffer,
        isTerminated: signal !== null,
        ...(startError !== undefined ? { cause: startError } : {}),
      });
    });
  });
}
