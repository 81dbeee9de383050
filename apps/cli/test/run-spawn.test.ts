import { EventEmitter } from "node:events";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";

// A host with a dedicated knockport user; what runBoth starts is recorded instead of run.
const PASSWD = "root:x:0:0::/root:/bin/sh\nknockport:x:990:990::/nonexistent:/usr/sbin/nologin\n";
const GROUP = "root:x:0:\nknockport:x:990:\n";
vi.mock("node:fs", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:fs")>();
  const readFileSync = ((file: unknown, ...rest: unknown[]) =>
    file === "/etc/passwd" ? PASSWD : file === "/etc/group" ? GROUP : (real.readFileSync as (...a: unknown[]) => unknown)(file, ...rest)) as typeof real.readFileSync;
  return { ...real, readFileSync, default: { ...real, readFileSync } };
});
const spawned: { command: string; args: string[] }[] = [];
vi.mock("node:child_process", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:child_process")>();
  const spawn = (command: string, args: string[]) => {
    spawned.push({ command, args });
    const child = Object.assign(new EventEmitter(), { pid: 1, kill: () => true });
    setImmediate(() => child.emit("close", 0));
    return child;
  };
  return { ...real, spawn };
});

const { runBoth } = await import("../src/run.js");

describe.runIf(process.geteuid?.() === 0)("knockport run: what it starts", () => {
  it("the server through setpriv with --no-new-privs as the knockport user; the socket group is its group", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kp-run-spawn-"));
    try {
      const code = await runBoth({
        repoRoot: "/opt/knockport",
        configFile: "/etc/knockport/config.yaml",
        firewallType: "nftables",
        httpPort: undefined,
        httpsPort: undefined,
        certFile: "c.pem",
        keyFile: "k.pem",
        user: "knockport",
        socketPath: join(dir, "helper.sock"),
        stateDir: join(dir, "knockport"),
        log: () => undefined,
      });
      expect(code).toBe(0);
      const server = spawned.find((s) => s.command === "setpriv");
      expect(server?.args.slice(0, server.args.indexOf("--"))).toEqual([
        "--reuid=990",
        "--regid=990",
        "--clear-groups",
        "--no-new-privs",
        "--inh-caps=-all,+net_bind_service",
        "--ambient-caps=-all,+net_bind_service",
      ]);
      const helper = spawned.find((s) => s.command === process.execPath);
      expect(helper?.args[helper.args.indexOf("--socket-group") + 1]).toBe("990");
      expect(statSync(join(dir, "knockport-server")).uid).toBe(990);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
