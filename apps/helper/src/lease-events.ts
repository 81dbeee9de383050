import type { LeaseEvent } from "@knockport/protocol";

/** A connection that receives notifications: what `watch` needs of the socket it was called on. */
export interface RpcPeer {
  /** Queue a notification after every answer already due on this connection. */
  notify(method: string, params: unknown): void;
  /** Run `fn` once the connection is gone (at once if it already is). */
  onClose(fn: () => void): void;
  /** A subscriber may stay quiet for long: exempt the connection from the idle limit. */
  keepOpen(): void;
}

/**
 * Lease events for `watch` subscribers. Emitting only hands each event to the subscribers' peers,
 * which queue it on their connection (bounded there): a slow subscriber never delays a knock.
 */
export class LeaseEvents {
  private readonly subscribers = new Set<(event: LeaseEvent) => void>();

  subscribe(listener: (event: LeaseEvent) => void): () => void {
    this.subscribers.add(listener);
    return () => this.subscribers.delete(listener);
  }

  emit(event: LeaseEvent): void {
    for (const s of this.subscribers) s(event);
  }

  get size(): number {
    return this.subscribers.size;
  }
}
