import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileDurably } from "@knockport/durable-file";
import { parseIpAddress } from "@knockport/protocol";
import type { LeaseTarget } from "./types.js";

/** Key of one (app, address) pair. */
export function leaseKey(app: string, ip: string): string {
  return `${app}|${ip}`;
}

export class RecordError extends Error {
  override readonly name = "RecordError";
  readonly code = "HOOKS_RECORD_UNREADABLE";
}

const FORMAT = 1;
const MAX_RECORD_BYTES = 64 * 1024 * 1024;

/**
 * The addresses whose on_open may have run and whose on_close has not yet succeeded, per app: what
 * must still be closed after a crash or restart. An entry is written (fsync'd) before on_open starts
 * and removed only once on_close succeeded, so no restart can forget a close.
 */
export class OpenRecord {
  private readonly entries = new Map<string, LeaseTarget>();
  private readonly perApp = new Map<string, number>();
  private dirty = false;

  private constructor(private readonly file: string) {}

  /** Reads `<stateDir>/hooks.json` (absent: empty). A torn or foreign file is an error, never ignored. */
  static load(stateDir: string): OpenRecord {
    const record = new OpenRecord(join(stateDir, "hooks.json"));
    let text: string;
    try {
      text = readFileSync(record.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return record;
      throw new RecordError(`${record.file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    if (text.length > MAX_RECORD_BYTES) throw new RecordError(`${record.file}: larger than ${MAX_RECORD_BYTES} bytes`);
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw new RecordError(`${record.file}: not JSON; move it away only after running its apps' on_close by hand`);
    }
    const open = (doc as { format?: unknown; open?: unknown }).open;
    if ((doc as { format?: unknown }).format !== FORMAT || !Array.isArray(open)) {
      throw new RecordError(`${record.file}: not a knockport-hooks record (format ${FORMAT})`);
    }
    for (const e of open as unknown[]) {
      const { app, port, protocol } = (e ?? {}) as { app?: unknown; port?: unknown; protocol?: unknown };
      const ip = typeof (e as { ip?: unknown })?.ip === "string" ? parseIpAddress((e as { ip: string }).ip) : undefined;
      const valid =
        typeof app === "string" && app.length > 0 && app.length <= 256 && ip !== undefined &&
        Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65535 && (protocol === "tcp" || protocol === "udp");
      if (!valid) throw new RecordError(`${record.file}: malformed entry ${JSON.stringify(e).slice(0, 200)}`);
      record.set({ app, ip, port: port as number, protocol });
    }
    return record;
  }

  has(app: string, ip: string): boolean {
    return this.entries.has(leaseKey(app, ip));
  }

  size(): number {
    return this.entries.size;
  }

  countFor(app: string): number {
    return this.perApp.get(app) ?? 0;
  }

  all(): readonly LeaseTarget[] {
    return [...this.entries.values()];
  }

  /** Adds in memory; the caller runs on_open only after the next flush() returned. */
  add(target: LeaseTarget): void {
    this.set(target);
    this.dirty = true;
  }

  /** Forgets a closed pair; written with the next flush (a lost removal only repeats an on_close). */
  remove(app: string, ip: string): void {
    if (!this.entries.delete(leaseKey(app, ip))) return;
    this.perApp.set(app, (this.perApp.get(app) ?? 1) - 1);
    this.dirty = true;
  }

  private set(t: LeaseTarget): void {
    const key = leaseKey(t.app, t.ip);
    if (!this.entries.has(key)) this.perApp.set(t.app, (this.perApp.get(t.app) ?? 0) + 1);
    this.entries.set(key, { app: t.app, ip: t.ip, port: t.port, protocol: t.protocol });
  }

  flush(): void {
    if (this.dirty) this.write();
  }

  private write(): void {
    const doc = { format: FORMAT, open: [...this.entries.values()] };
    writeFileDurably(this.file, `${JSON.stringify(doc)}\n`);
    this.dirty = false;
  }
}
