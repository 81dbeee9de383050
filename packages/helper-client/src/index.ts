import { createConnection, type Socket } from "node:net";
import {
  FrameDecoder,
  FrameTooLargeError,
  LEASE_EVENT_METHOD,
  MAX_RESPONSE_FRAME_BYTES,
  type LeaseEvent,
  type WatchResult,
  encodeFrame,
  MAX_IN_FLIGHT_PER_CONNECTION,
  type MethodName,
  type ParamsOf,
  type ResultOf,
  type RpcResponse,
} from "@knockport/protocol";
import { helperErrorNameFromCode } from "@knockport/protocol/client";
import { HelperCallError } from "./errors.js";
import { leaseEventValid, validResult } from "./validate.js";

export { HelperCallError, type HelperCallErrorCode } from "./errors.js";

export interface HelperClientOptions {
  socketPath: string;
  /** Per call, including connecting. */
  timeoutMs?: number;
  /**
   * Close the connection after this long without a call in flight (default 20 s): the helper cuts a
   * knock-socket connection idle for 30 s, and one cut while a call is being written would fail it.
   */
  idleCloseMs?: number;
}

interface Pending {
  method: MethodName;
  resolve: (value: unknown) => void;
  reject: (err: HelperCallError) => void;
  timer: NodeJS.Timeout;
  sent: boolean;
  frame: string;
}

/**
 * One persistent connection to the helper, multiplexed by request id, reopened on demand.
 * Every result is validated against the method table before it is handed to the caller.
 */
export class HelperClient {
  private socket: Socket | undefined;
  private connecting: Promise<Socket> | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  private readonly timeoutMs: number;
  private readonly idleCloseMs: number;
  private idleTimer: NodeJS.Timeout | undefined;
  private watcher: ((event: LeaseEvent) => void) | undefined;
  /** Calls written and not yet answered; never more than MAX_IN_FLIGHT_PER_CONNECTION. */
  private inFlight = 0;
  /** Calls waiting for an in-flight slot, oldest first. */
  private readonly waiting: number[] = [];

  constructor(private readonly options: HelperClientOptions) {
    this.timeoutMs = options.timeoutMs ?? 3000;
    this.idleCloseMs = options.idleCloseMs ?? 20_000;
  }

  async call<M extends MethodName>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
    if (this.closed) throw new HelperCallError("HELPER_UNREACHABLE", "helper client is closed");
    const id = this.nextId++;
    clearTimeout(this.idleTimer);
    return new Promise<ResultOf<M>>((resolve, reject) => {
      const timer = setTimeout(() => {
        const sent = this.pending.get(id)?.sent ?? true;
        this.forget(id);
        reject(new HelperCallError("HELPER_TIMEOUT", `helper did not answer ${method} within ${this.timeoutMs} ms`, undefined, undefined, sent));
      }, this.timeoutMs);
      const frame = encodeFrame({ jsonrpc: "2.0", id, method, params });
      this.pending.set(id, { method, resolve: resolve as (v: unknown) => void, reject, timer, sent: false, frame });
      this.connect()
        .then((socket) => this.send(id, socket))
        .catch((err: HelperCallError) => this.settle(id, err));
    });
  }

  /**
   * `watch` (admin socket): resolves with the live leases, then calls `onEvent` for each lease event
   * (validated against the method table) until the connection ends; `onEnd` says why. The connection
   * is then the subscription's: it is never closed for being idle.
   */
  async watch(onEvent: (event: LeaseEvent) => void, onEnd: (err: HelperCallError) => void): Promise<WatchResult> {
    this.watcher = onEvent;
    this.onWatchEnd = onEnd;
    try {
      return await this.call("watch", {});
    } catch (err) {
      this.watcher = undefined;
      this.onWatchEnd = undefined;
      throw err;
    }
  }
  private onWatchEnd: ((err: HelperCallError) => void) | undefined;

  close(): void {
    this.closed = true;
    clearTimeout(this.idleTimer);
    this.failAll(new HelperCallError("HELPER_UNREACHABLE", "helper client closed"));
    this.socket?.destroy();
    this.socket = undefined;
  }

  /**
   * Writes the call, or queues it while MAX_IN_FLIGHT_PER_CONNECTION calls wait for their answers: the
   * helper drops a connection past that many, which would fail every call on it at once.
   */
  private send(id: number, socket: Socket): void {
    const p = this.pending.get(id);
    if (p === undefined || p.sent) return;
    if (this.inFlight >= MAX_IN_FLIGHT_PER_CONNECTION) {
      this.waiting.push(id);
      return;
    }
    p.sent = true;
    this.inFlight += 1;
    socket.write(p.frame);
  }

  /** Drops a call from the book (answered, failed or timed out) and lets a waiting one go. */
  private forget(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (!p) return undefined;
    this.pending.delete(id);
    if (p.sent) this.inFlight -= 1;
    while (this.waiting.length > 0 && this.inFlight < MAX_IN_FLIGHT_PER_CONNECTION) {
      const next = this.waiting.shift() as number;
      if (!this.pending.has(next)) continue;
      if (this.socket === undefined || this.socket.destroyed) {
        this.waiting.unshift(next); // the next connection sends it (or its close fails it)
        break;
      }
      this.send(next, this.socket);
    }
    return p;
  }

  private settle(id: number, outcome: HelperCallError | { result: unknown }): void {
    const p = this.forget(id);
    if (!p) return;
    clearTimeout(p.timer);
    if (outcome instanceof HelperCallError) {
      p.reject(
        p.sent === outcome.requestSent
          ? outcome
          : new HelperCallError(outcome.code, outcome.message, outcome.helperError, outcome.rpcCode, p.sent),
      );
    } else p.resolve(outcome.result);
    if (this.pending.size === 0) this.closeWhenIdle();
  }

  private closeWhenIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.pending.size > 0 || this.socket === undefined || this.watcher !== undefined) return;
      const idle = this.socket;
      this.socket = undefined; // its close event then fails nothing: no call is on it
      idle.destroy();
    }, this.idleCloseMs);
    this.idleTimer.unref();
  }

  private failAll(err: HelperCallError): void {
    for (const id of [...this.pending.keys()]) this.settle(id, err);
  }

  private connect(): Promise<Socket> {
    if (this.socket && !this.socket.destroyed) return Promise.resolve(this.socket);
    if (this.connecting) return this.connecting;
    this.connecting = new Promise<Socket>((resolve, reject) => {
      const socket = createConnection({ path: this.options.socketPath });
      const decoder = new FrameDecoder(MAX_RESPONSE_FRAME_BYTES);
      socket.once("connect", () => {
        this.socket = socket;
        this.connecting = undefined;
        resolve(socket);
      });
      socket.on("data", (chunk: Buffer) => {
        let frames: string[];
        try {
          frames = decoder.push(chunk);
        } catch (err) {
          const why = err instanceof FrameTooLargeError ? err.message : "bad frame";
          this.failAll(new HelperCallError("HELPER_PROTOCOL", `helper sent ${why}`));
          socket.destroy();
          return;
        }
        for (const frame of frames) this.onFrame(frame);
      });
      socket.on("error", (err: NodeJS.ErrnoException) => {
        const failure = new HelperCallError(
          "HELPER_UNREACHABLE",
          `cannot reach the helper at ${this.options.socketPath} (${err.code ?? err.message})`,
        );
        if (this.connecting) {
          this.connecting = undefined;
          reject(failure);
        }
        this.failAll(failure);
      });
      socket.on("close", () => {
        // A socket that never connected (or was already replaced) has nothing left to fail: its
        // callers were rejected by "error", and newer calls belong to a newer connection.
        if (this.socket !== socket) return;
        this.socket = undefined;
        const gone = new HelperCallError("HELPER_UNREACHABLE", "helper closed the connection");
        this.failAll(gone);
        this.endWatch(gone);
      });
    });
    return this.connecting;
  }

  private endWatch(err: HelperCallError): void {
    const onEnd = this.onWatchEnd;
    this.watcher = undefined;
    this.onWatchEnd = undefined;
    onEnd?.(err);
  }

  private onFrame(frame: string): void {
    let msg: RpcResponse | { method?: unknown; params?: unknown; id?: unknown };
    try {
      msg = JSON.parse(frame) as RpcResponse;
    } catch {
      this.failAll(new HelperCallError("HELPER_PROTOCOL", "helper sent invalid JSON"));
      return;
    }
    if (msg !== null && typeof msg === "object" && "method" in msg && !("id" in msg)) {
      if (this.watcher === undefined) return;
      if (msg.method !== LEASE_EVENT_METHOD || !leaseEventValid(msg.params)) {
        this.endWatch(new HelperCallError("HELPER_PROTOCOL", "helper sent an invalid lease event"));
        this.socket?.destroy();
        return;
      }
      this.watcher(msg.params as LeaseEvent);
      return;
    }
    const id = typeof msg?.id === "number" ? msg.id : undefined;
    const p = id === undefined ? undefined : this.pending.get(id);
    if (id === undefined || !p) return; // late answer to a call that already timed out
    if ("error" in msg && msg.error) {
      const name = helperErrorNameFromCode(msg.error.code);
      this.settle(
        id,
        new HelperCallError("HELPER_REJECTED", `helper refused ${p.method}: ${msg.error.message}`, name, msg.error.code),
      );
      return;
    }
    const result = "result" in msg ? msg.result : undefined;
    if (!validResult(p.method, result)) {
      this.settle(id, new HelperCallError("HELPER_PROTOCOL", `helper answered ${p.method} with an invalid result`));
      return;
    }
    this.settle(id, { result });
  }
}
