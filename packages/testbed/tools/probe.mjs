#!/usr/bin/env node
// Reachability probe, run inside a network namespace by @knockport/testbed.
//
//   node probe.mjs tcp|udp|tcp-connect HOST PORT [TIMEOUT_MS]
//
// Prints exactly one word on stdout and exits 0:
//   open    tcp: connected AND the echo service sent our token back
//           udp: the echo service sent our token back
//           tcp-connect: the TCP handshake completed (no data exchanged)
//   closed  anything else (timeout, refused, reset, no echo)
// The reason (timeout, refused, reset, no-echo, ...) goes to stderr for diagnostics.
import { randomBytes } from "node:crypto";
import dgram from "node:dgram";
import net from "node:net";

const [mode, host, portText, timeoutText] = process.argv.slice(2);
const port = Number(portText);
const timeoutMs = Math.min(Math.max(Number(timeoutText ?? 500) || 500, 10), 30_000);
if (!["tcp", "udp", "tcp-connect"].includes(mode ?? "") || !host || !Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write("usage: probe.mjs tcp|udp|tcp-connect HOST PORT [TIMEOUT_MS]\n");
  process.exit(2);
}

const token = `kp-probe-${randomBytes(8).toString("hex")}\n`;
let done = false;
function finish(state, reason) {
  if (done) return;
  done = true;
  process.stdout.write(`${state}\n`);
  process.stderr.write(`${reason}\n`);
  // Exit on the next tick so stdout is flushed; sockets are simply dropped.
  setImmediate(() => process.exit(0));
}
setTimeout(() => finish("closed", "timeout"), timeoutMs).unref();

if (mode === "udp") {
  const socket = dgram.createSocket(net.isIPv6(host) ? "udp6" : "udp4");
  socket.on("error", (err) => finish("closed", err.code === "ECONNREFUSED" ? "refused" : `error ${err.code ?? err.message}`));
  socket.on("message", (msg) => {
    if (msg.toString() === token) finish("open", "echo");
  });
  // A connected socket surfaces ICMP port-unreachable as ECONNREFUSED.
  socket.connect(port, host, () => socket.send(token));
} else {
  const socket = net.connect({ host, port });
  socket.setNoDelay(true);
  let received = "";
  socket.on("connect", () => {
    if (mode === "tcp-connect") {
      finish("open", "connected");
      socket.destroy();
      return;
    }
    socket.write(token);
  });
  socket.on("data", (chunk) => {
    received += chunk.toString();
    if (received.includes(token)) {
      finish("open", "echo");
      socket.destroy();
    } else if (received.length > 4096) {
      finish("closed", "no-echo");
    }
  });
  socket.on("error", (err) =>
    finish("closed", err.code === "ECONNREFUSED" ? "refused" : err.code === "ECONNRESET" ? "reset" : `error ${err.code ?? err.message}`),
  );
  socket.on("end", () => finish("closed", "no-echo"));
}
