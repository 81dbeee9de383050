import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, unlinkSync } from "node:fs";
import { createConnection, createServer, type Socket } from "node:net";
import { dirname } from "node:path";
import type { Logger } from "./log.js";
import { takeInstanceLock } from "@knockport/durable-file/instance-lock";
import { FrameDecoder, FrameTooLargeError, JSONRPC_ERRORS, MAX_FRAME_BYTES, MAX_IN_FLIGHT_PER_CONNECTION, encodeFrame, type RpcNotification, type RpcResponse, type SocketName, logEvent } from "@knockport/protocol";
import type { RpcPeer } from "./helper-context.js";

export class SocketSetupError extends Error {
  readonly code = "SOCKET_SETUP_FAILED";
}

export interface SocketLimits {
  /** Connections at once; one more is closed as soon as it is accepted. */
  maxConnections: number;
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
 * Per socket. The knock socket has one legitimate peer (the server, one multiplexed connection that it
 * closes after 20 s idle), so a few spare slots and a short idle limit keep one misbehaving peer from
 * locking it out; the admin socket serves short CLI calls, the events socket `watch` subscribers.
 */
export const SOCKET_LIMITS: Readonly<Record<SocketName, SocketLimits>> = {
  knock: { maxConnections: 16, idleTimeoutMs: 30_000, maxOutputBytes: 1024 * 1024, maxInFlightPerConnection: MAX_IN_FLIGHT_PER_CONNECTION, maxQueuedNotifications: 4096 },
  admin: { maxConnections: 16, idleTimeoutMs: 5 * 60_000, maxOutputBytes: 1024 * 1024, maxInFlightPerConnection: 64, maxQueuedNotifications: 4096 },
  // Subscribers: knockport-hooks and `knockport watch`; a subscription is exempt from the idle limit.
  events: { maxConnections: 8, idleTimeoutMs: 30_000, maxOutputBytes: 1024 * 1024, maxInFlightPerConnection: 4, maxQueuedNotifications: 4096 },
};

export interface RpcServerOptions extends Partial<SocketLimits> {
  socketPath: string;
  socketGroup: string | undefined;
  /** One frame in, its answer out; `peer` is the connection it came on (for `watch`'s events). */
  dispatch: (frame: string, peer: RpcPeer) => Promise<RpcResponse>;
  log: Logger;
  /** Which socket this is, for logs (default knock). */
  name?: SocketName;
  /** The flag that set socketPath, for error messages (default --socket). */
  flag?: string;
}

/** Numeric gid for a group name (or a number), from /etc/group; no shell, no getent. */
export function lookupGroupId(group: string, flag = "--socket-group"): number {
  if (/^\d+$/.test(group)) return Number(group);
  const line = readFileSync("/etc/group", "utf8")
    .split("\n")
    .find((l) => l.split(":")[0] === group);
  const gid = line ? Number(line.split(":")[2]) : Number.NaN;
  if (!Number.isInteger(gid)) throw new SocketSetupError(`${flag} ${group}: no such group; create it (groupadd ${group}) or pick another`);
  return gid;
}

async function removeStaleSocket(path: string, flag: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new SocketSetupError(`${flag} ${path}: exists and is not a socket; remove it or pick another path`);
  const alive = await new Promise<boolean>((resolve) => {
    const probe = createConnection({ path });
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
  if (alive) throw new SocketSetupError(`${flag} ${path}: another helper is already listening there`);
  unlinkSync(path);
}

/** One of the helper's listening sockets, mode 0660 with a group (else 0600), each connection bounded by `limits`. */
export async function startRpcServer(opts: RpcServerOptions): Promise<{ close(): Promise<void> }> {
  const { socketPath, log } = opts;
  const flag = opts.flag ?? "--socket";
  const gid = opts.socketGroup === undefined ? undefined : lookupGroupId(opts.socketGroup, `${flag}-group`);
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o755 });
  // Held for the process's life: the stale-socket probe and unlink below cannot race another helper's
  // start, which could otherwise unlink the socket the other just bound.
  const lock = await takeInstanceLock(`${socketPath}.lock`, `${flag} ${socketPath}`);
  const limits: SocketLimits = { ...SOCKET_LIMITS[opts.name ?? "knock"], ...opts };
  const connections = new Set<Socket>();
  const server = createServer({ allowHalfOpen: false }, (socket) => {
    connections.add(socket);
    socket.on("close", () => connections.delete(socket));
    serveConnection(socket, opts.dispatch, log, limits);
  });
  server.maxConnections = limits.maxConnections;
  server.on("drop", () => logEvent(log, "warn", "rpc.connection_refused", { socket: socketPath, limit: limits.maxConnections }, "connection refused: socket at its connection limit"));
  // No window in which the socket exists with looser permissions than intended.
  const previousUmask = process.umask(0o177);
  try {
    await removeStaleSocket(socketPath, flag);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ path: socketPath }, () => resolve());
    });
    // Under systemd (Group=knockport) the socket is born with the right group: no chown, so
    // the unit can forbid chown(2) (SystemCallFilter=~@privileged) and CAP_CHOWN.
    try {
      if (gid !== undefined && lstatSync(socketPath).gid !== gid) chownSync(socketPath, process.getuid?.() ?? 0, gid);
      chmodSync(socketPath, gid === undefined ? 0o600 : 0o660);
    } catch (err) {
      server.close();
      throw new SocketSetupError(`${flag} ${socketPath}: cannot set owner/mode (${(err as NodeJS.ErrnoException).code})`);
    }
  } catch (err) {
    lock.release();
    throw err;
  } finally {
    process.umask(previousUmask);
  }
  server.on("error", (err) => logEvent(log, "error", "socket.error", { err: err.message }, "socket server error"));
  logEvent(log, "info", "socket.listening", { name: opts.name ?? "knock", socket: socketPath, mode: gid === undefined ? "0600" : "0660", group: opts.socketGroup }, "listening");
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of connections) c.destroy();
        server.close(() => {
          lock.release();
          resolve();
        });
      }),
  };
}

/**
 * One connection: newline-delimited JSON-RPC, answered in arrival order. Frames over 64 KiB end it
 * (the stream cannot be resynchronised), and so do the limits.
 */
function serveConnection(socket: Socket, dispatch: RpcServerOptions["dispatch"], log: Logger, limits: SocketLimits): void {
  const decoder = new FrameDecoder(MAX_FRAME_BYTES);
  let inFlight = 0;
  let queuedNotifications = 0;
  let chain: Promise<void> = Promise.resolve();
  socket.setTimeout(limits.idleTimeoutMs, () => socket.destroy());
  socket.on("error", () => socket.destroy());
  const drop = (fields: { limit: number; queuedBytes?: number; queuedNotifications?: number }, why: string): void => {
    logEvent(log, "warn", "rpc.output_overrun", fields, `dropping connection: ${why}`);
    socket.destroy();
  };
  const send = (message: RpcResponse | RpcNotification): void => {
    if (socket.destroyed) return;
    if (socket.writableLength > limits.maxOutputBytes) return drop({ queuedBytes: socket.writableLength, limit: limits.maxOutputBytes }, "the client does not read its answers");
    socket.write(encodeFrame(message));
  };
  const closers: (() => void)[] = [];
  socket.once("close", () => closers.splice(0).forEach((fn) => fn()));
  const peer: RpcPeer = {
    notify: (method, params) => {
      if (socket.destroyed) return;
      if (inFlight === 0 && queuedNotifications === 0) return send({ jsonrpc: "2.0", method, params });
      // Behind an answer still being worked out: queued, so the subscriber sees answers and events in order.
      if (++queuedNotifications > limits.maxQueuedNotifications) return drop({ queuedNotifications, limit: limits.maxQueuedNotifications }, "too many notifications waiting");
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
      if (!(err instanceof FrameTooLargeError)) return void socket.destroy();
      logEvent(log, "warn", "rpc.frame_too_large", {}, "dropping connection: frame over limit");
      socket.end(encodeFrame({ jsonrpc: "2.0", id: null, error: { ...JSONRPC_ERRORS.INVALID_REQUEST, data: { detail: `frame exceeds ${MAX_FRAME_BYTES} bytes` } } }));
      return void socket.destroySoon();
    }
    for (const frame of frames) {
      if (frame.trim() === "") continue;
      if (++inFlight > limits.maxInFlightPerConnection) {
        logEvent(log, "warn", "rpc.overrun", {}, "dropping connection: too many unanswered requests");
        return void socket.destroy();
      }
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
