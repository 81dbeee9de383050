#!/usr/bin/env node
import { pino, type Logger } from "pino";
import { ConfigError, UsageError, loadConfig } from "@knockport/config";
import { ClusterStore, ClusterStoreConfigError, connectStore, subscribe } from "@knockport/cluster-store";
import { HelperClient, type HelperCallError } from "@knockport/helper-client";
import { SYNC_USAGE, parseSyncArgs } from "./args.js";
import { LeaseSync } from "./lease-sync.js";
import { logEvent } from "@knockport/protocol/events";

/** One task at a time, in arrival order: a revoke never overtakes the lease it ends. */
function serial(log: Logger): (task: () => Promise<unknown>) => void {
  let chain: Promise<unknown> = Promise.resolve();
  return (task) => {
    chain = chain.then(task).catch((err: unknown) => logEvent(log, "error", "cluster.sync.failed", { err: (err as Error).message }, "cluster sync task failed"));
  };
}

async function main(argv: string[]): Promise<number> {
  const options = parseSyncArgs(argv);
  if (options === "help") {
    process.stdout.write(SYNC_USAGE);
    return 0;
  }
  const config = loadConfig(options.configFile);
  const cluster = config.global.cluster;
  if (!cluster) throw new UsageError(`${options.configFile}: global.cluster is not set; knockport-cluster-sync has nothing to do without it`);
  const log = pino({ name: "knockport-cluster-sync", level: options.logLevel });
  const connection = connectStore(cluster, { onError: (m) => logEvent(log, "debug", "cluster.store.error", { err: m }, "store connection error") });
  const store = new ClusterStore(connection, cluster.keyPrefix);
  const admin = new HelperClient({ socketPath: options.adminSocket, timeoutMs: 5000 });
  const sync = new LeaseSync(config, store, admin, log);
  const run = serial(log);
  let helperLive = false;
  let storeLive = false;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  // Runs once the helper's watch, the subscription and the command connection are all up (each can come
  // back on its own; the last one to do so triggers it). A catch-up that fails is tried again.
  const catchUp = (why: string): void => {
    if (!helperLive || !storeLive || connection.status !== "ready" || stopped) return;
    clearTimeout(retry);
    run(async () => {
      logEvent(log, "debug", "cluster.catch-up.start", { why }, "catching up");
      try {
        await sync.catchUp();
      } catch (err) {
        logEvent(log, "warn", "cluster.catch-up.failed", { err: (err as Error).message }, "catch-up failed; trying again in 1 s");
        retry = setTimeout(() => catchUp("retry"), 1000);
        retry.unref();
      }
    });
  };
  connection.on("ready", () => catchUp("store connection ready"));

  const subscription = subscribe(cluster, {
    onMessage: (m) => run(() => sync.onMessage(m)),
    onGarbage: () => logEvent(log, "warn", "cluster.message.garbage", {}, "a message on the cluster channel failed its schema; ignored"),
    onLive: () => {
      storeLive = true;
      catchUp("store subscription live");
    },
    onError: (m) => logEvent(log, "debug", "cluster.subscriber.error", { err: m }, "subscriber connection error"),
  });

  // The events socket: this helper's leases. Re-watched after a helper restart, then caught up again.
  let events: HelperClient | undefined;
  let retryMs = 250;
  const watch = (): void => {
    if (stopped) return;
    events = new HelperClient({ socketPath: options.eventsSocket, timeoutMs: 5000 });
    const client = events;
    client
      .watch(
        (event) => run(() => sync.onLocalEvent(event)),
        (err: HelperCallError) => {
          helperLive = false;
          logEvent(log, "warn", "helper.watch.ended", { err: err.message }, "helper events ended; re-watching");
          client.close();
          setTimeout(watch, retryMs).unref();
        },
      )
      .then(
        (snapshot) => {
          retryMs = 250;
          run(async () => sync.onSnapshot(snapshot));
          helperLive = true;
          logEvent(log, "info", "helper.watch.ready", { leases: snapshot.leases.length }, "watching the helper's leases");
          catchUp("helper watch live");
        },
        (err: HelperCallError) => {
          client.close();
          if (retryMs === 250) logEvent(log, "warn", "helper.waiting", { err: err.message }, `waiting for the helper's events socket ${options.eventsSocket}`);
          retryMs = Math.min(retryMs * 2, 5000);
          setTimeout(watch, retryMs).unref();
        },
      );
  };
  watch();
  logEvent(log, "info", "cluster-sync.ready", { url: cluster.url, prefix: cluster.keyPrefix }, "cluster sync started");

  const keepAlive = setInterval(() => undefined, 60_000);
  return new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      stopped = true;
      clearTimeout(retry);
      logEvent(log, "info", "cluster-sync.stopping", { signal }, "stopping");
      clearInterval(keepAlive);
      events?.close();
      admin.close();
      void subscription.close().finally(() => {
        connection.disconnect();
        resolve(0);
      });
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const expected = err instanceof ConfigError || err instanceof UsageError || err instanceof ClusterStoreConfigError;
    process.stderr.write(`knockport-cluster-sync: ${expected ? "" : "unexpected error: "}${(err as Error)?.message ?? String(err)}\n`);
    process.exit(err instanceof ConfigError || err instanceof UsageError ? 2 : 1);
  },
);
