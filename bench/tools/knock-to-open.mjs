#!/usr/bin/env node
// Benchmark probe, run inside the knocker's network namespace by `pnpm bench`.
// Reads a JSON job on stdin, prints one JSON result on stdout. For each source address it:
//   1. sends the step-1 knock in one segment (no answer comes back by design),
//   2. waits until the HTTPS port accepts a connection from that address,
//   3. sends step 2 and, from the same instant, starts a new connect to the service port
//      every `pollMs` until one succeeds: knock-to-open = that attempt's start - step-2 send.
import net from "node:net";
import { httpsPost, now, pollConnect as pollConnectFrom } from "./probe-lib.mjs";
import { readJsonStdin, sendStep1Raw } from "../../packages/testbed/tools/knock-client.mjs";

const job = await readJsonStdin();
const { srvIp, httpPort, httpsPort, httpPath, httpsPath, app, httpKey, httpsKey, servicePort, sourceIps } = job;
const pollMs = job.pollMs ?? 1;
const giveUpMs = job.giveUpMs ?? 3000;

const pollConnect = (localAddress, port, startAt) => pollConnectFrom({ host: srvIp, port, localAddress, startAt, pollMs, giveUpMs });
const sendStep2 = (localAddress) =>
  httpsPost({ host: srvIp, port: httpsPort, path: httpsPath, body: `app=${app}&access_key=${httpsKey}`, localAddress });

/** Mode "watch": when does the service port close for `ip`? Connect attempts every 10 ms; the first
 * one that does not connect within 150 ms started after the port closed. */
async function watchClose(ip) {
  const stepMs = 10;
  const attemptTimeoutMs = 150;
  const giveUpAt = Date.now() + giveUpMs;
  const pending = new Set();
  return new Promise((resolve) => {
    let firstFailEpoch;
    let lastOkEpoch;
    const timer = setInterval(() => {
      if (Date.now() > giveUpAt || firstFailEpoch !== undefined) {
        clearInterval(timer);
        for (const s of pending) s.destroy();
        // settle once every attempt started before the failure has had its chance
        setTimeout(() => resolve({ ip, lastOkEpoch, firstFailEpoch }), attemptTimeoutMs + 20);
        return;
      }
      const started = Date.now();
      const s = net.connect({ host: srvIp, port: servicePort, localAddress: ip });
      pending.add(s);
      const t = setTimeout(() => {
        if (firstFailEpoch === undefined || started < firstFailEpoch) firstFailEpoch = started;
        s.destroy();
        pending.delete(s);
      }, attemptTimeoutMs);
      s.on("connect", () => {
        clearTimeout(t);
        if (lastOkEpoch === undefined || started > lastOkEpoch) lastOkEpoch = started;
        s.destroy();
        pending.delete(s);
      });
      s.on("error", () => {});
    }, stepMs);
  });
}

if (job.mode === "watch") {
  const results = await Promise.all(sourceIps.map((ip) => watchClose(ip)));
  process.stdout.write(`${JSON.stringify({ results })}\n`);
  process.exit(0);
}

const runs = [];
for (const ip of sourceIps) {
  const t1 = now();
  sendStep1Raw({ srvIp, httpPort, httpPath, app, key: httpKey, localAddress: ip });
  const httpsOpenMs = await pollConnect(ip, httpsPort, t1);
  if (httpsOpenMs === undefined) {
    runs.push({ ip, error: "HTTPS port did not open after step 1" });
    continue;
  }
  const t2 = now();
  const opened = pollConnect(ip, servicePort, t2);
  const status = await sendStep2(ip);
  const answerMs = now() - t2;
  const answerEpochMs = Date.now();
  const openMs = await opened;
  runs.push(openMs === undefined || status !== 200 ? { ip, error: `step 2 answered ${status}, service open: ${openMs !== undefined}` } : { ip, step1ToHttpsMs: httpsOpenMs, openMs, answerMs, answerEpochMs });
}
process.stdout.write(`${JSON.stringify({ runs })}\n`);
