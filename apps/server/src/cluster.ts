import { randomBytes } from "node:crypto";
import type { KnockportConfig } from "@knockport/config";
import { ClusterStore, subscribe, type ClusterMessage, type StoreConnection, type Subscription } from "@knockport/cluster-store";
import type { IpAddress } from "@knockport/protocol";
import type { Logger } from "pino";
import type { HelperPort } from "./app.js";
import type { Step1Memory } from "./step1-memory.js";
import type { SpentToken } from "./two-factor.js";
import { logEvent } from "@knockport/protocol/events";

/** The ioredis messages of a store that is down, hung or gone: these knocks are answered 503. */
const STORE_DOWN = /enableOfflineQueue|Command timed out|Connection is closed|max retries|Stream isn't writeable|ECONNREFUSED|ENOENT|ETIMEDOUT/i;

/**
 * The server's side of cluster mode (`global.cluster`): one-time TOTP tokens spent across every
 * gateway, step-1 windows shared (step 1 here, step 2 at another gateway), and the connection the
 * rate limiter counts on. Leases are knockport-cluster-sync's: the server opens only what its knock
 * socket allows (step 1, step 2 after step 1), for windows other gateways announce.
 */
export class ServerCluster {
  readonly store: ClusterStore;
  /** Tells this server's spends from other gateways' (release deletes only its own). */
  private readonly owner = randomBytes(9).toString("base64url");
  private spends = 0;
  private subscription: Subscription | undefined;

  constructor(
    private readonly config: KnockportConfig,
    readonly connection: StoreConnection,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    const cluster = config.global.cluster;
    if (!cluster) throw new Error("ServerCluster needs global.cluster");
    this.store = new ClusterStore(connection, cluster.keyPrefix);
  }

  /** False while the store is not connected: knocks are then answered 503 at once. */
  get storeReady(): boolean {
    return this.connection.status === "ready";
  }

  /** An error that says the store could not answer (rather than a bug of ours). */
  isStoreError(err: unknown): boolean {
    return !this.storeReady || STORE_DOWN.test(String((err as Error)?.message ?? err));
  }

  /**
   * Spends an accepted TOTP token cluster-wide (SET NX PX): "ok" when no gateway spent it before,
   * "spent" when one did (a replay), "unavailable" when the store cannot say (the knock fails closed).
   */
  async spendToken(token: SpentToken): Promise<{ outcome: "ok" | "spent" | "unavailable"; release?: () => Promise<void> }> {
    const owner = `${this.owner}:${(this.spends += 1)}`;
    try {
      const first = await this.store.spendToken(token.secretId, token.counter, token.until - this.now(), owner);
      if (!first) return { outcome: "spent" };
      return { outcome: "ok", release: () => this.store.releaseToken(token.secretId, token.counter, owner).catch(() => undefined) };
    } catch (err) {
      logEvent(this.log, "warn", "cluster.store.failed", { op: "spend-token", err: (err as Error).message }, "cluster store did not answer; 2FA knock refused");
      return { outcome: "unavailable" };
    }
  }

  /** Announces a step-1 window to every gateway. A failure only keeps step 2 on this gateway. */
  async shareStep1(app: string, ip: IpAddress, keyIndex: number, durationSeconds: number): Promise<void> {
    const now = this.now();
    try {
      await this.store.putStep1({ app, ip, keyIndex, deadline: now + durationSeconds * 1000 }, now);
    } catch (err) {
      logEvent(this.log, "warn", "cluster.store.failed", { op: "share-step1", app, ip, err: (err as Error).message }, "step-1 window not shared; step 2 only works on this gateway");
    }
  }

  /** A step-1 window another gateway recorded (when its message did not reach us), or undefined. */
  async sharedStep1(app: string, ip: IpAddress): Promise<number | undefined> {
    try {
      const rec = await this.store.getStep1(app, ip);
      return rec === undefined ? undefined : this.acceptStep1(rec.app, rec.keyIndex, rec.deadline);
    } catch {
      return undefined;
    }
  }

  /**
   * Listens for other gateways' step-1 windows: each opens the HTTPS port here too (the helper's
   * step 1, for the app's own step2_https_duration at most) and is remembered for step 2.
   */
  start(step1: Step1Memory, helper: HelperPort): void {
    const cluster = this.config.global.cluster;
    if (!cluster || this.subscription) return;
    this.subscription = subscribe(cluster, {
      onMessage: (m) => void this.onMessage(m, step1, helper),
      onGarbage: () => logEvent(this.log, "warn", "cluster.message.garbage", {}, "a message on the cluster channel failed its schema; ignored"),
      onLive: () => logEvent(this.log, "info", "cluster.subscribed", {}, "listening to the cluster's step-1 windows"),
      onError: (message) => logEvent(this.log, "debug", "cluster.subscriber.error", { err: message }, "cluster subscriber connection error"),
    });
  }

  async stop(): Promise<void> {
    await this.subscription?.close();
    this.subscription = undefined;
    this.connection.disconnect();
  }

  /** The key index of a window the store names, if it fits this gateway's config; undefined otherwise. */
  private acceptStep1(appName: string, keyIndex: number, deadline: number): number | undefined {
    const app = this.config.apps.find((a) => a.name === appName);
    if (!app || keyIndex >= app.accessKeysHttps.length || deadline <= this.now()) return undefined;
    return keyIndex;
  }

  private async onMessage(m: ClusterMessage, step1: Step1Memory, helper: HelperPort): Promise<void> {
    if (m.kind !== "step1") return;
    const keyIndex = this.acceptStep1(m.app, m.keyIndex, m.deadline);
    const app = this.config.apps.find((a) => a.name === m.app);
    if (keyIndex === undefined || !app) {
      logEvent(this.log, "warn", "cluster.step1.ignored", { app: app ? m.app : "(unknown)", ip: m.ip }, "a step-1 window for an app or key this gateway does not have, or already over; ignored");
      return;
    }
    // Our own announcement comes back too: this gateway already opened and remembered it.
    if (step1.lookup(m.app, m.ip) === keyIndex) return;
    // Never longer than this gateway's own step-1 window for the app.
    const seconds = Math.min(app.step2HttpsDurationSeconds, Math.ceil((m.deadline - this.now()) / 1000));
    step1.remember(m.app, m.ip, keyIndex, seconds);
    try {
      await helper.call("open", { step: 1, app: m.app, ip: m.ip });
      logEvent(this.log, "info", "cluster.step1.applied", { app: m.app, ip: m.ip }, "step-1 window of another gateway opened here");
    } catch (err) {
      step1.forget(m.app, m.ip);
      logEvent(this.log, "error", "cluster.step1.failed", { app: m.app, ip: m.ip, err: (err as Error).message }, "helper could not open another gateway's step-1 window");
    }
  }
}
