import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, unlinkSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import type { Logger } from "./log.js";
import { takeInstanceLock } from "@knockport/durable-file/instance-lock";
import { MAX_IN_FLIGHT_PER_CONNECTION, type RpcResponse, type SocketName } from "@knockport/protocol";
import { serveConnection, type ConnectionLimits } from "./connection.js";
import type { RpcPeer } from "./helper-context.js";

export class SocketSetupError extends Error {
  readonly code = "SOCKET_SETUP_FAILED";
}

export interface SocketLimits extends ConnectionLimits {
  /** Connections at once; one more is closed as soon as it is accepted. */
  maxConnections: number;
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
  if (!Number.isInteger(gid)) {
    throw new SocketSetupError(`${flag} ${group}: no such group; create it (groupadd ${group}) or pick another`);
  }
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

/** One of the helper's listening sockets (connection.ts serves each connection). */
export async function startRpcServer(opts: RpcServerOptions): Promise<{ close(): Promise<void> }> {
  const { socketPath, log } = opts;
  const flag = opts.flag ?? "--socket";
  const gid = opts.socketGroup === undefined ? undefined : lookupGroupId(opts.socketGroup, `${flag}-group`);
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o755 });
  // Held for the process's life: the stale-socket probe and unlink below cannot race another helper's
  // start, which could otherwise unlink the socket the other just bound.
  const lock = await takeInstanceLock(`${socketPath}.lock`, `${flag} ${socketPath}`);
  try {
    await removeStaleSocket(socketPath, flag);
  } catch (err) {
    lock.release();
    throw err;
  }

  const limits: SocketLimits = { ...SOCKET_LIMITS[opts.name ?? "knock"], ...opts };
  const connections = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: false }, (socket) => {
    connections.add(socket);
    socket.on("close", () => connections.delete(socket));
    serveConnection(socket, opts.dispatch, opts.log, limits);
  });
  server.maxConnections = limits.maxConnections;
  server.on("drop", () => log.warn({ event: "rpc.connection_refused", socket: socketPath, limit: server.maxConnections }, "connection refused: socket at its connection limit"));

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
    throw new SocketSetupError(`${flag} ${socketPath}: cannot set owner/mode (${(err as NodeJS.ErrnoException).code})`);
  }
  server.on("error", (err) => log.error({ event: "socket.error", err: err.message }, "socket server error"));
  log.info({ event: "socket.listening", name: opts.name ?? "knock", socket: socketPath, mode: gid === undefined ? "0600" : "0660", group: opts.socketGroup }, "listening");

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

