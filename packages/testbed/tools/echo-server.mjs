#!/usr/bin/env node
// Echo service for the end-to-end tests and the demo, run inside srv (or lan) by @knockport/testbed.
//
//   node echo-server.mjs [--tcp PORT]... [--udp PORT]...
//
// Listens on "::" (dual stack: IPv4 and IPv6) for every given port, echoes what it receives, and prints
// "echo ready" once every listener is up. Logs one line per TCP connection / UDP datagram peer.
import dgram from "node:dgram";
import net from "node:net";

const args = process.argv.slice(2);
const tcpPorts = [];
const udpPorts = [];
for (let i = 0; i < args.length; i += 2) {
  const port = Number(args[i + 1]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    process.stderr.write(`echo-server: bad port ${String(args[i + 1])}\n`);
    process.exit(2);
  }
  if (args[i] === "--tcp") tcpPorts.push(port);
  else if (args[i] === "--udp") udpPorts.push(port);
  else {
    process.stderr.write("usage: echo-server.mjs [--tcp PORT]... [--udp PORT]...\n");
    process.exit(2);
  }
}
if (tcpPorts.length + udpPorts.length === 0) {
  process.stderr.write("usage: echo-server.mjs [--tcp PORT]... [--udp PORT]...\n");
  process.exit(2);
}

const listeners = [];
for (const port of tcpPorts) {
  listeners.push(
    new Promise((resolve, reject) => {
      const server = net.createServer((socket) => {
        process.stdout.write(`tcp ${port} connection from ${socket.remoteAddress}\n`);
        socket.on("error", () => socket.destroy());
        socket.setTimeout(30_000, () => socket.destroy());
        socket.pipe(socket);
      });
      server.maxConnections = 256;
      server.on("error", reject);
      server.listen({ host: "::", port, ipv6Only: false }, () => resolve());
    }),
  );
}
for (const port of udpPorts) {
  listeners.push(
    new Promise((resolve, reject) => {
      const socket = dgram.createSocket({ type: "udp6", ipv6Only: false });
      socket.on("error", reject);
      socket.on("message", (msg, rinfo) => {
        process.stdout.write(`udp ${port} datagram from ${rinfo.address}\n`);
        socket.send(msg, rinfo.port, rinfo.address);
      });
      socket.bind({ address: "::", port }, () => resolve());
    }),
  );
}

Promise.all(listeners).then(
  () => process.stdout.write(`echo ready tcp=${tcpPorts.join(",")} udp=${udpPorts.join(",")}\n`),
  (err) => {
    process.stderr.write(`echo-server: ${err.message}\n`);
    process.exit(1);
  },
);
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
