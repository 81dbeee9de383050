// `knockport watch` (and HelperClient.watch under it) against the real helper service and events
// socket: the snapshot line first, then one JSON line per lease event; exit 1 when the helper goes.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseConfig } from "@knockport/config";
import { createDispatcher } from "@knockport/protocol";
import type { RpcPeer } from "../src/helper-context.js";
import { HelperService } from "../src/service.js";
import { SOCKET_LIMITS, startRpcServer } from "../src/socket-server.js";
import { RecordingFirewall } from "./recording-firewall.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const CLI = join(ROOT, "apps/cli/dist/main.js");
const silent = pino({ level: "silent" });

describe.skipIf(!existsSync(CLI))("knockport watch", () => {
  let dir: string;
  let socketPath: string;
  let service: HelperService;
  let server: { close(): Promise<void> } | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "kp-cli-watch-"));
    socketPath = join(dir, "events.sock");
    const config = parseConfig(
      {
        global: { http_post_path: "/knock-one-path", https_post_path: "/knock-two-path", interface_ext: "eth0" },
        ssh: { port: 2222, access_key_http: ["ssh-http-key-0000"], access_key_https: ["ssh-https-key-0000"], duration: 3600 },
      },
      "watch.yaml",
    );
    service = new HelperService(config, new RecordingFirewall(), silent);
    await service.start();
    const dispatch = createDispatcher<"events", RpcPeer | undefined>("events", service.handlers, { onInternalError: () => undefined });
    server = await startRpcServer({ name: "events", socketPath, socketGroup: undefined, dispatch, log: silent, ...SOCKET_LIMITS.events });
  });
  afterEach(async () => {
    service.stop();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("prints the live leases, then each event as a JSON line, and exits 1 when the helper goes away", async () => {
    await service.handlers.grant({ app: "ssh", ip: "198.51.100.7" }, undefined);
    const child = spawn(process.execPath, [CLI, "watch", "--events-socket", socketPath], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    const lines = (): unknown[] => stdout.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as unknown);
    const until = async (n: number): Promise<void> => {
      for (let i = 0; i < 300 && lines().length < n; i += 1) await new Promise((r) => setTimeout(r, 20));
    };
    try {
      await until(1);
      expect(lines()[0]).toMatchObject({ leases: [{ app: "ssh", ip: "198.51.100.7", step: 2, port: 2222, protocol: "tcp" }] });
      await service.handlers.open({ step: 1, app: "ssh", ip: "2001:db8::7" }, undefined);
      await service.handlers.close({ app: "ssh", ip: "198.51.100.7" }, undefined);
      await until(3);
      expect(lines().slice(1)).toMatchObject([
        { event: "open", app: "ssh", ip: "2001:db8::7", step: 1, port: 8443, via: "knock" },
        { event: "close", app: "ssh", ip: "198.51.100.7", step: 2, via: "admin" },
      ]);
      await server?.close();
      server = undefined;
      expect(await exited).toBe(1);
      expect(stderr).toContain("watch ended");
    } finally {
      child.kill();
    }
  });
});
