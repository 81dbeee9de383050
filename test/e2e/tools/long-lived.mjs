#!/usr/bin/env node
// One long-lived flow for the e2e suite (faults.test.ts, close-established.test.ts), run in a client namespace:
//   node long-lived.mjs HOST PORT RUN_MS [tcp|udp]
// tcp (default): connects and writes a short line every 100 ms; udp: sends a datagram every 100 ms from one
// socket (one flow). Runs for RUN_MS (bounded), records when each echo came back, and prints one JSON line:
// { connected, echoes: [epoch ms...], end: "timeout" | "error: ..." | "closed" }.
import dgram from "node:dgram";
import net from "node:net";

const [host, portText, runText, mode = "tcp"] = process.argv.slice(2);
const port = Number(portText);
const runMs = Math.min(Number(runText), 60_000);
const echoes = [];
let connected;
let end = "timeout";
let send;
let finish;
if (mode === "udp") {
  const s = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
  s.on("message", () => echoes.push(Date.now()));
  s.on("error", (e) => (end = `error: ${e.code ?? e.message}`));
  s.connect(port, host, () => (connected = Date.now()));
  send = () => connected !== undefined && s.send("ping\n");
  finish = () => s.close();
} else {
  const s = net.connect({ host, port });
  s.setNoDelay(true);
  s.on("connect", () => (connected = Date.now()));
  s.on("data", () => echoes.push(Date.now()));
  s.on("error", (e) => (end = `error: ${e.code ?? e.message}`));
  s.on("close", () => {
    if (end === "timeout") end = "closed";
  });
  send = () => connected !== undefined && !s.destroyed && s.write("ping\n");
  finish = () => s.destroy();
}
const timer = setInterval(send, 100);
setTimeout(() => {
  clearInterval(timer);
  finish();
  process.stdout.write(`${JSON.stringify({ connected, echoes, end })}\n`);
}, runMs);
