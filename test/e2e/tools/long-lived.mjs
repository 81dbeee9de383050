#!/usr/bin/env node
// One long-lived TCP connection for test/e2e/faults.test.ts, run in a client namespace:
//   node long-lived.mjs HOST PORT RUN_MS
// Connects, writes a short line every 100 ms for RUN_MS (bounded), records when each echo came back,
// and prints one JSON line: { connected, echoes: [epoch ms...], end: "timeout" | "error: ..." | "closed" }.
import net from "node:net";

const [host, portText, runText] = process.argv.slice(2);
const runMs = Math.min(Number(runText), 60_000);
const echoes = [];
let connected;
let end = "timeout";
const s = net.connect({ host, port: Number(portText) });
s.setNoDelay(true);
s.on("connect", () => (connected = Date.now()));
s.on("data", () => echoes.push(Date.now()));
s.on("error", (e) => (end = `error: ${e.code ?? e.message}`));
s.on("close", () => {
  if (end === "timeout") end = "closed";
});
const timer = setInterval(() => {
  if (connected !== undefined && !s.destroyed) s.write("ping\n");
}, 100);
setTimeout(() => {
  clearInterval(timer);
  s.destroy();
  process.stdout.write(`${JSON.stringify({ connected, echoes, end })}\n`);
}, runMs);
