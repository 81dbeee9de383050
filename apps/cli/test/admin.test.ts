/**
 * knockport grant / revoke: flag checks, the calls they make over a real Unix socket to a helper
 * stand-in that dispatches through the real method table, and what they print.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UsageError } from "@knockport/config";
import { FrameDecoder, HelperError, createDispatcher, type MethodHandlers } from "@knockport/protocol";
import { AdminError, formatGrant, formatRevoke, grantLease, parseAdminTarget, parseDurationFlag, revokeLease } from "../src/admin.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const EXPIRES = "2030-01-01T01:00:00.000Z";

describe("admin flags", () => {
  it("need --app and a literal --ip", () => {
    expect(parseAdminTarget("ssh", "198.51.100.7", "grant")).toEqual({ app: "ssh", ip: "198.51.100.7" });
    expect(parseAdminTarget("ssh", "2001:db8::7", "revoke").ip).toBe("2001:db8::7");
    expect(() => parseAdminTarget(undefined, "198.51.100.7", "grant")).toThrow(/--app is required/);
    expect(() => parseAdminTarget("ssh", undefined, "grant")).toThrow(/--ip is required/);
    expect(() => parseAdminTarget("ssh", "example.com", "grant")).toThrow(UsageError);
    expect(() => parseAdminTarget("ssh", "198.51.100.0/24", "grant")).toThrow(/--ip: must be an IPv4 or IPv6 address/);
  });

  it("--duration is whole seconds within the protocol's bound", () => {
    expect(parseDurationFlag(undefined)).toBeUndefined();
    expect(parseDurationFlag("600")).toBe(600);
    for (const bad of ["0", "-5", "1.5", "10m", "", "99999999999"]) expect(() => parseDurationFlag(bad)).toThrow(/--duration: must be whole seconds/);
  });
});

describe("grant and revoke over the socket", () => {
  let dir: string;
  let socket: string;
  let server: Server;
  const calls: { method: string; params: unknown }[] = [];

  const handlers: MethodHandlers<unknown> = {
    hello: async () => ({ version: "t", protocolVersion: 1, firewallType: "nftables", httpPort: 8080, httpsPort: 8443, services: [] }),
    open: async () => {
      throw new Error("not used");
    },
    list: async () => ({ leases: [] }),
    counters: async () => {
      throw new Error("not used");
    },
    check: async () => {
      throw new Error("not used");
    },
    release: async () => {
      throw new Error("not used");
    },
    grant: async (p) => {
      calls.push({ method: "grant", params: p });
      if (p.app === "nope") throw new HelperError("UNKNOWN_APP");
      if ((p.durationSeconds ?? 0) > 3600) throw new HelperError("DURATION_TOO_LONG");
      return {
        app: p.app,
        ip: p.ip,
        step: 2,
        durationSeconds: p.durationSeconds ?? 3600,
        expiresAt: EXPIRES,
        refreshed: false,
      };
    },
    close: async (p) => {
      calls.push({ method: "close", params: p });
      return p.app === "hooked" ? { closed: 1 } : { closed: 0 };
    },
    stats: async () => {
      throw new Error("not used");
    },
    watch: async () => {
      throw new Error("not used");
    },
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "kp-admin-"));
    socket = join(dir, "admin.sock");
    const dispatch = createDispatcher("admin", handlers, { onInternalError: () => undefined });
    server = createServer((conn) => {
      const decoder = new FrameDecoder();
      conn.on("data", (chunk) => {
        for (const frame of decoder.push(chunk)) void dispatch(frame, undefined).then((r) => conn.write(`${JSON.stringify(r)}\n`));
      });
      conn.on("error", () => conn.destroy());
    });
    await new Promise<void>((r) => server.listen(socket, r));
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it("grant sends app, ip and the duration only when given, and prints the lease", async () => {
    calls.length = 0;
    const r = await grantLease(socket, { app: "ssh", ip: "198.51.100.7" });
    await grantLease(socket, { app: "ssh", ip: "198.51.100.7" }, 60);
    expect(calls).toEqual([
      { method: "grant", params: { app: "ssh", ip: "198.51.100.7" } },
      { method: "grant", params: { app: "ssh", ip: "198.51.100.7", durationSeconds: 60 } },
    ]);
    expect(formatGrant(r)).toBe(`app       ssh\naddress   198.51.100.7\nopen for  3600s\nuntil     ${EXPIRES}\n`);
  });

  it("named helper errors become messages naming the flag and the fix", async () => {
    await expect(grantLease(socket, { app: "nope", ip: "198.51.100.7" })).rejects.toThrow(/--app nope: no such app/);
    const err = await grantLease(socket, { app: "ssh", ip: "198.51.100.7" }, 7200).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AdminError);
    expect((err as Error).message).toMatch(/--duration 7200: longer than ssh's configured duration; .*raise ssh\.duration/);
  });

  it("revoke calls close and says what it closed", async () => {
    calls.length = 0;
    const none = await revokeLease(socket, { app: "ssh", ip: "2001:db8::7" });
    const hooked = await revokeLease(socket, { app: "hooked", ip: "2001:db8::7" });
    expect(calls).toEqual([
      { method: "close", params: { app: "ssh", ip: "2001:db8::7" } },
      { method: "close", params: { app: "hooked", ip: "2001:db8::7" } },
    ]);
    expect(formatRevoke({ app: "ssh", ip: "2001:db8::7" }, none)).toBe("no live lease of ssh for 2001:db8::7; nothing was open\n");
    expect(formatRevoke({ app: "hooked", ip: "2001:db8::7" }, hooked)).toBe("closed 1 lease(s) of hooked for 2001:db8::7\n");
  });

  it("a missing helper socket says what to check", async () => {
    await expect(revokeLease(join(dir, "absent.sock"), { app: "ssh", ip: "198.51.100.7" })).rejects.toThrow(/is knockport-helper running/);
  });

  const cli = join(ROOT, "apps/cli/dist/main.js");
  // Asynchronous: the helper stand-in runs in this process and must keep answering.
  const run = (...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> =>
    new Promise((done) => {
      execFile(process.execPath, [cli, ...args], { encoding: "utf8", timeout: 20_000 }, (err, stdout, stderr) =>
        done({ status: err ? ((err as { code?: unknown }).code as number | null) : 0, stdout, stderr }),
      );
    });
  it.skipIf(!existsSync(cli))("the built knockport command: grant --json, revoke, usage errors (exit 2)", async () => {
    const g = await run("grant", "--app", "ssh", "--ip", "198.51.100.7", "--duration", "60", "--admin-socket", socket, "--json");
    expect(g.status, g.stderr).toBe(0);
    expect(JSON.parse(g.stdout)).toMatchObject({ app: "ssh", ip: "198.51.100.7", durationSeconds: 60, step: 2 });
    const r = await run("revoke", "--app", "ssh", "--ip", "198.51.100.7", "--admin-socket", socket);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/nothing was open/);
    const bad = await run("grant", "--app", "ssh", "--ip", "not-an-ip", "--admin-socket", socket);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--ip: must be an IPv4 or IPv6 address/);
    expect((await run("revoke", "--app", "ssh", "--ip", "198.51.100.7", "--duration", "5")).status).toBe(2);
  });
});
