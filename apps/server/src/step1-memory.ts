import type { IpAddress } from "@knockport/protocol";

interface Step1Record {
  keyIndex: number;
  expiresAtMs: number;
}

/**
 * Which key pair an address used in step 1, for how long. Step 2 is accepted only with the HTTPS
 * key of that pair, for the same app, within step2_https_duration. Only valid step-1 knocks add
 * entries, and the map is pruned as it grows, so an attacker cannot inflate it.
 */
export class Step1Memory {
  private readonly records = new Map<string, Step1Record>();

  constructor(
    private readonly maxEntries = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  remember(app: string, ip: IpAddress, keyIndex: number, durationSeconds: number): void {
    const key = `${app}\u0000${ip}`;
    this.records.delete(key); // re-insert so Map order stays oldest-first
    if (this.records.size >= this.maxEntries) this.prune();
    if (this.records.size >= this.maxEntries) {
      const oldest = this.records.keys().next().value;
      if (oldest !== undefined) this.records.delete(oldest);
    }
    this.records.set(key, { keyIndex, expiresAtMs: this.now() + durationSeconds * 1000 });
  }

  forget(app: string, ip: IpAddress): void {
    this.records.delete(`${app}\u0000${ip}`);
  }

  /** The key index used in a live step 1, or undefined. */
  lookup(app: string, ip: IpAddress): number | undefined {
    const key = `${app}\u0000${ip}`;
    const rec = this.records.get(key);
    if (!rec) return undefined;
    if (rec.expiresAtMs <= this.now()) {
      this.records.delete(key);
      return undefined;
    }
    return rec.keyIndex;
  }

  private prune(): void {
    const t = this.now();
    for (const [key, rec] of this.records) if (rec.expiresAtMs <= t) this.records.delete(key);
  }

  get size(): number {
    return this.records.size;
  }
}
