#!/usr/bin/env node
// Load generator for test/e2e/load.test.ts, run inside the knocker's network namespace.
// Reads a JSON job on stdin, prints one JSON result on stdout. Every source address runs its knocks one
// after the other (addresses in parallel); a knock is
//   1. step 1 in one raw TCP write (no answer by design; the socket is dropped after 1.5 s),
//   2. step 2 over HTTPS from the same address, retried only while the HTTPS port does not accept the
//      TCP connection yet (a dropped SYN never reaches the server, so it does not count against the
//      rate limit); the answer's status is recorded.
// Then every address in `checkIps` connects to the service port (TCP): open or closed.
// Every wait is bounded: connect attempts 300 ms, at most `maxConnectAttempts` per step 2, `giveUpMs` overall.
import https from "node:https";
import net from "node:net";
import { readJsonStdin, sendStep1Raw } from "../../../packages/testbed/tools/knock-client.mjs";

const job = await readJsonStdin();
const { srvIp, httpPort, httpsPort, httpPath, httpsPath, knocks, servicePort, checkIps } = job;
const maxConnectAttempts = job.maxConnectAttempts ?? 20;
const giveUpMs = job.giveUpMs ?? 30_000;
const started = Date.now();

/** One HTTPS request; resolves with the status, or "connect-timeout" when the TCP connect did not complete in 300 ms. */
function step2Once(localAddress, app, key) {
  return new Promise((resolve) => {
    const body = `app=${encodeURIComponent(app)}&access_key=${encodeURIComponent(key)}`;
    let connected = false;
    const req = https.request(
      {
        host: srvIp, port: httpsPort, path: httpsPath, method: "POST", localAddress, rejectUnauthorized: false, agent: false,
        headers: { "content-type": "application/x-www-form-urlencoded", "content-length": Buffer.byteLength(body) },
        timeout: 5000,
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode));
      },
    );
    req.on("socket", (s) => {
      s.on("connect", () => (connected = true));
      setTimeout(() => {
        if (!connected) req.destroy(new Error("connect-timeout"));
      }, 300).unref();
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (e) => resolve(connected ? `error: ${e.message}` : "connect-timeout"));
    req.end(body);
  });
}

async function knock(k) {
  const t0 = Date.now();
  sendStep1Raw({ srvIp, httpPort, httpPath, app: k.app, key: k.httpKey, localAddress: k.ip });
  let attempts = 0;
  let status = "connect-timeout";
  while (attempts < maxConnectAttempts && Date.now() - started < giveUpMs) {
    attempts++;
    status = await step2Once(k.ip, k.app, k.httpsKey);
    if (status !== "connect-timeout") break;
  }
  return { ip: k.ip, app: k.app, status, attempts, ms: Date.now() - t0 };
}

function connectCheck(localAddress) {
  return new Promise((resolve) => {
    const s = net.connect({ host: srvIp, port: servicePort, localAddress });
    const done = (state) => {
      clearTimeout(timer);
      s.destroy();
      resolve({ ip: localAddress, state });
    };
    const timer = setTimeout(() => done("closed"), 500);
    s.on("connect", () => done("open"));
    s.on("error", () => done("closed"));
  });
}

// Group the knocks by address: one address knocks sequentially, addresses run in parallel.
const byIp = new Map();
for (const k of knocks) {
  if (!byIp.has(k.ip)) byIp.set(k.ip, []);
  byIp.get(k.ip).push(k);
}
const results = [];
await Promise.all(
  [...byIp.values()].map(async (list) => {
    for (const k of list) results.push(await knock(k));
  }),
);
const knocksDoneMs = Date.now() - started;
const checks = await Promise.all((checkIps ?? []).map((ip) => connectCheck(ip)));
process.stdout.write(`${JSON.stringify({ knocksDoneMs, results, checks })}\n`);
