import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UsageError } from "@knockport/config";
import { generateSelfSignedCert } from "../src/gen-cert.js";
import {
  EXIT,
  KnockFailure,
  MAX_STEP1_REQUEST_BYTES,
  checkServicePort,
  parseSettingsFile,
  readToken,
  resolveKnockSettings,
  runKnock,
  step1Body,
  step1Request,
  type KnockSettings,
} from "../src/knock.js";

const HTTP_KEY = "ovpn-http-key-000";
const HTTPS_KEY = "ovpn-https-key-000";
const HTTP_PATH = "/k1-abcdefghijklmnop";
const HTTPS_PATH = "/k2-qrstuvwxyz";

/** A stand-in for the stealth port: records what arrived and in how many chunks, never answers. */
class SilentStep1 {
  server!: NetServer;
  requests: { data: string; chunks: number }[] = [];
  port = 0;
  async start(): Promise<void> {
    this.server = createNetServer((sock: Socket) => {
      const entry = { data: "", chunks: 0 };
      this.requests.push(entry);
      sock.on("data", (d) => {
        entry.data += d.toString("latin1");
        entry.chunks += 1;
      });
      sock.on("error", () => undefined);
    });
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.port = (this.server.address() as AddressInfo).port;
    this.server6 = createNetServer((sock: Socket) => sock.on("error", () => undefined).resume());
    await new Promise<void>((r) => this.server6.listen(0, "::1", r));
    this.port6 = (this.server6.address() as AddressInfo).port;
  }
  server6!: NetServer;
  port6 = 0;
}

let dir: string;
let cert: { certFile: string; keyFile: string };
let step1: SilentStep1;
let https: HttpsServer;
let httpsPort = 0;
let step2Answer: { status: number; body: string } = { status: 200, body: "OK\n" };
const step2Bodies: string[] = [];
let service: NetServer;
let servicePort = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kp-knock-"));
  cert = generateSelfSignedCert({ outDir: dir, name: "t", commonName: "knockport.test", days: 2 });
  step1 = new SilentStep1();
  await step1.start();
  https = createHttpsServer({ cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) }, (req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      step2Bodies.push(`${req.method} ${req.url} ${body}`);
      res.writeHead(step2Answer.status, { "content-type": "text/plain" }).end(step2Answer.body);
    });
  });
  await new Promise<void>((r) => https.listen(0, "127.0.0.1", r));
  httpsPort = (https.address() as AddressInfo).port;
  service = createNetServer((s) => s.end());
  await new Promise<void>((r) => service.listen(0, "127.0.0.1", r));
  servicePort = (service.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((r) => step1.server.close(r));
  await new Promise((r) => step1.server6.close(r));
  await new Promise((r) => https.close(r));
  await new Promise((r) => service.close(r));
  rmSync(dir, { recursive: true, force: true });
});

function settings(over: Partial<KnockSettings> = {}): KnockSettings {
  return {
    host: "127.0.0.1",
    app: "openvpn",
    httpKey: HTTP_KEY,
    httpsKey: HTTPS_KEY,
    httpPath: HTTP_PATH,
    httpsPath: HTTPS_PATH,
    httpPort: step1.port,
    httpsPort,
    token: undefined,
    totpPrompt: false,
    ca: cert.certFile,
    tlsName: "knockport.test",
    insecure: false,
    check: undefined,
    family: 0,
    step1WaitMs: 150,
    step2TimeoutMs: 2000,
    keep: false,
    revoke: false,
    probeIntervalMs: 10_000,
    ...over,
  };
}

function io(): { lines: string[]; out: (l: string) => void; err: (l: string) => void; stdin: NodeJS.ReadStream } {
  const lines: string[] = [];
  return { lines, out: (l) => lines.push(l), err: (l) => lines.push(l), stdin: Readable.from([]) as unknown as NodeJS.ReadStream };
}

async function exitOf(p: Promise<number>): Promise<number> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof KnockFailure) return err.exitCode;
    if (err instanceof UsageError) return 2;
    throw err;
  }
}

describe("knockport knock against stub listeners on loopback", () => {
  it("sends step 1 as one small write with the form, then step 2 over verified TLS, then checks the port", async () => {
    const before = step1.requests.length;
    const o = io();
    const code = await runKnock(settings({ token: "123456", check: { port: servicePort, protocol: "tcp" } }), o);
    expect(code).toBe(EXIT.OK);
    const req = step1.requests[before];
    expect(req?.chunks).toBe(1);
    expect(req?.data.startsWith(`POST ${HTTP_PATH} HTTP/1.1\r\n`)).toBe(true);
    expect(req?.data.endsWith(`\r\n\r\napp=openvpn&access_key=${HTTP_KEY}&token=123456`)).toBe(true);
    expect(Buffer.byteLength(req?.data ?? "")).toBeLessThanOrEqual(MAX_STEP1_REQUEST_BYTES);
    expect(step2Bodies.at(-1)).toBe(`POST ${HTTPS_PATH} app=openvpn&access_key=${HTTPS_KEY}`);
    // no secret in what the client prints
    const printed = o.lines.join("\n");
    for (const s of [HTTP_KEY, HTTPS_KEY, "123456", HTTP_PATH, HTTPS_PATH]) expect(printed).not.toContain(s);
    expect(printed).toContain("check: tcp/");
  });

  it("prints the lease's end and the address it is for from the answer's expires= and address= lines; --revoke sends close=1 and says closed", async () => {
    step2Answer = { status: 200, body: "OK\nexpires=1893456030\naddress=203.0.113.5\n" };
    try {
      const o = io();
      expect(await runKnock(settings(), o)).toBe(EXIT.OK);
      expect(o.lines.at(-1)).toBe("step 2: openvpn opened for this address (203.0.113.5) until 2030-01-01T00:00:30.000Z (200 OK)");
      const r = io();
      expect(await runKnock(settings({ revoke: true, check: { port: servicePort, protocol: "tcp" } }), r)).toBe(EXIT.OK);
      expect(step2Bodies.at(-1)).toBe(`POST ${HTTPS_PATH} app=openvpn&access_key=${HTTPS_KEY}&close=1`);
      expect(r.lines.at(-1), "no service check after a revoke").toBe("step 2: openvpn closed for this address (200 OK)");
    } finally {
      step2Answer = { status: 200, body: "OK\n" };
    }
  });

  it("exit 4 names a down server or helper too, and prints an IPv6 address in brackets", async () => {
    const closed = createNetServer();
    await new Promise<void>((r) => closed.listen(0, "::1", r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const err = await runKnock(settings({ host: "::1", httpPort: deadPort }), io()).catch((e: unknown) => e);
    expect((err as KnockFailure).message).toMatch(new RegExp(`cannot connect to \\[::1\\]:${deadPort} `));
    const o = io();
    const four = await runKnock(settings({ host: "::1", httpPort: step1.port6, httpsPort: deadPort, step2TimeoutMs: 600 }), o).catch((e: unknown) => e);
    expect((four as KnockFailure).exitCode).toBe(EXIT.STEP2_UNREACHABLE);
    expect((four as KnockFailure).message).toMatch(new RegExp(`HTTPS port \\[::1\\]:${deadPort} stayed closed .*or the server/helper is down$`));
    expect(o.lines[0]).toMatch(new RegExp(`^step 1: sent to \\[::1\\]:${step1.port6} `));
  });

  it("exit 5 when step 2 is refused (403)", async () => {
    step2Answer = { status: 403, body: "Forbidden\n" };
    try {
      expect(await exitOf(runKnock(settings(), io()))).toBe(EXIT.STEP2_REFUSED);
    } finally {
      step2Answer = { status: 200, body: "OK\n" };
    }
  });

  it("exit 7 for other answers (429, 500)", async () => {
    for (const status of [429, 500]) {
      step2Answer = { status, body: "x\n" };
      expect(await exitOf(runKnock(settings(), io()))).toBe(EXIT.OTHER_ANSWER);
    }
    step2Answer = { status: 200, body: "OK\n" };
  });

  it("exit 6 when the certificate cannot be verified (no --ca, or a wrong --tls-name); --insecure skips the check", async () => {
    expect(await exitOf(runKnock(settings({ ca: undefined }), io()))).toBe(EXIT.TLS);
    expect(await exitOf(runKnock(settings({ tlsName: "other.example" }), io()))).toBe(EXIT.TLS);
    expect(await exitOf(runKnock(settings({ ca: undefined, insecure: true }), io()))).toBe(EXIT.OK);
  });

  it("exit 4 when the HTTPS port stays closed, within --step2-timeout", async () => {
    const closed = createNetServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const started = Date.now();
    expect(await exitOf(runKnock(settings({ httpsPort: port, step2TimeoutMs: 800 }), io()))).toBe(EXIT.STEP2_UNREACHABLE);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("exit 3 when step 1 cannot connect", async () => {
    const closed = createNetServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    expect(await exitOf(runKnock(settings({ httpPort: port }), io()))).toBe(EXIT.STEP1_UNREACHABLE);
  });

  it("exit 8 when --check-port finds the service closed", async () => {
    const closed = createNetServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    expect(await exitOf(runKnock(settings({ check: { port, protocol: "tcp" } }), io()))).toBe(EXIT.CHECK_FAILED);
  });

  it("checkServicePort: udp is silent without an answer", async () => {
    expect(await checkServicePort("127.0.0.1", servicePort, "tcp", 500)).toBe("open");
    expect(await checkServicePort("127.0.0.1", 9, "udp", 300)).not.toBe("open");
  });
});

describe("settings", () => {
  const base = ["--host", "192.0.2.1", "--app", "openvpn", "--http-path", HTTP_PATH, "--https-path", HTTPS_PATH];

  it("takes keys from the environment and from a settings file; flags win over env, env over file", () => {
    const file = `# client settings\nKNOCKPORT_HTTP_KEY=${HTTP_KEY}\nexport KNOCKPORT_HTTPS_KEY='${HTTPS_KEY}'\nKNOCKPORT_HTTP_PORT="80"\nKNOCKPORT_APP=fromfile\n`;
    const s = resolveKnockSettings({ argv: [...base, "--config", "c.env"], env: { KNOCKPORT_HTTP_PORT: "81" }, readFile: () => file });
    if (s === "help") throw new Error("help");
    expect([s.httpKey, s.httpsKey, s.httpPort, s.httpsPort, s.app]).toEqual([HTTP_KEY, HTTPS_KEY, 81, 8443, "openvpn"]);
    const env = { KNOCKPORT_HTTP_KEY: HTTP_KEY, KNOCKPORT_HTTPS_KEY: HTTPS_KEY, KNOCKPORT_CHECK_PORT: "1194/udp" };
    const e = resolveKnockSettings({ argv: base, env });
    if (e === "help") throw new Error("help");
    expect(e.check).toEqual({ port: 1194, protocol: "udp" });
  });

  it.each([
    [["--app", "openvpn"], /--host \(or KNOCKPORT_HOST\) is required/],
    [[...base], /--http-key \(or KNOCKPORT_HTTP_KEY\) is required/],
    [[...base, "--http-key", "short", "--https-key", HTTPS_KEY], /--http-key: must be 10-128 characters/],
    [[...base, "--http-key", HTTP_KEY, "--https-key", HTTPS_KEY, "--token", "12345"], /--token: must be the 6-digit code/],
    [[...base, "--http-key", HTTP_KEY, "--https-key", HTTPS_KEY, "--token", "123456", "--totp-prompt"], /give one of them/],
    [[...base, "--http-key", HTTP_KEY, "--https-key", HTTPS_KEY, "--check-port", "1194/sctp"], /--check-port: must be PORT/],
    [[...base, "--http-key", HTTP_KEY, "--https-key", HTTPS_KEY, "--insecure", "--ca", "x.pem"], /--insecure and --ca/],
    [[...base, "--http-key", HTTP_KEY, "--https-key", HTTPS_KEY, "--bogus"], /Unknown option '--bogus'/],
  ])("refuses %j with a message naming the flag", (argv, message) => {
    expect(() => resolveKnockSettings({ argv: argv as string[], env: {} })).toThrow(message);
  });

  it("never echoes a bad key", () => {
    try {
      resolveKnockSettings({ argv: [...base, "--http-key", "bad key with spaces!", "--https-key", HTTPS_KEY], env: {} });
    } catch (err) {
      expect((err as Error).message).not.toContain("bad key");
    }
  });

  it("refuses a step 1 that would not fit one 500-byte packet", () => {
    const longHost = `${"h".repeat(60)}.example.com`;
    const longKey = "k".repeat(128);
    expect(() =>
      resolveKnockSettings({
        argv: ["--host", longHost, "--app", "a".repeat(32), "--http-path", `/${"p".repeat(63)}`, "--https-path", HTTPS_PATH, "--http-key", longKey, "--https-key", HTTPS_KEY, "--token", "123456"],
        env: {},
      }),
    ).toThrow(/more than the 400 that fit/);
  });

  it("a maximal knock with an IPv6 address, 64-character path, 128-character key and a token still fits", () => {
    const req = step1Request("[2001:db8:100::1]:65535", `/${"p".repeat(63)}`, step1Body("a".repeat(32), "k".repeat(128), "123456"));
    expect(Buffer.byteLength(req)).toBeLessThanOrEqual(MAX_STEP1_REQUEST_BYTES);
  });

  it("settings file: unknown names and malformed lines are refused with the line number", () => {
    expect(() => parseSettingsFile("KNOCKPORT_HOST=a\nFOO=1\n", "c.env")).toThrow(/c.env:2: unknown setting FOO/);
    expect(() => parseSettingsFile("just words\n", "c.env")).toThrow(/c.env:1: expected NAME=VALUE/);
  });

  it("readToken takes the first line of a non-TTY stdin and refuses anything but 6 digits", async () => {
    const stream = (text: string) => Readable.from([text]) as unknown as NodeJS.ReadStream;
    expect(await readToken(stream("654321\nrest\n"), () => undefined)).toBe("654321");
    await expect(readToken(stream("65432\n"), () => undefined)).rejects.toThrow(/6-digit code/);
    await expect(readToken(stream(""), () => undefined)).rejects.toThrow(/6-digit code/);
  });
});
