import { randomBytes } from "node:crypto";
import { closeSync, constants, fsyncSync, mkdirSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import { checkPrivateDir, fsyncDir, helperStateFiles, openNoFollow, writeFileDurably } from "@knockport/durable-file";
import { ipFamily, parseIpAddress, type IpAddress, type KnockStep } from "@knockport/protocol";

export interface Lease {
  readonly app: string;
  readonly ip: IpAddress;
  readonly step: KnockStep;
  /** Epoch milliseconds. */
  readonly expiresAtMs: number;
}

function leaseKey(step: KnockStep, app: string, ip: IpAddress): string {
  return `${step}|${app}|${ip}`;
}

/** Leases of one app, step and address family: what max_leases bounds (one kernel set each). */
function bucketKey(step: KnockStep, app: string, ip: IpAddress): string {
  return `${step}|${app}|${ipFamily(ip)}`;
}

function addTo<K, V>(index: Map<K, Map<string, V>>, outer: K, inner: string, value: V): void {
  let m = index.get(outer);
  if (!m) index.set(outer, (m = new Map()));
  m.set(inner, value);
}

/** Drops an emptied inner map too: an index never keeps one per address that came and went. */
function removeFrom<K, V>(index: Map<K, Map<string, V>>, outer: K, inner: string): void {
  const m = index.get(outer);
  m?.delete(inner);
  if (m?.size === 0) index.delete(outer);
}

/** A lease's identity in the book and the journal (its deadline aside). */
export interface LeaseId {
  readonly app: string;
  readonly ip: IpAddress;
  readonly step: KnockStep;
}

/** The helper's view of who holds which grant until when. The kernel enforces; this is for list/close/restore. */
export class LeaseBook {
  private readonly leases = new Map<string, Lease>();
  /** Step-1 leases by address (the HTTPS element's deadline), so a knock never walks the whole book. */
  private readonly step1ByIp = new Map<IpAddress, Map<string, Lease>>();
  /** Leases put or deleted since the last takeChanged(): what the journal has yet to record. */
  private readonly changed = new Map<string, LeaseId>();
  private readonly buckets = new Map<string, Map<string, Lease>>();

  get(step: KnockStep, app: string, ip: IpAddress): Lease | undefined {
    return this.leases.get(leaseKey(step, app, ip));
  }

  /** Returns the lease it replaced, if any. */
  put(lease: Lease): Lease | undefined {
    const key = leaseKey(lease.step, lease.app, lease.ip);
    const previous = this.leases.get(key);
    this.leases.set(key, lease);
    this.changed.set(key, lease);
    addTo(this.buckets, bucketKey(lease.step, lease.app, lease.ip), key, lease);
    if (lease.step === 1) addTo(this.step1ByIp, lease.ip, lease.app, lease);
    return previous;
  }

  delete(step: KnockStep, app: string, ip: IpAddress): Lease | undefined {
    const key = leaseKey(step, app, ip);
    const previous = this.leases.get(key);
    if (!previous) return undefined;
    this.leases.delete(key);
    this.changed.set(key, previous);
    removeFrom(this.buckets, bucketKey(step, app, ip), key);
    if (step === 1) removeFrom(this.step1ByIp, ip, app);
    return previous;
  }

  /**
   * Whether the app's leases of `step` in `ip`'s family number at least `limit` (live ones only). The
   * book holds ended leases until the sweep records them, so at the limit the bucket is walked: at
   * most `limit` entries, and only for a knock that would otherwise be refused.
   */
  isFull(step: KnockStep, app: string, ip: IpAddress, limit: number, nowMs: number): boolean {
    const inBucket = this.buckets.get(bucketKey(step, app, ip));
    if (inBucket === undefined || inBucket.size < limit) return false;
    let live = 0;
    for (const l of inBucket.values()) if (l.expiresAtMs > nowMs && ++live >= limit) return true;
    return false;
  }

  /** Step-1 leases share one HTTPS set element per address: it must live as long as the longest of them. */
  latestStep1Deadline(ip: IpAddress, nowMs: number): number | undefined {
    let latest: number | undefined;
    for (const l of this.step1ByIp.get(ip)?.values() ?? []) {
      if (l.expiresAtMs > nowMs && (latest === undefined || l.expiresAtMs > latest)) latest = l.expiresAtMs;
    }
    return latest;
  }

  live(nowMs: number): Lease[] {
    return this.all().filter((l) => l.expiresAtMs > nowMs);
  }

  hasExpired(nowMs: number): boolean {
    for (const l of this.leases.values()) if (l.expiresAtMs <= nowMs) return true;
    return false;
  }

  takeExpired(nowMs: number): Lease[] {
    const expired = [...this.leases.values()].filter((l) => l.expiresAtMs <= nowMs);
    for (const l of expired) this.delete(l.step, l.app, l.ip);
    return expired;
  }

  /** The current state (the lease, or undefined: gone) of every lease changed since the last call. */
  takeChanged(): { id: LeaseId; lease: Lease | undefined }[] {
    const out = [...this.changed].map(([key, id]) => ({ id, lease: this.leases.get(key) }));
    this.changed.clear();
    return out;
  }

  all(): Lease[] {
    return [...this.leases.values()];
  }

  get size(): number {
    return this.leases.size;
  }
}

export class JournalError extends Error {
  readonly code = "STATE_WRITE_FAILED";
}

interface JournalFile {
  version: 1;
  /** Id of the change log that continues this snapshot (absent: no log applies). */
  log?: string;
  leases: { app: string; ip: string; step: number; expiresAtMs: number }[];
}

/** One change-log line: a lease as it now is, or the end of one. */
type LogRecord = { put: JournalFile["leases"][number] } | { del: { app: string; ip: string; step: number } };

/** A log longer than this is not replayed past it (the log never grows beyond its snapshot plus one group). */
const MAX_LOG_BYTES = 256 * 1024 * 1024;

function toLease(raw: unknown): Lease | undefined {
  const r = raw as Partial<Record<keyof Lease, unknown>> | null;
  const ip = typeof r?.ip === "string" ? parseIpAddress(r.ip) : undefined;
  if (!ip || (r?.step !== 1 && r?.step !== 2) || typeof r.app !== "string" || typeof r.expiresAtMs !== "number" || !Number.isFinite(r.expiresAtMs)) {
    return undefined;
  }
  return { app: r.app, ip, step: r.step, expiresAtMs: r.expiresAtMs };
}

/**
 * Leases on disk, so a restarted helper puts live grants back with their remaining time: a snapshot
 * (leases.json) and a change log (leases.log) that continues it. A commit appends one line per changed
 * lease to the log and fsyncs it, so its cost does not grow with the number of leases; once the log
 * would outgrow the snapshot, the whole book is written as a new snapshot instead (temporary file,
 * fsync, rename: a crash leaves the old snapshot or the new, never a torn one) and the log starts
 * over. The log's first line names the snapshot it continues, so a log left over from an older
 * snapshot (a crash between the two steps) is ignored; a torn last line (a crash mid-append) is
 * dropped: that commit was never acknowledged.
 */
export class LeaseJournal {
  readonly file: string;
  readonly logFile: string;
  /** Size of the current snapshot and of its log, in bytes (the log: 0 when it does not exist yet). */
  private snapshotBytes = 0;
  private logBytes = 0;
  private logId = "";
  /** After a failed write nothing is known of the log's tail: the next commit writes a snapshot. */
  private snapshotNeeded = true;

  constructor(readonly dir: string) {
    const files = helperStateFiles(dir);
    this.file = files.journal;
    this.logFile = files.journalLog;
  }

  prepare(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const st = statSync(this.dir);
    if (!st.isDirectory()) throw new JournalError(`--state-dir ${this.dir} is not a directory`);
    try {
      checkPrivateDir(this.dir, { label: "--state-dir" });
    } catch (err) {
      throw new JournalError((err as Error).message);
    }
  }

  /** Unreadable or malformed journals yield no leases (fail closed) plus a reason to log. */
  load(): { leases: Lease[]; problem?: string } {
    let text: string;
    try {
      text = readFileSync(this.file, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return code === "ENOENT" ? { leases: [] } : { leases: [], problem: `cannot read ${this.file} (${code})` };
    }
    let parsed: JournalFile;
    try {
      parsed = JSON.parse(text) as JournalFile;
      if (parsed?.version !== 1 || !Array.isArray(parsed.leases)) throw new Error("unknown format");
    } catch (err) {
      return { leases: [], problem: `ignoring malformed ${this.file} (${(err as Error).message})` };
    }
    const book = new Map<string, Lease>();
    for (const raw of parsed.leases) {
      const lease = toLease(raw);
      if (lease) book.set(leaseKey(lease.step, lease.app, lease.ip), lease);
    }
    const problem = typeof parsed.log === "string" ? this.replayLog(parsed.log, book) : undefined;
    return problem ? { leases: [...book.values()], problem } : { leases: [...book.values()] };
  }

  /** Applies the log continuing snapshot `id` to `book`; a problem to log, if any. */
  private replayLog(id: string, book: Map<string, Lease>): string | undefined {
    let text: string;
    try {
      if (statSync(this.logFile).size > MAX_LOG_BYTES) return `ignoring ${this.logFile}: larger than ${MAX_LOG_BYTES} bytes`;
      text = readFileSync(this.logFile, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return code === "ENOENT" ? undefined : `cannot read ${this.logFile} (${code})`;
    }
    const lines = text.split("\n");
    if (lines[0] !== JSON.stringify({ log: id })) return undefined; // left over from an older snapshot
    const last = lines.length - 1; // text ends in "\n": lines[last] is "" unless the last append was torn
    for (let i = 1; i <= last; i += 1) {
      const line = lines[i] ?? "";
      if (line === "" && i === last) break;
      let record: LogRecord;
      try {
        record = JSON.parse(line) as LogRecord;
      } catch {
        return i === last ? undefined : `ignoring ${this.logFile} from line ${i + 1} on (malformed)`;
      }
      if ("put" in record) {
        const lease = toLease(record.put);
        if (lease) book.set(leaseKey(lease.step, lease.app, lease.ip), lease);
      } else if ("del" in record && typeof record.del?.app === "string" && typeof record.del.ip === "string") {
        const ip = parseIpAddress(record.del.ip);
        if (ip && (record.del.step === 1 || record.del.step === 2)) book.delete(leaseKey(record.del.step, record.del.app, ip));
      }
    }
    return undefined;
  }

  /** Writes `leases` as the new snapshot; the log starts over. (commit() does this when needed.) */
  save(leases: readonly Lease[]): void {
    const id = randomBytes(8).toString("hex");
    const body: JournalFile = {
      version: 1,
      log: id,
      leases: leases.map((l) => ({ app: l.app, ip: l.ip, step: l.step, expiresAtMs: l.expiresAtMs })),
    };
    const text = JSON.stringify(body);
    this.snapshotNeeded = true;
    try {
      writeFileDurably(this.file, text);
    } catch (err) {
      throw new JournalError(`cannot write ${this.file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    // The old log names the old snapshot: harmless if it stays (a new log replaces it, see commit).
    try {
      rmSync(this.logFile, { force: true });
    } catch {
      /* left for the next log to overwrite */
    }
    this.logId = id;
    this.snapshotBytes = Buffer.byteLength(text);
    this.logBytes = 0;
    this.snapshotNeeded = false;
  }

  /** Records the book's changes since the last commit: appended to the log, or a new snapshot. */
  commit(book: LeaseBook): void {
    const changes = book.takeChanged();
    if (changes.length === 0 && !this.snapshotNeeded) return;
    const lines = changes
      .map(({ id, lease }): LogRecord =>
        lease
          ? { put: { app: lease.app, ip: lease.ip, step: lease.step, expiresAtMs: lease.expiresAtMs } }
          : { del: { app: id.app, ip: id.ip, step: id.step } },
      )
      .map((r) => `${JSON.stringify(r)}\n`)
      .join("");
    const header = this.logBytes === 0 ? `${JSON.stringify({ log: this.logId })}\n` : "";
    const bytes = Buffer.byteLength(header + lines);
    if (this.snapshotNeeded || this.logBytes + bytes > this.snapshotBytes) {
      this.save(book.all());
      return;
    }
    try {
      this.snapshotNeeded = true;
      const { O_WRONLY, O_CREAT, O_TRUNC, O_APPEND } = constants;
      const fd = openNoFollow(this.logFile, O_WRONLY | O_CREAT | (header !== "" ? O_TRUNC : O_APPEND), 0o600);
      try {
        writeSync(fd, header + lines);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      if (header !== "") fsyncDir(this.dir); // a new log's directory entry must survive a crash too
    } catch (err) {
      throw new JournalError(`cannot write ${this.logFile} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    this.logBytes += bytes;
    this.snapshotNeeded = false;
  }
}
