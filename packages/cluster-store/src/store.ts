import type { IpAddress } from "@knockport/protocol";
import type { StoreConnection } from "./connect.js";
import { leaseField, parseLease, parseStep1, type ClusterMessage, type LeaseRecord, type Step1Record } from "./records.js";

/** Most leases a catch-up reads; the config allows 100,000 per app and family by default, so this is per call. */
export const MAX_CATCH_UP_LEASES = 1_000_000;

/** Deletes KEYS[1] only while it still holds ARGV[1]: a release never frees someone else's spend. */
const DELETE_IF_EQUAL = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/**
 * The cluster's shared state under one key prefix. Key layout (P = key_prefix):
 *   P:totp:<secret id>:<time step>   a spent TOTP token (SET NX PX, gone when it can no longer validate)
 *   P:step1:<app>:<ip>               a step-1 window (JSON, PX until it closes)
 *   P:leases                         hash: "<app> <ip>" → {"deadline": epoch ms}, ended ones pruned
 *   P:rl:<step>:…                    @fastify/rate-limit's counters
 *   P:events                         channel: step1 / lease / revoke messages
 * Every method throws when the store cannot answer; callers decide whether that fails closed.
 */
export class ClusterStore {
  readonly channel: string;
  private readonly leasesKey: string;

  constructor(
    readonly redis: StoreConnection,
    readonly prefix: string,
  ) {
    this.channel = `${prefix}:events`;
    this.leasesKey = `${prefix}:leases`;
  }

  /** The rate limiter's key namespace for one listener. */
  rateLimitNamespace(step: 1 | 2): string {
    return `${this.prefix}:rl:${step}:`;
  }

  /**
   * Marks a TOTP token spent across the cluster: true when this call was the first (SET NX), false
   * when any gateway spent it before. `owner` identifies this spend for `releaseToken`.
   */
  async spendToken(secretId: string, counter: number, ttlMs: number, owner: string): Promise<boolean> {
    const answer = await this.redis.set(this.tokenKey(secretId, counter), owner, "PX", Math.max(1, Math.ceil(ttlMs)), "NX");
    return answer === "OK";
  }

  /** Gives back a token this gateway spent (`owner` must match), after a knock failed on our side. */
  async releaseToken(secretId: string, counter: number, owner: string): Promise<void> {
    await this.redis.eval(DELETE_IF_EQUAL, 1, this.tokenKey(secretId, counter), owner);
  }

  /** Records a step-1 window and tells every gateway, so step 2 may arrive at any of them. */
  async putStep1(record: Step1Record, now: number): Promise<void> {
    const ttl = record.deadline - now;
    if (ttl <= 0) return;
    const value = JSON.stringify(record);
    await this.redis.set(this.step1Key(record.app, record.ip), value, "PX", ttl);
    await this.publish({ kind: "step1", ...record });
  }

  async getStep1(app: string, ip: IpAddress): Promise<Step1Record | undefined> {
    const rec = parseStep1(await this.redis.get(this.step1Key(app, ip)));
    return rec !== undefined && rec.app === app && rec.ip === ip ? rec : undefined;
  }

  /**
   * A lease the cluster holds until `deadline` (a knock's; a later one of the same app and address
   * replaces it). The message and the hash write go in one round trip, the message first: it is what
   * opens the other gateways now; the hash is for those that catch up later.
   */
  async putLease(record: LeaseRecord): Promise<void> {
    await this.publishAnd({ kind: "lease", ...record }, ["hset", this.leasesKey, leaseField(record.app, record.ip), JSON.stringify({ deadline: record.deadline })]);
  }

  /** A revoke: the lease goes from the store and every gateway closes it (one round trip, as putLease). */
  async removeLease(app: string, ip: IpAddress): Promise<void> {
    await this.publishAnd({ kind: "revoke", app, ip }, ["hdel", this.leasesKey, leaseField(app, ip)]);
  }

  /**
   * The live leases (deadline after `now`). Ended and unreadable entries are deleted as they are
   * found; `garbage` counts the unreadable ones.
   */
  async liveLeases(now: number): Promise<{ leases: LeaseRecord[]; garbage: number }> {
    const leases: LeaseRecord[] = [];
    const stale: string[] = [];
    let garbage = 0;
    let cursor = "0";
    for (let round = 0; round < MAX_CATCH_UP_LEASES / 1000; round += 1) {
      const [next, flat] = await this.redis.hscan(this.leasesKey, cursor, "COUNT", 1000);
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const field = flat[i]!;
        const rec = parseLease(field, flat[i + 1]!);
        if (rec === undefined) garbage += 1;
        if (rec === undefined || rec.deadline <= now) stale.push(field);
        else leases.push(rec);
      }
      cursor = next;
      if (cursor === "0") break;
    }
    // HSCAN may return a field twice; the last reading wins
    const unique = new Map(leases.map((l) => [leaseField(l.app, l.ip), l]));
    for (let i = 0; i < stale.length; i += 1000) await this.redis.hdel(this.leasesKey, ...stale.slice(i, i + 1000));
    return { leases: [...unique.values()], garbage };
  }

  /** PUBLISH `message`, then `command`, in one pipeline; throws the first error of either. */
  private async publishAnd(message: ClusterMessage, command: [string, ...string[]]): Promise<void> {
    const answers = await this.redis.pipeline([["publish", this.channel, JSON.stringify(message)], command]).exec();
    const failed = (answers ?? []).find(([err]) => err !== null)?.[0];
    if (failed) throw failed;
    if (answers?.length !== 2) throw new Error("the store did not answer the pipeline");
  }

  private async publish(message: ClusterMessage): Promise<void> {
    await this.redis.publish(this.channel, JSON.stringify(message));
  }

  private tokenKey(secretId: string, counter: number): string {
    return `${this.prefix}:totp:${secretId}:${counter}`;
  }

  private step1Key(app: string, ip: IpAddress): string {
    return `${this.prefix}:step1:${app}:${ip}`;
  }
}
