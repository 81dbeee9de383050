/** The knock's network steps: stealth step 1, HTTPS step 2, the service check. */
import { createSocket } from "node:dgram";
import { request as httpsRequest } from "node:https";
import { connect, isIP, type Socket } from "node:net";
import { createInterface } from "node:readline";
import { UsageError } from "@knockport/config";
import { EXIT } from "./knock-usage.js";
import { hostHeader, type KnockSettings } from "./knock-settings.js";

export class KnockFailure extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
    this.name = "KnockFailure";
  }
}

/** Reads one 6-digit code: prompts on a TTY, else takes the first line of stdin. Bounded by `timeoutMs`. */
export async function readToken(input: NodeJS.ReadStream, prompt: (s: string) => void, timeoutMs = 300_000): Promise<string> {
  if (input.isTTY) prompt("2FA token: ");
  const rl = createInterface({ input, terminal: false });
  try {
    const line = await new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      rl.once("line", (l) => {
        clearTimeout(timer);
        resolve(l);
      });
      rl.once("close", () => {
        clearTimeout(timer);
        resolve(undefined);
      });
    });
    const code = line?.trim();
    if (code === undefined || !/^\d{6}$/.test(code)) {
      throw new UsageError("--totp-prompt: expected the 6-digit code of your authenticator app on one line");
    }
    return code;
  } finally {
    rl.close();
  }
}

interface Step1Outcome {
  /** Status line of an answer, if any arrived (normally none: the firewall drops it). */
  status: number | undefined;
}

/** Connects, sends the request in a single write, waits `waitMs` for an answer, then resets the connection. */
export function sendStep1(address: string, port: number, request: string, waitMs: number, connectTimeoutMs = 3000): Promise<Step1Outcome> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: address, port, noDelay: true });
    let received = "";
    let settled = false;
    const finish = (err: KnockFailure | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      clearTimeout(waitTimer);
      // RST rather than FIN: the server's replies are dropped, so a FIN would be retransmitted for minutes
      if (!socket.destroyed) socket.resetAndDestroy();
      if (err) reject(err);
      else {
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(received);
        resolve({ status: m?.[1] !== undefined ? Number(m[1]) : undefined });
      }
    };
    let waitTimer: NodeJS.Timeout | undefined;
    const connectTimer = setTimeout(
      () => finish(new KnockFailure(EXIT.STEP1_UNREACHABLE, `step 1: no connection to ${hostHeader(address, port)} within ${connectTimeoutMs} ms; check --host and --http-port`)),
      connectTimeoutMs,
    );
    socket.once("connect", () => {
      clearTimeout(connectTimer);
      socket.write(request);
      waitTimer = setTimeout(() => finish(undefined), waitMs);
    });
    socket.on("data", (d: Buffer) => {
      received += d.toString("latin1");
      if (received.length > 4096 || /\r\n\r\n/.test(received)) finish(undefined);
    });
    socket.once("error", (err: NodeJS.ErrnoException) => {
      if (waitTimer !== undefined) return finish(undefined); // after the send: the server reset it, as it does
      finish(new KnockFailure(EXIT.STEP1_UNREACHABLE, `step 1: cannot connect to ${hostHeader(address, port)} (${err.code ?? err.message}); check --host and --http-port`));
    });
    socket.once("close", () => {
      if (waitTimer !== undefined) finish(undefined);
    });
  });
}

const TLS_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_GET_ISSUER_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "CERT_SIGNATURE_FAILURE",
]);

interface Step2Attempt {
  kind: "answer" | "unreachable" | "tls";
  status?: number;
  body?: string;
  detail?: string;
}

function step2Once(
  address: string,
  s: KnockSettings,
  ca: Buffer | undefined,
  attemptMs: number,
  close: boolean,
): Promise<Step2Attempt> {
  const body = new URLSearchParams({ app: s.app, access_key: s.httpsKey, ...(close ? { close: "1" } : {}) }).toString();
  const servername = s.tlsName ?? (isIP(s.host) === 0 ? s.host : undefined);
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: Step2Attempt): void => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        resolve(r);
      }
    };
    const req = httpsRequest({
      host: address,
      port: s.httpsPort,
      path: s.httpsPath,
      method: "POST",
      agent: false,
      headers: {
        host: hostHeader(s.host, s.httpsPort),
        "content-type": "application/x-www-form-urlencoded",
        "content-length": Buffer.byteLength(body),
      },
      rejectUnauthorized: !s.insecure,
      ...(ca !== undefined ? { ca } : {}),
      ...(servername !== undefined ? { servername } : {}),
    });
    const timer = setTimeout(() => {
      req.destroy();
      finish({ kind: "unreachable", detail: `no answer within ${attemptMs} ms` });
    }, attemptMs);
    req.on("response", (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        if (text.length < 4096) text += d;
      });
      res.on("end", () => finish({ kind: "answer", status: res.statusCode ?? 0, body: text }));
      res.on("error", () => finish({ kind: "answer", status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", (err: NodeJS.ErrnoException) => {
      const code = err.code ?? "";
      if (TLS_CODES.has(code)) finish({ kind: "tls", detail: `${code}: ${err.message}` });
      else finish({ kind: "unreachable", detail: code || err.message });
    });
    req.end(body);
  });
}

/** Tries step 2 until it gets an answer or `timeoutMs` passed (the HTTPS port drops SYNs until step 1 took effect). */
export async function sendStep2(address: string, s: KnockSettings, ca: Buffer | undefined, close = false): Promise<{ status: number; body: string }> {
  const deadline = Date.now() + s.step2TimeoutMs;
  let last = "";
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    const started = Date.now();
    const r = await step2Once(address, s, ca, Math.min(left, 2500), close);
    if (r.kind === "answer") return { status: r.status ?? 0, body: r.body ?? "" };
    if (r.kind === "tls") {
      throw new KnockFailure(
        EXIT.TLS,
        `step 2: the server's certificate was not accepted (${r.detail}); pass --ca FILE with its CA or certificate, --tls-name NAME for the name it carries, or --insecure for a test setup`,
      );
    }
    last = r.detail ?? "";
    // a refused or reset connection comes back at once: pause instead of spinning
    const spent = Date.now() - started;
    if (spent < 250) await new Promise((res) => setTimeout(res, 250 - spent));
  }
  throw new KnockFailure(
    EXIT.STEP2_UNREACHABLE,
    `step 2: the HTTPS port ${hostHeader(address, s.httpsPort)} stayed closed for ${s.step2TimeoutMs} ms (${last}); step 1 was probably refused — check --app, --http-key, --http-path, --http-port and the 2FA token (each code works once) — or step 2 came after step2_https_duration, or the server/helper is down`,
  );
}

/** "open" when the service answers (tcp: connection accepted; udp: any datagram back). */
export async function checkServicePort(address: string, port: number, protocol: "tcp" | "udp", timeoutMs = 2000): Promise<"open" | "closed" | "silent"> {
  if (protocol === "tcp") {
    return new Promise((resolve) => {
      const socket = connect({ host: address, port });
      const timer = setTimeout(() => {
        socket.destroy();
        resolve("closed");
      }, timeoutMs);
      socket.once("connect", () => {
        clearTimeout(timer);
        socket.destroy();
        resolve("open");
      });
      socket.once("error", () => {
        clearTimeout(timer);
        resolve("closed");
      });
    });
  }
  return new Promise((resolve) => {
    const sock = createSocket(isIP(address) === 6 ? "udp6" : "udp4");
    const done = (r: "open" | "closed" | "silent"): void => {
      clearTimeout(timer);
      try {
        sock.close();
      } catch {
        /* already closed */
      }
      resolve(r);
    };
    const timer = setTimeout(() => done("silent"), timeoutMs);
    sock.once("message", () => done("open"));
    sock.once("error", () => done("closed")); // ICMP port unreachable on a connected socket
    sock.connect(port, address, () => sock.send(Buffer.from("knockport check\n")));
  });
}

