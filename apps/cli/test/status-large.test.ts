import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const BIN = join(REPO, "bin/knockport");
const built = existsSync(join(REPO, "apps/cli/dist/main.js"));
const LEASES = 8000;

let dir: string;
let server: Server;
let socketPath: string;

/** A stand-in helper that answers `list` with thousands of leases (about 1.2 MB, one frame). */
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kp-status-"));
  socketPath = join(dir, "helper.sock");
  const leases = Array.from({ length: LEASES }, (_, i) => ({
    app: "ssh",
    ip: `198.18.${Math.floor(i / 250)}.${(i % 250) + 1}`,
    step: 2,
    port: 2222,
    protocol: "tcp",
    expiresAt: "2030-01-01T00:00:00.000Z",
    remainingSeconds: 3600,
  }));
  server = createServer((socket) => {
    let buf = "";
    socket.on("data", (chunk) => {
      buf += chunk.toString();
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      const req = JSON.parse(buf.slice(0, nl)) as { id: number };
      socket.write(`${JSON.stringify({ jsonrpc: "2.0", id: req.id, result: { leases } })}\n`);
    });
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
});
afterAll(() => {
  server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!built)("knockport status --json with thousands of leases (needs pnpm build)", () => {
  it("prints the whole answer into a pipe before exiting", async () => {
    const child = spawn(process.execPath, [BIN, "status", "--admin-socket", socketPath, "--json"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((r) => child.on("close", r));
    expect(code).toBe(0);
    expect(out.length).toBeGreaterThan(1_000_000);
    const parsed = JSON.parse(out) as { leases: unknown[] };
    expect(parsed.leases).toHaveLength(LEASES);
  });
});
