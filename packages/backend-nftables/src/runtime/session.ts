import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";

export class NftSessionError extends Error {
  readonly code = "NFT_SESSION_FAILED";
  constructor(
    message: string,
    readonly stderr: string,
    /** "refused": nft rejected this transaction (nothing applied); "session": the process failed, outcome unknown to it. */
    readonly kind: "refused" | "session" = "session",
  ) {
    super(message);
    this.name = "NftSessionError";
  }
}

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (err: NftSessionError) => void;
  timer: NodeJS.Timeout;
}

export interface NftSessionOptions {
  /** An interactive nft reading commands on stdin; `table` holds `syncSet`; `timeoutMs` per transaction. */
  command: string;
  args?: readonly string[];
  table: string;
  syncSet?: string;
  timeoutMs?: number;
}

/** What `describe meta mark` prints: the end of one transaction's answer. */
const ANSWER_END = /^meta expression, datatype mark[^\n]*\n/m;
const SEQ_MODULUS = 0x7fffffff;

/**
 * A long-lived `nft -i` (a process start costs 15-20 ms, a line written to a running one under 1 ms).
 * Each input line is one transaction and nft reports failures only on stderr, so every transaction also
 * replaces the sync set's one element with its sequence number, and the next line lists that set: the
 * number is on stdout if and only if the transaction committed. A `describe` line, whose output never
 * depends on the ruleset, ends each answer, so stdout stays in step even when the listing fails.
 *
 * The session never creates anything: table and sync set come with the ruleset. When they are gone
 * (`nft flush ruleset`) every transaction fails whole, and the table stays gone until the helper
 * installs all of it, rather than being re-created empty (fail closed).
 */
export class NftSession {
  private proc: ChildProcessWithoutNullStreams | undefined;
  private stdout = "";
  private stderr = "";
  private seq = 0;
  private readonly waiters: Waiter[] = [];
  private readonly syncSet: string;
  private readonly timeoutMs: number;

  constructor(private readonly options: NftSessionOptions) {
    this.syncSet = options.syncSet ?? "kp_sync";
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** Apply one-line nft commands as one transaction; resolves once the kernel committed it. */
  apply(commands: readonly string[]): Promise<void> {
    if (commands.some((c) => c.includes("\n") || c.includes("\r") || c.includes("#"))) {
      return Promise.reject(new NftSessionError("nft session: commands must be single lines without comments", "", "refused"));
    }
    const proc = this.ensureStarted();
    this.seq = (this.seq % SEQ_MODULUS) + 1;
    const seq = this.seq;
    const { table } = this.options;
    const set = `${table} ${this.syncSet}`;
    const lines = [
      [...commands, `flush set ${set}`, `add element ${set} { ${seq} timeout 1h }`].join("; "), // empty `commands`: a no-op that proves the session works
      `list set ${set}`,
      "describe meta mark",
    ];
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(`nft did not answer within ${this.timeoutMs} ms`), this.timeoutMs);
      this.waiters.push({ seq, resolve, reject, timer });
      proc.stdin.write(`${lines.join("\n")}\n`);
    });
  }

  close(): void {
    this.fail("nft session closed");
  }

  private ensureStarted(): ChildProcessWithoutNullStreams {
    if (this.proc && this.proc.exitCode === null && !this.proc.killed) return this.proc;
    // Its own process group: a Ctrl-C or a signal to the helper's group must not kill nft in the
    // middle of a transaction the helper is still waiting for. It exits when its stdin closes.
    const proc = spawn(this.options.command, [...(this.options.args ?? ["-i"])], { stdio: ["pipe", "pipe", "pipe"], detached: true });
    this.proc = proc;
    this.stdout = "";
    this.stderr = "";
    proc.stdout.setEncoding("utf8");
    proc.stderr.setEncoding("utf8");
    // A killed process's last output can still arrive after its successor started: it must never be
    // read as an answer to the successor's transactions.
    proc.stdout.on("data", (chunk: string) => this.proc === proc && this.onStdout(chunk));
    proc.stderr.on("data", (chunk: string) => void (this.proc === proc && (this.stderr = (this.stderr + chunk).slice(-4000))));
    proc.on("error", (err) => this.fail(`cannot run ${this.options.command}: ${err.message}`));
    proc.on("close", () => this.proc === proc && this.fail("nft exited"));
    proc.stdin.on("error", () => this.fail("nft closed its input"));
    return proc;
  }

  private onStdout(chunk: string): void {
    this.stdout += chunk;
    for (let end = ANSWER_END.exec(this.stdout); end !== null; end = ANSWER_END.exec(this.stdout)) {
      const listing = this.stdout.slice(0, end.index);
      this.stdout = this.stdout.slice(end.index + end[0].length);
      const waiter = this.waiters.shift();
      if (!waiter) continue;
      clearTimeout(waiter.timer);
      const match = /elements = \{ 0x([0-9a-f]+)/.exec(listing);
      if (match && Number.parseInt(match[1] ?? "", 16) === waiter.seq) {
        waiter.resolve();
      } else {
        // the error text is on stderr, which may trail stdout by a moment
        setTimeout(() => {
          const text = this.stderr.trim();
          this.stderr = "";
          waiter.reject(new NftSessionError(`nft refused the change: ${text.split("\n")[0] ?? "unknown error"}`, text, "refused"));
        }, 5);
      }
    }
  }

  /** Out of step or dead: fail everything waiting and start afresh next time. */
  private fail(reason: string): void {
    const proc = this.proc;
    this.proc = undefined;
    proc?.kill("SIGKILL");
    const text = this.stderr.trim();
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new NftSessionError(`${reason}${text ? `: ${text.split("\n")[0]}` : ""}`, text));
    }
  }
}
