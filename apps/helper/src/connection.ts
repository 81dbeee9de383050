import type { Socket } from "node:net";
import type { Logger } from "./log.js";
import {
  FrameDecoder,
  FrameTooLargeError,
  JSONRPC_ERRORS,
  MAX_FRAME_BYTES,
  encodeFrame,
  type RpcNotification,
  type RpcResponse,
} from "@knockport/protocol";
import type { RpcPeer } from "./helper-context.js";

export interface ConnectionLimits {
  /** A client with nothing to say for this long is dropped. */
  idleTimeoutMs: number;
  /**
   * Answers waiting for a client that does not read them: once more than this is queued, the next
   * answer drops the connection instead (at most this plus one answer is ever held for a peer).
   */
  maxOutputBytes: number;
  /** Requests of one connection dispatched and not yet answered before it is cut. */
  maxInFlightPerConnection: number;
  /** Notifications waiting behind an unanswered request before the connection is cut. */
  maxQueuedNotifications: number;
}

/**
 * One connection: newline-delimited JSON-RPC, answered in arrival order. Frames over 64 KiB end it
 * (the stream cannot be resynchronised), and so do the limits above.
 */
export function serveConnection(
  socket: Socket,
  dispatch: (frame: string, peer: RpcPeer) => Promise<RpcResponse>,
  log: Logger,
  limits: ConnectionLimits,
): void {
  const decoder = new FrameDecoder(MAX_FRAME_BYTES);
  let inFlight = 0;
  let queuedNotifications = 0;
  let chain: Promise<void> = Promise.resolve();
  socket.setTimeout(limits.idleTimeoutMs, () => socket.destroy());
  socket.on("error", () => socket.destroy());

  const send = (message: RpcResponse | RpcNotification): void => {
    if (socket.destroyed) return;
    if (socket.writableLength > limits.maxOutputBytes) {
      log.warn({ event: "rpc.output_overrun", queuedBytes: socket.writableLength, limit: limits.maxOutputBytes }, "dropping connection: the client does not read its answers");
      socket.destroy();
      return;
    }
    socket.write(encodeFrame(message));
  };

  const closers: (() => void)[] = [];
  socket.once("close", () => closers.splice(0).forEach((fn) => fn()));
  const peer: RpcPeer = {
    notify: (method, params) => {
      if (socket.destroyed) return;
      if (inFlight === 0 && queuedNotifications === 0) return send({ jsonrpc: "2.0", method, params });
      // Behind an answer still being worked out: queued, so the subscriber sees answers and events in order.
      if (++queuedNotifications > limits.maxQueuedNotifications) {
        log.warn({ event: "rpc.output_overrun", queuedNotifications, limit: limits.maxQueuedNotifications }, "dropping connection: too many notifications waiting");
        socket.destroy();
        return;
      }
      chain = chain.then(() => {
        queuedNotifications -= 1;
        send({ jsonrpc: "2.0", method, params });
      });
    },
    onClose: (fn) => (socket.destroyed ? fn() : void closers.push(fn)),
    keepOpen: () => socket.setTimeout(0),
  };

  socket.on("data", (chunk: Buffer) => {
    let frames: string[];
    try {
      frames = decoder.push(chunk);
    } catch (err) {
      if (err instanceof FrameTooLargeError) {
        log.warn({ event: "rpc.frame_too_large" }, "dropping connection: frame over limit");
        socket.end(
          encodeFrame({
            jsonrpc: "2.0",
            id: null,
            error: { ...JSONRPC_ERRORS.INVALID_REQUEST, data: { detail: `frame exceeds ${MAX_FRAME_BYTES} bytes` } },
          }),
        );
        socket.destroySoon();
      } else {
        socket.destroy();
      }
      return;
    }
    for (const frame of frames) {
      if (frame.trim() === "") continue;
      if (inFlight >= limits.maxInFlightPerConnection) {
        log.warn({ event: "rpc.overrun" }, "dropping connection: too many unanswered requests");
        socket.destroy();
        return;
      }
      inFlight += 1;
      // Requests of one connection are dispatched at once and answered in arrival order: the server
      // multiplexes every knock over one connection, and only concurrent opens can share a group commit.
      const answer = dispatch(frame, peer);
      chain = chain.then(async () => {
        const response = await answer.catch(() => undefined);
        inFlight -= 1;
        if (response !== undefined) send(response);
      });
    }
  });
}
