import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FrameDecoder, encodeFrame, type HelloResult } from "@knockport/protocol";
import { oneAppConfig } from "../../../packages/config/test/fixtures.js";

const SERVER = resolve(dirname(fileURLToPath(import.meta.url)), "../../../bin/knockport-server");

/** A free TCP port on loopback (bound and released). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** True when a TCP connect to 127.0.0.1:port is accepted. */
function accepts(port: number): Promise<boolean> {
  return new Promise((r) => {
    const c = connect({ host: "127.0.0.1", port });
    c.once("connect", () => (c.destroy(), r(true)));
    c.once("error", () => r(false));
  });
}

/** A knock socket that answers hello with `hello` once `release` resolves (every other call: an error). */
function fakeHelper(path: string, hello: HelloResult, release: Promise<void>): Server {
  const server = createServer((socket) => {
    const decoder = new FrameDecoder();
    socket.on("data", (chunk) => {
      for (const frame of decoder.push(chunk)) {
        const { id, method } = JSON.parse(frame) as { id: number; method: string };
        void release.then(() =>
          socket.write(encodeFrame(method === "hello" ? { jsonrpc: "2.0", id, result: hello } : { jsonrpc: "2.0", id, error: { code: -32601, message: "no" } })),
        );
      }
    });
    socket.on("error", () => undefined);
  });
  server.listen(path);
  return server;
}

describe("knockport-server's start: the listeners are built while the helper's hello is pending, but nothing listens before it is compared", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "kp-start-order-"));
    writeFileSync(join(dir, "config.yaml"), oneAppConfig("start-order", { interfaceExt: "lo" }));
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=t", "-keyout", join(dir, "k.pem"), "-out", join(dir, "c.pem")], { stdio: "ignore" });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("a helper guarding other ports: refused after its answer, and neither port accepted a connection while it was pending", async () => {
    const [httpPort, httpsPort] = [await freePort(), await freePort()];
    let answer = (): void => undefined;
    const release = new Promise<void>((r) => (answer = r));
    const socket = join(dir, "helper.sock");
    const hello: HelloResult = { version: "t", protocolVersion: 1, firewallType: "nftables", httpPort: httpPort + 1, httpsPort, services: [{ app: "ssh", port: 2222, protocol: "tcp" }] };
    const helper = fakeHelper(socket, hello, release);
    try {
      const server = spawn(process.execPath, [SERVER, "-c", join(dir, "config.yaml"), "--cert", join(dir, "c.pem"), "--key", join(dir, "k.pem"), "--socket", socket, "--state-dir", join(dir, "state"), "--http-port", String(httpPort), "--https-port", String(httpsPort), "--listen-address", "127.0.0.1"], { stdio: ["ignore", "pipe", "pipe"] });
      let stderr = "";
      server.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<number | null>((r) => server.once("exit", (code) => r(code)));
      // bounded: the server asks hello within its first 25 ms; give it 1.5 s to load and build its listeners
      await new Promise((r) => setTimeout(r, 1500));
      const early = [await accepts(httpPort), await accepts(httpsPort)];
      answer();
      const code = await Promise.race([exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 10_000))]);
      if (code === "timeout") server.kill("SIGKILL");
      expect(early).toEqual([false, false]);
      expect(code, stderr).toBe(1);
      expect(stderr).toContain(`refusing to start: helper protects HTTP port ${httpPort + 1}, server would serve ${httpPort}`);
    } finally {
      helper.close();
    }
  });
});
