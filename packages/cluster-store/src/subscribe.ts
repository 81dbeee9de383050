import type { ClusterConfig } from "@knockport/config";
import { connectStore } from "./connect.js";
import { parseMessage, type ClusterMessage } from "./records.js";

export interface SubscriptionHandlers {
  /** A schema-checked message from any gateway (this one's own included). */
  onMessage(message: ClusterMessage): void;
  /** A message that failed the schema: never acted on. */
  onGarbage(): void;
  /**
   * The subscription is (again) live: messages may have been missed while it was not, so the
   * caller reads the store's current state now (catch-up).
   */
  onLive(): void;
  onError(message: string): void;
}

export interface Subscription {
  close(): Promise<void>;
}

/**
 * Listens on the cluster's channel over a connection of its own (a subscribed connection can send
 * nothing else). ioredis reconnects and re-subscribes by itself; each time it is back, onLive runs.
 */
export function subscribe(config: ClusterConfig, handlers: SubscriptionHandlers): Subscription {
  const redis = connectStore(config, { queueWhileDisconnected: true, commandTimeoutMs: 0, onError: handlers.onError });
  const channel = `${config.keyPrefix}:events`;
  redis.on("message", (ch: string, text: string) => {
    if (ch !== channel) return;
    const m = parseMessage(text);
    if (m === undefined) handlers.onGarbage();
    else handlers.onMessage(m);
  });
  // SUBSCRIBE once the first connection is ready (queued before it, it was sometimes lost); ioredis
  // re-subscribes on every reconnect and reports it with another "ready".
  let subscribed = false;
  redis.on("ready", () => {
    if (!subscribed) {
      subscribed = true;
      redis.subscribe(channel).then(
        () => handlers.onLive(),
        (err: Error) => handlers.onError(err.message),
      );
    } else handlers.onLive();
  });
  return {
    close: async () => {
      redis.disconnect();
    },
  };
}
