#!/usr/bin/env node
// Floor probe, run inside the knocker's namespace by `pnpm bench` (floor measurements). JSON job on
// stdin, one JSON result on stdout. Every source address is used once, so every knock starts closed.
//   mode "curl": for each address, interleaved (the order alternates run by run), one curl POST to the
//     floor (a do-nothing HTTPS server) and one knock (step 1 raw, wait until the HTTPS port accepts,
//     step 2 with curl). Both figures are curl's own time_total; right after step 2's answer one connect
//     to the service port tells whether the port was open when the answer came.
//   mode "concurrent": `sourceIps.length` knockers start at one instant (step 1, wait, step 2 over
//     node's https, poll the service port): the time from that instant until the last port is open; and
//     as many concurrent POSTs to the floor: the time until the last answer.
import { execFile } from "node:child_process";
import { connectsWithin, httpsPost, now, pollConnect } from "./probe-lib.mjs";
import { readJsonStdin, sendStep1Raw } from "../../packages/testbed/tools/knock-client.mjs";

const job = await readJsonStdin();
const { srvIp, httpPort, httpsPort, httpPath, httpsPath, app, httpKey, httpsKey, servicePort, sourceIps, floorPort } = job;
const host = srvIp;
const step2Body = `app=${encodeURIComponent(app)}&access_key=${encodeURIComponent(httpsKey)}`;

/** curl's own figure for one POST from `ip`: { status, timeTotalMs } (status 0: curl failed). */
function curlPost(ip, port, path, body) {
  return new Promise((resolve) => {
    execFile(
      "curl",
      ["-s", "-o", "/dev/null", "-k", "-m", "5", "--interface", ip, "-w", "%{http_code} %{time_total}", "--data-binary", body,
        "-H", "content-type: application/x-www-form-urlencoded", `https://${host}:${port}${path}`],
      { timeout: 10_000 },
      (err, stdout) => {
        const [code, total] = String(stdout).trim().split(" ");
        resolve({ status: err ? 0 : Number(code), timeTotalMs: Number(total) * 1000 });
      },
    );
  });
}

async function step1AndWait(ip, t0) {
  sendStep1Raw({ srvIp, httpPort, httpPath, app, key: httpKey, localAddress: ip });
  return pollConnect({ host, port: httpsPort, localAddress: ip, startAt: t0, pollMs: job.pollMs ?? 1 });
}

async function floorRun(ip) {
  const r = await curlPost(ip, floorPort, "/", step2Body);
  return r.status === 200 ? { floorMs: r.timeTotalMs } : { floorError: `floor answered ${r.status}` };
}

async function knockRun(ip) {
  const httpsOpen = await step1AndWait(ip, now());
  if (httpsOpen === undefined) return { knockError: "HTTPS port did not open after step 1" };
  const r = await curlPost(ip, httpsPort, httpsPath, step2Body);
  // at once after the answer: is the port already open? (a dropped SYN would take the whole timeout)
  const openAtAnswer = await connectsWithin({ host, port: servicePort, localAddress: ip, timeoutMs: 300 });
  return r.status === 200 ? { answerMs: r.timeTotalMs, openAtAnswer } : { knockError: `step 2 answered ${r.status}` };
}

if (job.mode === "curl") {
  const runs = [];
  for (const [i, ip] of sourceIps.entries()) {
    const first = i % 2 === 0 ? floorRun : knockRun;
    const second = first === floorRun ? knockRun : floorRun;
    runs.push({ ip, ...(await first(ip)), ...(await second(ip)) });
  }
  process.stdout.write(`${JSON.stringify({ runs })}\n`);
} else if (job.mode === "concurrent") {
  const pollMs = job.pollMs ?? 2;
  const t0 = now();
  const knocks = await Promise.all(
    sourceIps.map(async (ip) => {
      const httpsOpen = await step1AndWait(ip, t0);
      if (httpsOpen === undefined) return { ip, error: "HTTPS port did not open after step 1" };
      const opened = pollConnect({ host, port: servicePort, localAddress: ip, startAt: t0, pollMs });
      const status = await httpsPost({ host, port: httpsPort, path: httpsPath, body: step2Body, localAddress: ip });
      const answerMs = now() - t0;
      const openMs = await opened;
      return status === 200 && openMs !== undefined ? { ip, openMs, answerMs } : { ip, error: `step 2 answered ${status}, service open: ${openMs !== undefined}` };
    }),
  );
  await new Promise((r) => setTimeout(r, 200)); // the knockers' sockets settle before the floor's turn
  const f0 = now();
  const floor = await Promise.all(
    sourceIps.map(async (ip) => {
      const status = await httpsPost({ host, port: floorPort, path: "/", body: step2Body, localAddress: ip });
      return { status, answerMs: now() - f0 };
    }),
  );
  process.stdout.write(`${JSON.stringify({ knocks, floor })}\n`);
} else {
  throw new Error(`floor-probe: unknown mode ${String(job.mode)}`);
}
