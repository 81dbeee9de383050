import { createSocket } from "node:dgram";
import { lookup } from "node:dns/promises";
import { readFileSync, statSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { connect, isIP, type Socket } from "node:net";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { UsageError, parsePortFlag } from "@knockport/config";
import { CLI_ERRORS, ROOT_ERRORS } from "@knockport/protocol/errors";

export const KNOCK_USAGE = `Usage: knockport knock --host HOST --app APP --http-path PATH --https-path PATH [options]

Knocks both steps from this machine: step 1 (stealth HTTP, gets no answer by design), then step 2
(HTTPS), then optionally checks that the service port answers.

  --host HOST            server name or address (one address is picked and used for every step)
  --app APP              app name from the server's config
  --http-key KEY         step-1 key (access_key_http)    } better in a --config file or the
  --https-key KEY        step-2 key (access_key_https)   } environment: keep keys off command lines
  --http-path PATH       step-1 path (global.http_post_path)
  --https-path PATH      step-2 path (global.https_post_path)
  --http-port N          step-1 port (default 8080)
  --https-port N         step-2 port (default 8443)
  --token CODE           current 6-digit 2FA code (one-time)
  --totp-prompt          ask for the 2FA code (TTY), or read it from the first line of stdin
  --ca FILE              trust this CA/certificate (PEM) for step 2 instead of the system store
  --tls-name NAME        name the certificate must carry (default HOST when it is a name)
  --insecure             do not verify the step-2 certificate (tests only)
  --check-port P[/udp]   afterwards, confirm the service port answers (tcp by default)
  -4, -6                 use IPv4 / IPv6 only
  --config FILE          client settings file (KEY=VALUE lines, names as the variables below)
  --step1-wait MS        how long step 1's connection is kept before it is reset (default 1000)
  --step2-timeout MS     how long to keep trying to reach the HTTPS port (default 5000)
  -h, --help             show this help

Every setting can come from the environment or the --config file (a flag wins over the
environment, which wins over the file): KNOCKPORT_HOST, KNOCKPORT_APP, KNOCKPORT_HTTP_KEY,
KNOCKPORT_HTTPS_KEY, KNOCKPORT_HTTP_PATH, KNOCKPORT_HTTPS_PATH, KNOCKPORT_HTTP_PORT,
KNOCKPORT_HTTPS_PORT, KNOCKPORT_CA, KNOCKPORT_TLS_NAME, KNOCKPORT_INSECURE (1), KNOCKPORT_CHECK_PORT;
KNOCKPORT_CONFIG names the file. The file should be mode 0600.

Exit codes:
  0  knocked (and --check-port answered)
  1  unexpected error
  2  bad flags or settings
  3  step 1 could not be sent (name not found, HTTP knock port unreachable or refused)
  4  the HTTPS port stayed closed: step 1 was refused (app, key, token or path wrong, token
     already used) or came too late, or the port is blocked on the way
  5  step 2 refused (403: wrong app or HTTPS key, or not the key paired with step 1's; 404: path)
  6  the HTTPS certificate could not be verified (use --ca FILE, --tls-name NAME, or --insecure)
  7  another answer (400 bad form, 429 rate limited, 500 server or helper error, ...)
  8  knocked, but --check-port found the service port closed or silent
`;

export const EXIT = {
  OK: 0,
  UNEXPECTED: 1,
  USAGE: ROOT_ERRORS.USAGE.exit,
  STEP1_UNREACHABLE: CLI_ERRORS.KNOCK_STEP1_UNREACHABLE.exit,
  STEP2_UNREACHABLE: CLI_ERRORS.KNOCK_STEP2_UNREACHABLE.exit,
  STEP2_REFUSED: CLI_ERRORS.KNOCK_STEP2_REFUSED.exit,
  TLS: CLI_ERRORS.KNOCK_TLS.exit,
  OTHER_ANSWER: CLI_ERRORS.KNOCK_OTHER_ANSWER.exit,
  CHECK_FAILED: CLI_ERRORS.KNOCK_CHECK_FAILED.exit,
} as const;

/** Step 1 must fit one packet of at most 500 bytes with IPv6 (40) and TCP headers with options (≤ 60). */
export const MAX_STEP1_REQUEST_BYTES = 400;

const ENV_NAMES = [
  "KNOCKPORT_HOST",
  "KNOCKPORT_APP",
  "KNOCKPORT_HTTP_KEY",
  "KNOCKPORT_HTTPS_KEY",
  "KNOCKPORT_HTTP_PATH",
  "KNOCKPORT_HTTPS_PATH",
  "KNOCKPORT_HTTP_PORT",
  "KNOCKPORT_HTTPS_PORT",
  "KNOCKPORT_CA",
  "KNOCKPORT_TLS_NAME",
  "KNOCKPORT_INSECURE",
  "KNOCKPORT_CHECK_PORT",
] as const;
type SettingName = (typeof ENV_NAMES)[number];

export interface KnockSettings {
  host: string;
  app: string;
  httpKey: string;
  httpsKey: string;
  httpPath: string;
  httpsPath: string;
  httpPort: number;
  httpsPort: number;
  token: string | undefined;
  totpPrompt: boolean;
  ca: string | undefined;
  tlsName: string | undefined;
  insecure: boolean;
  check: { port: number; protocol: "tcp" | "udp" } | undefined;
  family: 0 | 4 | 6;
  step1WaitMs: number;
  step2TimeoutMs: number;
}

/** Parses `KEY=VALUE` lines (`#` comments, optional `export `, optional single or double quotes), as sh would source them. */
export function parseSettingsFile(text: string, file: string): Partial<Record<SettingName, string>> {
  const out: Partial<Record<SettingName, string>> = {};
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const m = /^(?:export\s+)?([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!m) throw new UsageError(`${file}:${i + 1}: expected NAME=VALUE (names: ${ENV_NAMES.join(", ")})`);
    const [, name = "", rawValue = ""] = m;
    if (!(ENV_NAMES as readonly string[]).includes(name)) {
      throw new UsageError(`${file}:${i + 1}: unknown setting ${name}; known: ${ENV_NAMES.join(", ")}`);
    }
    let value = rawValue.trim();
    const q = value[0];
    if ((q === '"' || q === "'") && value.length >= 2 && value.endsWith(q)) value = value.slice(1, -1);
    out[name as SettingName] = value;
  });
  return out;
}

function parseMs(flag: string, value: string | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d{1,6}$/.test(value) || n < 0 || n > max) throw new UsageError(`${flag}: must be milliseconds 0-${max} (got "${value}")`);
  return n;
}

function parseCheck(value: string | undefined): KnockSettings["check"] {
  if (value === undefined || value === "") return undefined;
  const m = /^(\d{1,5})(?:\/(tcp|udp))?$/.exec(value);
  const port = m ? parsePortFlag("--check-port", m[1]) : undefined;
  if (!m || port === undefined) throw new UsageError(`--check-port: must be PORT, PORT/tcp or PORT/udp, e.g. 1194/udp (got "${value}")`);
  return { port, protocol: (m[2] as "tcp" | "udp" | undefined) ?? "tcp" };
}

const PATH = /^\/[A-Za-z0-9._~/-]+$/;
const KEY = /^[A-Za-z0-9._~-]{10,128}$/;
const APP = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;

export interface SettingsSources {
  argv: string[];
  env: NodeJS.ProcessEnv;
  readFile?: (file: string) => string;
  warn?: (line: string) => void;
}

/** Flags win over the environment, which wins over the settings file. Throws UsageError naming the flag and the fix. */
export function resolveKnockSettings(src: SettingsSources): KnockSettings | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args: src.argv,
      strict: true,
      allowPositionals: false,
      options: {
        host: { type: "string" },
        app: { type: "string" },
        "http-key": { type: "string" },
        "https-key": { type: "string" },
        "http-path": { type: "string" },
        "https-path": { type: "string" },
        "http-port": { type: "string" },
        "https-port": { type: "string" },
        token: { type: "string" },
        "totp-prompt": { type: "boolean", default: false },
        ca: { type: "string" },
        "tls-name": { type: "string" },
        insecure: { type: "boolean", default: false },
        "check-port": { type: "string" },
        config: { type: "string" },
        "step1-wait": { type: "string" },
        "step2-timeout": { type: "string" },
        ipv4: { type: "boolean", short: "4", default: false },
        ipv6: { type: "boolean", short: "6", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}; see knockport knock --help`);
  }
  const v = parsed.values;
  if (v.help) return "help";

  const configFile = v.config ?? src.env.KNOCKPORT_CONFIG;
  let fromFile: Partial<Record<SettingName, string>> = {};
  if (configFile !== undefined && configFile !== "") {
    const read = src.readFile ?? ((f: string) => readFileSync(f, "utf8"));
    let text: string;
    try {
      text = read(configFile);
    } catch (err) {
      throw new UsageError(`--config ${configFile}: cannot read (${(err as NodeJS.ErrnoException).code ?? "error"}); check the path`);
    }
    fromFile = parseSettingsFile(text, configFile);
    if (src.readFile === undefined) {
      try {
        if ((statSync(configFile).mode & 0o077) !== 0) src.warn?.(`warning: ${configFile} holds keys and is readable by other users; chmod 600 ${configFile}`);
      } catch {
        /* read above worked; a stat failure is not worth stopping for */
      }
    }
  }
  const setting = (flag: string | undefined, name: SettingName): string | undefined => {
    const fromEnv = src.env[name];
    return flag ?? (fromEnv !== undefined && fromEnv !== "" ? fromEnv : undefined) ?? fromFile[name];
  };
  const required = (flag: string, given: string | undefined, name: SettingName, hint: string): string => {
    const value = setting(given, name);
    if (value === undefined || value === "") throw new UsageError(`--${flag} (or ${name}) is required: ${hint}`);
    return value;
  };

  const host = required("host", v.host, "KNOCKPORT_HOST", "the KnockPort server's name or address");
  const app = required("app", v.app, "KNOCKPORT_APP", "the app name as in the server's config");
  if (!APP.test(app)) throw new UsageError(`--app: 1-32 characters A-Z a-z 0-9 _ - starting with a letter or digit (got ${JSON.stringify(app)})`);
  const httpKey = required("http-key", v["http-key"], "KNOCKPORT_HTTP_KEY", "the app's access_key_http");
  const httpsKey = required("https-key", v["https-key"], "KNOCKPORT_HTTPS_KEY", "the app's access_key_https (same position as the HTTP key)");
  for (const [flag, key] of [["--http-key", httpKey], ["--https-key", httpsKey]] as const) {
    if (!KEY.test(key)) throw new UsageError(`${flag}: must be 10-128 characters A-Z a-z 0-9 . _ ~ - (the key is not shown)`);
  }
  const httpPath = required("http-path", v["http-path"], "KNOCKPORT_HTTP_PATH", "global.http_post_path of the server");
  const httpsPath = required("https-path", v["https-path"], "KNOCKPORT_HTTPS_PATH", "global.https_post_path of the server");
  for (const [flag, path, max] of [["--http-path", httpPath, 64], ["--https-path", httpsPath, 1024]] as const) {
    if (!PATH.test(path) || path.length > max) throw new UsageError(`${flag}: must start with "/" and have up to ${max} characters A-Z a-z 0-9 . _ ~ / -`);
  }
  const httpPort = parsePortFlag("--http-port", setting(v["http-port"], "KNOCKPORT_HTTP_PORT")) ?? 8080;
  const httpsPort = parsePortFlag("--https-port", setting(v["https-port"], "KNOCKPORT_HTTPS_PORT")) ?? 8443;

  if (v.token !== undefined && v["totp-prompt"]) throw new UsageError("--token and --totp-prompt: give one of them, not both");
  if (v.token !== undefined && !/^\d{6}$/.test(v.token)) throw new UsageError("--token: must be the 6-digit code of your authenticator app");
  const insecureSetting = setting(undefined, "KNOCKPORT_INSECURE");
  const insecure = v.insecure || insecureSetting === "1" || insecureSetting === "true";
  const ca = setting(v.ca, "KNOCKPORT_CA");
  if (insecure && ca !== undefined) throw new UsageError("--insecure and --ca: give one of them; --ca verifies, --insecure does not");
  const tlsName = setting(v["tls-name"], "KNOCKPORT_TLS_NAME");
  if (tlsName !== undefined && !/^[A-Za-z0-9.-]{1,253}$/.test(tlsName)) throw new UsageError(`--tls-name: must be a host name (got ${JSON.stringify(tlsName)})`);
  if (v.ipv4 && v.ipv6) throw new UsageError("-4 and -6: give at most one");

  const requestBytes = step1Request(hostHeader(host, httpPort), httpPath, step1Body(app, httpKey, v.token ?? "000000")).length;
  if (requestBytes > MAX_STEP1_REQUEST_BYTES) {
    throw new UsageError(
      `step 1 would be ${requestBytes} bytes, more than the ${MAX_STEP1_REQUEST_BYTES} that fit the stealth port's single 500-byte packet; use a shorter --host name (or the address), app name or key`,
    );
  }
  return {
    host,
    app,
    httpKey,
    httpsKey,
    httpPath,
    httpsPath,
    httpPort,
    httpsPort,
    token: v.token,
    totpPrompt: v["totp-prompt"],
    ca,
    tlsName,
    insecure,
    check: parseCheck(setting(v["check-port"], "KNOCKPORT_CHECK_PORT")),
    family: v.ipv4 ? 4 : v.ipv6 ? 6 : 0,
    step1WaitMs: parseMs("--step1-wait", v["step1-wait"], 1000, 10_000),
    step2TimeoutMs: parseMs("--step2-timeout", v["step2-timeout"], 5000, 120_000),
  };
}

export function step1Body(app: string, key: string, token: string | undefined): string {
  const fields: Record<string, string> = { app, access_key: key };
  if (token !== undefined) fields.token = token;
  return new URLSearchParams(fields).toString();
}

function hostHeader(host: string, port: number): string {
  return `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

/** The whole step-1 request: minimal headers (no User-Agent, no Accept), one write, one packet. */
export function step1Request(host: string, path: string, body: string): string {
  return (
    `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}

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
      () => finish(new KnockFailure(EXIT.STEP1_UNREACHABLE, `step 1: no connection to ${address} port ${port} within ${connectTimeoutMs} ms; check --host and --http-port`)),
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
      finish(new KnockFailure(EXIT.STEP1_UNREACHABLE, `step 1: cannot connect to ${address} port ${port} (${err.code ?? err.message}); check --host and --http-port`));
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
): Promise<Step2Attempt> {
  const body = new URLSearchParams({ app: s.app, access_key: s.httpsKey }).toString();
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
export async function sendStep2(address: string, s: KnockSettings, ca: Buffer | undefined): Promise<{ status: number; body: string }> {
  const deadline = Date.now() + s.step2TimeoutMs;
  let last = "";
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    const started = Date.now();
    const r = await step2Once(address, s, ca, Math.min(left, 2500));
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
    `step 2: the HTTPS port ${address}:${s.httpsPort} stayed closed for ${s.step2TimeoutMs} ms (${last}); step 1 was probably refused — check --app, --http-key, --http-path, --http-port and the 2FA token (each code works once) — or step 2 came after step2_https_duration`,
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

export interface KnockIo {
  out: (line: string) => void;
  err: (line: string) => void;
  stdin: NodeJS.ReadStream;
}

/** The whole sequence; returns the exit code. Secrets (keys, token) are never printed. */
export async function runKnock(s: KnockSettings, io: KnockIo): Promise<number> {
  let token = s.token;
  if (s.totpPrompt) token = await readToken(io.stdin, (p) => process.stderr.write(p));
  let ca: Buffer | undefined;
  if (s.ca !== undefined) {
    try {
      ca = readFileSync(s.ca);
    } catch (err) {
      throw new UsageError(`--ca ${s.ca}: cannot read (${(err as NodeJS.ErrnoException).code ?? "error"}); check the path`);
    }
  }
  let address: string;
  try {
    address = (await lookup(s.host, { family: s.family, verbatim: true })).address;
  } catch (err) {
    throw new KnockFailure(EXIT.STEP1_UNREACHABLE, `--host ${s.host}: cannot resolve it (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }

  const request = step1Request(hostHeader(s.host, s.httpPort), s.httpPath, step1Body(s.app, s.httpKey, token));
  const step1 = await sendStep1(address, s.httpPort, request, s.step1WaitMs);
  if (step1.status === undefined) {
    io.out(`step 1: sent to ${address}:${s.httpPort} (${Buffer.byteLength(request)} bytes, one packet); no answer, as designed`);
  } else if (step1.status === 200) {
    io.out(`step 1: sent to ${address}:${s.httpPort}; answered 200 (no stealth firewall in front of this server?)`);
  } else if (step1.status === 403) {
    throw new KnockFailure(EXIT.STEP2_UNREACHABLE, `step 1: refused (403): wrong app, key or 2FA token, or the token was already used`);
  } else {
    throw new KnockFailure(EXIT.OTHER_ANSWER, `step 1: answered ${step1.status}${step1.status === 429 ? " (rate limited; wait a minute)" : ""}`);
  }

  const r = await sendStep2(address, s, ca);
  if (r.status === 403 || r.status === 404) {
    throw new KnockFailure(
      EXIT.STEP2_REFUSED,
      r.status === 403
        ? "step 2: refused (403): wrong --app or --https-key, or not the HTTPS key paired with the HTTP key (same position in the lists)"
        : "step 2: 404: wrong --https-path",
    );
  }
  if (r.status !== 200) {
    const why = r.status === 429 ? "rate limited; wait a minute" : r.status === 500 ? "the server could not open the port; see its log" : r.status === 400 ? "bad form" : "unexpected";
    throw new KnockFailure(EXIT.OTHER_ANSWER, `step 2: answered ${r.status} (${why})`);
  }
  io.out(`step 2: ${s.app} opened for this address (200 OK)`);

  if (s.check !== undefined) {
    const { port, protocol } = s.check;
    let state: "open" | "closed" | "silent" = "closed";
    for (let attempt = 0; attempt < 3 && state !== "open"; attempt += 1) state = await checkServicePort(address, port, protocol);
    if (state !== "open") {
      const hint = state === "silent" ? " (no answer; many UDP services, OpenVPN included, ignore unknown packets)" : "";
      throw new KnockFailure(EXIT.CHECK_FAILED, `check: ${protocol}/${port} on ${address} is ${state === "silent" ? "silent" : "closed"}${hint}`);
    }
    io.out(`check: ${protocol}/${port} on ${address} is open`);
  }
  return EXIT.OK;
}
