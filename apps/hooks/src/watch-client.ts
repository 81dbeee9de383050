import { createConnection, type Socket } from "node:net";
import { FrameDecoder, FrameTooLargeError, MAX_RESPONSE_FRAME_BYTES, encodeFrame } from "@knockport/protocol";

export interface WatchHandlers<Snapshot, Event> {
  /** The helper's answer to `watch`: its state when the subscription starts. */
  onSnapshot(snapshot: Snapshot): void;
  onEvent(event: Event): void;
  onConnected(connected: boolean): void;
  /** Something went wrong with the stream (logged by the caller); a reconnect follows. */
  onProblem(message: string): void;
}

export interface WatchParsers<Snapshot, Event> {
  /** Undefined when the value is not a valid snapshot. */
  snapshot(value: unknown): Snapshot | undefined;
  /** Undefined when the notification is not a valid event. */
  event(method: string, params: unknown): Event | undefined;
}

export interface WatchClientOptions {
  readonly socketPath: string;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
}

/**
 * Subscribes to the helper's lease events and stays subscribed: a dropped connection, a refused
 * call or a malformed frame closes the connection and it is opened again after a backoff (doubling
 * from 0.5 s to 30 s, back to the start after a snapshot arrived). Every frame is checked by the
 * parsers before a handler sees it.
 */
export class WatchClient<Snapshot, Event> {
  private socket: Socket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;

  constructor(
    private readonly o: WatchClientOptions,
    private readonly parsers: WatchParsers<Snapshot, Event>,
    private readonly handlers: WatchHandlers<Snapshot, Event>,
  ) {}

  start(): void {
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket?.destroy();
  }

  private connect(): void {
    if (this.stopped) return;
    const socket = createConnection({ path: this.o.socketPath });
    this.socket = socket;
    const decoder = new FrameDecoder(MAX_RESPONSE_FRAME_BYTES);
    let subscribed = false;
    const drop = (why: string): void => {
      this.handlers.onProblem(why);
      socket.destroy();
    };
    socket.once("connect", () => socket.write(encodeFrame({ jsonrpc: "2.0", id: 1, method: "watch", params: {} })));
    socket.on("data", (chunk: Buffer) => {
      let frames: string[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        drop(err instanceof FrameTooLargeError ? `helper sent ${err.message}` : "helper sent a bad frame");
        return;
      }
      for (const frame of frames) {
        if (socket.destroyed) return;
        let msg: { id?: unknown; result?: unknown; error?: { message?: unknown }; method?: unknown; params?: unknown };
        try {
          msg = JSON.parse(frame) as typeof msg;
        } catch {
          drop("helper sent invalid JSON");
          return;
        }
        if (!subscribed) {
          if (msg?.id !== 1) return drop("helper sent a frame before answering watch");
          if (msg.error !== undefined) return drop(`helper refused watch: ${String(msg.error?.message ?? "error")}`);
          const snapshot = this.parsers.snapshot(msg.result);
          if (snapshot === undefined) return drop("helper answered watch with an invalid snapshot");
          subscribed = true;
          this.failures = 0;
          this.handlers.onConnected(true);
          this.handlers.onSnapshot(snapshot);
          continue;
        }
        const event = typeof msg?.method === "string" && msg.id === undefined ? this.parsers.event(msg.method, msg.params) : undefined;
        if (event === undefined) return drop(`helper sent an invalid event: ${frame.slice(0, 200)}`);
        this.handlers.onEvent(event);
      }
    });
    socket.on("error", (err: NodeJS.ErrnoException) => this.handlers.onProblem(`cannot reach the helper at ${this.o.socketPath} (${err.code ?? err.message})`));
    socket.on("close", () => {
      if (subscribed) this.handlers.onConnected(false);
      if (this.socket === socket) this.socket = undefined;
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.stopped) return;
    const { initialMs, maxMs } = this.o.backoff ?? { initialMs: 500, maxMs: 30_000 };
    const delay = Math.min(maxMs, initialMs * 2 ** Math.min(this.failures, 20));
    this.failures += 1;
    this.timer = setTimeout(() => this.connect(), delay);
    this.timer.unref();
  }
}
