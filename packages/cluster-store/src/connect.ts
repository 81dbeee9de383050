import { readFileSync, statSync } from "node:fs";
import { Cluster, Redis, type RedisOptions } from "ioredis";
import type { ClusterConfig } from "@knockport/config";

/** ioredis' single-node and Cluster clients share the commands KnockPort uses. */
export type StoreConnection = Redis | Cluster;

export class ClusterStoreConfigError extends Error {
  readonly code = "CLUSTER_CONFIG";
}

/** Longest password file: an ACL password, not a document. */
const MAX_PASSWORD_BYTES = 4096;

/**
 * The password from `global.cluster.password_file` (trailing newline dropped). Refused when another
 * user could read it: the password opens the store, and the store opens apps.
 */
export function readClusterPassword(config: ClusterConfig): string | undefined {
  const file = config.passwordFile;
  if (file === undefined) return undefined;
  let text: string;
  try {
    const st = statSync(file);
    if ((st.mode & 0o007) !== 0) throw new ClusterStoreConfigError(`global.cluster.password_file ${file}: readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod o-rwx it`);
    if (st.size > MAX_PASSWORD_BYTES) throw new ClusterStoreConfigError(`global.cluster.password_file ${file}: larger than ${MAX_PASSWORD_BYTES} bytes`);
    text = readFileSync(file, "utf8");
  } catch (err) {
    if (err instanceof ClusterStoreConfigError) throw err;
    throw new ClusterStoreConfigError(`global.cluster.password_file ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const password = text.replace(/\r?\n$/, "");
  if (password.length === 0 || /[\r\n]/.test(password)) throw new ClusterStoreConfigError(`global.cluster.password_file ${file}: must hold one non-empty line`);
  return password;
}

export interface ConnectOptions {
  /** Commands wait at most this long for an answer (a hung store fails like a down one); 0: no limit. */
  commandTimeoutMs?: number;
  /**
   * false (the default): a command while disconnected fails at once, so a knock never waits for a
   * reconnect. A subscriber connection passes true so its SUBSCRIBE is sent once connected.
   */
  queueWhileDisconnected?: boolean;
  /** Told about connection errors (the message only; it never holds the password). */
  onError?: (message: string) => void;
}

/** Reconnect quickly at first, then every 2 s, forever: the store coming back must be noticed. */
const retryStrategy = (times: number): number => Math.min(100 * times, 2000);

/** A client for the configured store. Connects in the background; errors go to `onError`. */
export function connectStore(config: ClusterConfig, options: ConnectOptions = {}): StoreConnection {
  const password = readClusterPassword(config);
  let ca: Buffer | undefined;
  if (config.tls?.caFile !== undefined) {
    try {
      ca = readFileSync(config.tls.caFile);
    } catch (err) {
      throw new ClusterStoreConfigError(`global.cluster.tls.ca_file ${config.tls.caFile}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  const tls = config.tls ? { ...(ca ? { ca } : {}), ...(config.tls.serverName ? { servername: config.tls.serverName } : {}) } : undefined;
  const common: RedisOptions = {
    ...(config.username !== undefined ? { username: config.username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(tls ? { tls } : {}),
    connectTimeout: 2000,
    // ioredis takes 0 as "time out at once": no limit is leaving it out
    ...(options.commandTimeoutMs === 0 ? {} : { commandTimeout: options.commandTimeoutMs ?? 1000 }),
    enableOfflineQueue: options.queueWhileDisconnected ?? false,
    maxRetriesPerRequest: 1,
    retryStrategy,
    // The client name shows in CLIENT LIST, so an operator sees which gateways are connected.
    connectionName: "knockport",
  };
  const e = config.endpoint;
  let client: StoreConnection;
  switch (e.kind) {
    case "standalone":
      client = new Redis({ ...common, host: e.node.host, port: e.node.port, db: e.db });
      break;
    case "unix":
      client = new Redis({ ...common, path: e.path, db: e.db });
      break;
    case "sentinel":
      client = new Redis({
        ...common,
        sentinels: e.sentinels.map((n) => ({ host: n.host, port: n.port })),
        name: e.masterName,
        db: e.db,
        ...(tls ? { enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
        ...(config.username !== undefined ? { sentinelUsername: config.username } : {}),
        ...(password !== undefined ? { sentinelPassword: password } : {}),
        sentinelRetryStrategy: retryStrategy,
      });
      break;
    case "cluster":
      client = new Cluster(
        e.nodes.map((n) => ({ host: n.host, port: n.port })),
        { redisOptions: common, enableOfflineQueue: common.enableOfflineQueue ?? false, clusterRetryStrategy: retryStrategy },
      );
      break;
  }
  client.on("error", (err: Error) => options.onError?.(err.message));
  return client;
}
