// Pieces of a knock client shared by the tools that run inside a network namespace
// (bench/tools/knock-to-open.mjs, test/e2e/tools/load-knock.mjs). Plain ESM, no dependencies.
import net from "node:net";

/** The JSON job a tool reads on stdin. */
export async function readJsonStdin() {
  let text = "";
  for await (const chunk of process.stdin) text += chunk;
  return JSON.parse(text);
}

/**
 * Step 1 as one raw TCP write from `localAddress`: the stealth port never answers (its replies are
 * dropped by design), so nothing is awaited; the socket is dropped after 1.5 s.
 */
export function sendStep1Raw({ srvIp, httpPort, httpPath, app, key, localAddress }) {
  const body = `app=${encodeURIComponent(app)}&access_key=${encodeURIComponent(key)}`;
  const request =
    `POST ${httpPath} HTTP/1.1\r\nHost: k\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
  const s = net.connect({ host: srvIp, port: httpPort, localAddress });
  s.setNoDelay(true);
  s.on("connect", () => s.write(request));
  s.on("error", () => {});
  setTimeout(() => s.destroy(), 1500).unref();
}
