#!/usr/bin/env node
// Load generator for `pnpm bench`, run inside a network namespace. Reads a JSON job on stdin:
//   { url, body, rate (requests/s, 0 = as fast as possible), concurrency, seconds, insecure, connectTimeoutMs }
// Sends POST requests (a new connection each, as knock clients do) for `seconds`, at most
// `rate` per second, then prints { sent, answered: {status: count}, dropped, errors, seconds } as JSON.
// `dropped`: attempts whose TCP connection was not established within connectTimeoutMs (default 5000):
// in a namespace the kernel answers a SYN in well under a millisecond, so that is the firewall dropping
// the SYN; the attacker gives up and tries again rather than waiting for SYN retransmits.
import http from "node:http";
import https from "node:https";
import { readJsonStdin } from "../../packages/testbed/tools/knock-client.mjs";

const job = await readJsonStdin();
const url = new URL(job.url);
const lib = url.protocol === "https:" ? https : http;
const seconds = Math.min(Math.max(job.seconds ?? 5, 1), 120);
const concurrency = Math.min(Math.max(job.concurrency ?? 16, 1), 512);
const rate = Math.max(job.rate ?? 0, 0);
const answered = {};
let sent = 0;
let errors = 0;
let dropped = 0;
const connectTimeoutMs = Math.min(Math.max(job.connectTimeoutMs ?? 5000, 10), 5000);
const start = Date.now();
const endAt = start + seconds * 1000;

function one() {
  return new Promise((resolve) => {
    const req = lib.request(
      {
        host: url.hostname.replace(/^\[|\]$/g, ""), port: url.port, path: url.pathname, method: "POST", agent: false,
        rejectUnauthorized: false, timeout: 5000,
        headers: { "content-type": "application/x-www-form-urlencoded", "content-length": Buffer.byteLength(job.body) },
      },
      (res) => {
        answered[res.statusCode] = (answered[res.statusCode] ?? 0) + 1;
        res.resume();
        res.on("end", resolve);
      },
    );
    let notConnected = false;
    req.on("socket", (socket) => {
      const timer = setTimeout(() => {
        notConnected = true;
        req.destroy(new Error("connect timeout"));
      }, connectTimeoutMs);
      socket.once("connect", () => clearTimeout(timer));
      socket.once("close", () => clearTimeout(timer));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => {
      if (notConnected) dropped += 1;
      else errors += 1;
      resolve();
    });
    req.end(job.body);
  });
}

async function worker(index) {
  while (Date.now() < endAt) {
    if (rate > 0) {
      // request number n of the whole run may start at start + n / rate
      const due = start + (sent * 1000) / rate;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (Date.now() >= endAt) break;
    }
    sent += 1;
    await one();
  }
  return index;
}

await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(i)));
process.stdout.write(`${JSON.stringify({ sent, answered, dropped, errors, seconds: (Date.now() - start) / 1000 })}\n`);
