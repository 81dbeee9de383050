#!/usr/bin/env node
// Cluster bench probe (`pnpm bench --only cluster`): a knock on gateway A, the service port watched on
// gateway B. The two gateways are separate topologies, so two processes take part, joined by a Unix
// socket (the file system is shared across network namespaces):
//   role "watch", in B's client namespace: listens on `socketPath`; for each line {"ip"} it starts a
//     new connect to B's service port from that address every `pollMs` and answers {"ip","openAt"}
//     (epoch ms of the first attempt that connected; omitted after `giveUpMs`), after {"ip","polling"}.
//   role "knock", in A's client namespace: for each address, step 1 at A, wait for A's HTTPS port, ask
//     the watcher to poll B, then send step 2 to A while polling A's service port too.
// Times across the two processes are epoch ms (performance.timeOrigin + performance.now(): the same
// system clock, sub-ms resolution).
import net from "node:net";
import { createInterface } from "node:readline";
import { httpsPost, now, pollConnect } from "./probe-lib.mjs";
import { readJsonStdin, sendStep1Raw } from "../../packages/testbed/tools/knock-client.mjs";

const epoch = () => performance.timeOrigin + performance.now();
const job = JSON.parse(process.argv[2] ?? "null") ?? (await readJsonStdin());
const pollMs = job.pollMs ?? 1;
const giveUpMs = job.giveUpMs ?? 5000;

function watch() {
  const server = net.createServer((conn) => {
    const lines = createInterface({ input: conn });
    lines.on("line", (line) => {
      const { ip } = JSON.parse(line);
      // the same instant on both clocks: pollConnect measures with the monotonic one
      const startEpoch = epoch();
      const startMono = now();
      conn.write(`${JSON.stringify({ ip, polling: true })}\n`);
      void pollConnect({ host: job.srvIp, port: job.servicePort, localAddress: ip, startAt: startMono, pollMs, giveUpMs }).then((t) => {
        conn.write(`${JSON.stringify(t === undefined ? { ip } : { ip, openAt: startEpoch + t })}\n`);
      });
    });
    conn.on("error", () => {});
  });
  server.listen(job.socketPath, () => process.stdout.write("watching\n"));
  process.on("SIGTERM", () => process.exit(0));
}

if (job.role === "watch") watch();
else await knock();

async function knock() {
  const conn = net.connect(job.socketPath);
  await new Promise((resolve, reject) => {
    conn.once("connect", resolve);
    conn.once("error", reject);
  });
  const replies = createInterface({ input: conn });
  const waiting = [];
  replies.on("line", (line) => waiting.shift()?.(JSON.parse(line)));
  const next = () => new Promise((resolve) => waiting.push(resolve));
  const runs = [];
  for (const ip of job.sourceIps) {
    const t1 = now();
    sendStep1Raw({ srvIp: job.srvIp, httpPort: job.httpPort, httpPath: job.httpPath, app: job.app, key: job.httpKey, localAddress: ip });
    const httpsOpen = await pollConnect({ host: job.srvIp, port: job.httpsPort, localAddress: ip, startAt: t1, pollMs, giveUpMs });
    if (httpsOpen === undefined) {
      runs.push({ ip, error: "HTTPS port at A did not open after step 1" });
      continue;
    }
    const polling = next();
    const opened = next();
    conn.write(`${JSON.stringify({ ip })}\n`);
    await polling;
    const sentAt = epoch();
    const t2 = now();
    const openA = pollConnect({ host: job.srvIp, port: job.servicePort, localAddress: ip, startAt: t2, pollMs, giveUpMs });
    const status = await httpsPost({ host: job.srvIp, port: job.httpsPort, path: job.httpsPath, body: `app=${job.app}&access_key=${job.httpsKey}`, localAddress: ip });
    const answerMs = now() - t2;
    const [openAMs, atB] = await Promise.all([openA, opened]);
    if (status !== 200 || atB.openAt === undefined) runs.push({ ip, error: `step 2 answered ${status}; open at A: ${openAMs !== undefined}, at B: ${atB.openAt !== undefined}` });
    else runs.push({ ip, answerMs, openAMs, openBMs: atB.openAt - sentAt, sentAt });
  }
  conn.end();
  process.stdout.write(`${JSON.stringify({ runs })}\n`);
  process.exit(0);
}
