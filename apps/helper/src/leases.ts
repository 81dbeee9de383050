import { ipFamily, type IpAddress, type KnockStep } from "@knockport/protocol";

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

/**
 * The helper's view of who holds which grant until when. The kernel enforces, and its timed set
 * elements are what a restarted helper reads back (service.ts start); this copy serves list, close,
 * max_leases and the re-apply after a reload from outside, which empties the kernel's sets.
 */
export class LeaseBook {
  private readonly leases = new Map<string, Lease>();
  /** Step-1 leases by address (the HTTPS element's deadline), so a knock never walks the whole book. */
  private readonly step1ByIp = new Map<IpAddress, Map<string, Lease>>();
  private readonly buckets = new Map<string, Map<string, Lease>>();

  get(step: KnockStep, app: string, ip: IpAddress): Lease | undefined {
    return this.leases.get(leaseKey(step, app, ip));
  }

  /** Returns the lease it replaced, if any. */
  put(lease: Lease): Lease | undefined {
    const key = leaseKey(lease.step, lease.app, lease.ip);
    const previous = this.leases.get(key);
    this.leases.set(key, lease);
    addTo(this.buckets, bucketKey(lease.step, lease.app, lease.ip), key, lease);
    if (lease.step === 1) addTo(this.step1ByIp, lease.ip, lease.app, lease);
    return previous;
  }

  delete(step: KnockStep, app: string, ip: IpAddress): Lease | undefined {
    const key = leaseKey(step, app, ip);
    const previous = this.leases.get(key);
    if (!previous) return undefined;
    this.leases.delete(key);
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

  all(): Lease[] {
    return [...this.leases.values()];
  }

  get size(): number {
    return this.leases.size;
  }
}
