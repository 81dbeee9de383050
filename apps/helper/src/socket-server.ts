import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, unlinkSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import type { Logger } from "pino";
import { takeInstanceLock } from "./instance-lock.js";
import {
  FrameDecoder,
  FrameTooLargeError,
  JSONRPC_ERRORS,
  MAX_FRAME_BYTES,
  encodeFrame,
  type RpcResponse,
} from "@knockport/protocol";

export class SocketSetupError extends Error {
  readonly code = "SOCKET_SETUP_FAILED";
}

export interface RpcServerOptions {
  socketPath: string;
  socketGroup: string | undefined;
  dispatch: (frame: string) => Promise<RpcResponse>;
  log: Logger;
  maxConnections?: number;
  /** A client with nothing to say for this long is dropped. */
  idleTimeoutMs?: number;
  /** Requests waiting on one connection before it is cut (a client that never reads answers). */
  maxInFlightPerConnection?: number;
}

/** Numeric gid for a group name (or a number), from /etc/group; no shell, no getent. */
export function lookupGroupId(group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  const line = readFileSync("/etc/group", "utf8")
    .split("\n")
    .find((l) => l.split(":")[0] === group);
  const gid = line ? Number(line.split(":")[2]) : Number.NaN;
  if (!Number.isInteger(gid)) {
    throw new SocketSetupError(`--socket-group ${group}: no such group; create it (groupadd ${group}) or pick another`);
  }
  return gid;
}

async function removeStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new SocketSetupError(`--socket ${path}: exists and is not a socket; remove it or pick another path`);
  const alive = await new Promise<boolean>((resolve) => {
    const probe = createConnection({ path });
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
  if (alive) throw new SocketSetupError(`--socket ${path}: another helper is already listening there`);
  unlinkSync(path);
}

/**
 * The helper's listening socket: newline-delimited JSON-RPC, one request answered at a time per
 * connection, in order. Frames over 64 KiB end the connection (the stream cannot be resynchronised).
 */
export async function startRpcServer(opts: RpcServerOptions): Promise<{ close(): Promise<void> }> {
  const { socketPath, log } = opts;
  const gid = opts.socketGroup === undefined ? undefined : lookupGroupId(opts.socketGroup);
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o755 });
  // Held for the process's life: the stale-socket probe and unlink below cannot race another helper's
  // start, which could otherwise unlink the socket the other just bound.
  const lock = await takeInstanceLock(`${socketPath}.lock`, `--socket ${socketPath}`);
  try {
    await removeStaleSocket(socketPath);
  } catch (err) {
    lock.release();
    throw err;
  }

  const connections = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: false }, (socket) => {
    connections.add(socket);
    socket.on("close", () => connections.delete(socket));
    serveConnection(socket, opts);
  });
  server.maxConnections = opts.maxConnections ?? 64;

  // No window in which the socket exists with looser permissions than intended.
  const previousUmask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ path: socketPath }, () => resolve());
    });
  } catch (err) {
    lock.release();
    throw err;
  } finally {
    process.umask(previousUmask);
  }
  try {
    if (gid !== undefined) {
      // Under systemd (Group=knockport) the socket is born with the right group: no chown, so
      // the unit can forbid chown(2) (SystemCallFilter=~@privileged) and CAP_CHOWN.
      if (lstatSync(socketPath).gid !== gid) chownSync(socketPath, process.getuid?.() ?? 0, gid);
      chmodSync(socketPath, 0o660);
    } else {
      chmodSync(socketPath, 0o600);
    }
  } catch (err) {
    server.close();
    lock.release();
    throw new SocketSetupError(`--socket ${socketPath}: cannot set owner/mode (${(err as NodeJS.ErrnoException).code})`);
  }
  server.on("error", (err) => log.error({ event: "socket.error", err: err.message }, "socket server error"));
  log.info({ event: "socket.listening", socket: socketPath, mode: gid === undefined ? "0600" : "0660", group: opts.socketGroup }, "listening");

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

function serveConnection(socket: Socket, opts: RpcServerOptions): void {
  const decoder = new FrameDecoder(MAX_FRAME_BYTES);
  const maxInFlight = opts.maxInFlightPerConnection ?? 256;
  let inFlight = 0;
  let chain: Promise<void> = Promise.resolve();
  socket.setTimeout(opts.idleTimeoutMs ?? 10 * 60 * 1000, () => socket.destroy());
  socket.on("error", () => socket.destroy());

  const send = (response: RpcResponse): void => {
    if (!socket.destroyed) socket.write(encodeFrame(response));
  };

  socket.on("data", (chunk: Buffer) => {
    let frames: string[];
    try {
      frames = decoder.push(chunk);
    } catch (err) {
      if (err instanceof FrameTooLargeError) {
        opts.log.warn({ event: "rpc.frame_too_large" }, "dropping connection: frame over limit");
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
      if (inFlight >= maxInFlight) {
        opts.log.warn({ event: "rpc.overrun" }, "dropping connection: too many unanswered requests");
        socket.destroy();
        return;
      }
      inFlight += 1;
      // Requests of one connection are dispatched at once and answered in arrival order: the server
      // multiplexes every knock over one connection, and only concurrent opens can share a group commit.
      // Dispatched one after the other (as before), each knock cost its own firewall transaction and a
      // burst of 256 waiting knocks overran the limit, which dropped the connection and failed them all.
      const answer = opts.dispatch(frame);
      chain = chain.then(async () => {
        const response = await answer.catch(() => undefined);
        inFlight -= 1;
        if (response !== undefined) send(response);
      });
    }
  });
}
