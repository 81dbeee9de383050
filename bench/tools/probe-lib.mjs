// Pieces the bench's in-namespace probes share (knock-to-open.mjs, floor-probe.mjs). Plain ESM.
import https from "node:https";
import net from "node:net";

export const now = () => Number(process.hrtime.bigint()) / 1e6;

/**
 * A new connect from `localAddress` to `host:port` every `pollMs`; resolves with the start time of the
 * first attempt that succeeds, minus `startAt` (undefined after `giveUpMs`).
 */
export function pollConnect({ host, port, localAddress, startAt, pollMs = 1, giveUpMs = 3000 }) {
  return new Promise((resolve) => {
    const sockets = [];
    let done = false;
    const finish = (value) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      clearTimeout(deadline);
      for (const s of sockets) s.destroy();
      resolve(value);
    };
    const attempt = () => {
      const t = now();
      const s = net.connect({ host, port, localAddress });
      sockets.push(s);
      s.on("connect", () => finish(t - startAt));
      s.on("error", () => {});
    };
    attempt();
    const timer = setInterval(attempt, pollMs);
    const deadline = setTimeout(() => finish(undefined), giveUpMs);
  });
}

/** One POST over a new TLS connection (certificate not checked: the bench's own test certificate); resolves with the status (0 on error). */
export function httpsPost({ host, port, path, body, localAddress }) {
  return new Promise((resolve) => {
    const req = https.request(
      {
        host, port, path, method: "POST", localAddress, rejectUnauthorized: false, agent: false,
        headers: { "content-type": "application/x-www-form-urlencoded", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode));
      },
    );
    req.on("error", () => resolve(0));
    req.end(body);
  });
}

/** One connect attempt: true when it is established within `timeoutMs` (in a namespace an open port answers in well under 1 ms). */
export function connectsWithin({ host, port, localAddress, timeoutMs }) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, localAddress });
    const t = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, timeoutMs);
    s.on("connect", () => {
      clearTimeout(t);
      s.destroy();
      resolve(true);
    });
    s.on("error", () => {
      clearTimeout(t);
      resolve(false);
    });
  });
}
