import { mkdirSync, readFileSync, statSync } from "node:fs";
import { writeFileDurably } from "@knockport/durable-file";
import { join } from "node:path";
import { parseIpAddress, type IpAddress, type KnockStep } from "@knockport/protocol";

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

/** The helper's view of who holds which grant until when. The kernel enforces; this is for list/close/restore. */
export class LeaseBook {
  private readonly leases = new Map<string, Lease>();

  get(step: KnockStep, app: string, ip: IpAddress): Lease | undefined {
    return this.leases.get(leaseKey(step, app, ip));
  }

  /** Returns the lease it replaced, if any. */
  put(lease: Lease): Lease | undefined {
    const key = leaseKey(lease.step, lease.app, lease.ip);
    const previous = this.leases.get(key);
    this.leases.set(key, lease);
    return previous;
  }

  delete(step: KnockStep, app: string, ip: IpAddress): Lease | undefined {
    const key = leaseKey(step, app, ip);
    const previous = this.leases.get(key);
    this.leases.delete(key);
    return previous;
  }

  /** Step-1 leases share one HTTPS set element per address: it must live as long as the longest of them. */
  latestStep1Deadline(ip: IpAddress, nowMs: number): number | undefined {
    let latest: number | undefined;
    for (const l of this.leases.values()) {
      if (l.step === 1 && l.ip === ip && l.expiresAtMs > nowMs && (latest === undefined || l.expiresAtMs > latest)) {
        latest = l.expiresAtMs;
      }
    }
    return latest;
  }

  takeExpired(nowMs: number): Lease[] {
    const expired: Lease[] = [];
    for (const [key, l] of this.leases) {
      if (l.expiresAtMs <= nowMs) {
        expired.push(l);
        this.leases.delete(key);
      }
    }
    return expired;
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
  leases: { app: string; ip: string; step: number; expiresAtMs: number }[];
}

/**
 * Leases on disk, so a restarted helper puts live grants back with their remaining time.
 * Written whole to a temporary file, fsynced, then renamed over the old one: a crash leaves
 * either the old or the new journal, never a torn one.
 */
export class LeaseJournal {
  readonly file: string;

  constructor(readonly dir: string) {
    this.file = join(dir, "leases.json");
  }

  prepare(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const st = statSync(this.dir);
    if (!st.isDirectory()) throw new JournalError(`--state-dir ${this.dir} is not a directory`);
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
    try {
      const parsed = JSON.parse(text) as JournalFile;
      if (parsed?.version !== 1 || !Array.isArray(parsed.leases)) throw new Error("unknown format");
      const leases: Lease[] = [];
      for (const raw of parsed.leases) {
        const ip = typeof raw?.ip === "string" ? parseIpAddress(raw.ip) : undefined;
        if (!ip || (raw.step !== 1 && raw.step !== 2) || typeof raw.app !== "string" || !Number.isFinite(raw.expiresAtMs)) {
          continue;
        }
        leases.push({ app: raw.app, ip, step: raw.step, expiresAtMs: raw.expiresAtMs });
      }
      return { leases };
    } catch (err) {
      return { leases: [], problem: `ignoring malformed ${this.file} (${(err as Error).message})` };
    }
  }

  save(leases: readonly Lease[]): void {
    const body: JournalFile = {
      version: 1,
      leases: leases.map((l) => ({ app: l.app, ip: l.ip, step: l.step, expiresAtMs: l.expiresAtMs })),
    };
    try {
      writeFileDurably(this.file, JSON.stringify(body));
    } catch (err) {
      throw new JournalError(`cannot write ${this.file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
}
