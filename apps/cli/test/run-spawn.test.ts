import { EventEmitter } from "node:events";
import { linkSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
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
type RunOptions = Parameters<typeof runBoth>[0];

/** runBoth as a packaged install calls it, its socket and state dirs in `dir`. */
const runIn = (dir: string, options: Partial<RunOptions> = {}): Promise<number> =>
  runBoth({
    repoRoot: "/opt/knockport",
    configFile: "/etc/knockport/config.yaml",
    firewallType: "nftables",
    httpPort: undefined,
    httpsPort: undefined,
    certFile: "c.pem",
    keyFile: "k.pem",
    user: "knockport",
    socketPath: join(dir, "helper.sock"),
    stateDir: join(dir, "helper-state"),
    serverStateDir: join(dir, "server-state"),
    log: () => undefined,
    ...options,
  });

/** Runs `test` with a fresh temporary directory, removed afterwards. */
async function inTempDir(test: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "kp-run-spawn-"));
  try {
    await test(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.runIf(process.geteuid?.() === 0)("knockport run: what it starts", () => {
  it("the server through setpriv with --no-new-privs as the knockport user; the socket group is its group", () =>
    inTempDir(async (dir) => {
      const code = await runIn(dir, { stateDir: join(dir, "knockport") });
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
      expect(statSync(join(dir, "server-state")).uid).toBe(990);
    }));

  it("--server-state-dir: the server's --state-dir; an existing one's files are given to the user (a root-owned used-totp.json), never through a link; nothing appears beside --state-dir", () =>
    inTempDir(async (dir) => {
      const serverState = join(dir, "srv-state");
      mkdirSync(serverState, { mode: 0o755 });
      writeFileSync(join(serverState, "used-totp.json"), "{}\n", { mode: 0o600 }); // root's, from an earlier run as root
      const elsewhere = join(dir, "elsewhere");
      writeFileSync(elsewhere, "not the server's\n");
      symlinkSync(elsewhere, join(serverState, "link"));
      writeFileSync(join(dir, "hard-target"), "not the server's either\n");
      linkSync(join(dir, "hard-target"), join(serverState, "hard"));
      spawned.length = 0;
      const code = await runIn(dir, { serverStateDir: serverState });
      expect(code).toBe(0);
      const server = spawned.find((s) => s.command === "setpriv");
      expect(server?.args[server.args.indexOf("--state-dir") + 1]).toBe(serverState);
      const owner = (f: string) => ({ uid: statSync(f).uid, gid: statSync(f).gid });
      expect(owner(serverState)).toEqual({ uid: 990, gid: 990 });
      expect(statSync(serverState).mode & 0o777).toBe(0o700);
      expect(owner(join(serverState, "used-totp.json"))).toEqual({ uid: 990, gid: 990 });
      expect(owner(elsewhere), "a symbolic link's target stays root's").toEqual({ uid: 0, gid: 0 });
      expect(owner(join(dir, "hard-target")), "a file with another hard link stays root's").toEqual({ uid: 0, gid: 0 });
      expect(readdirSync(dir).sort(), "no sibling knockport-server folder").toEqual(["elsewhere", "hard-target", "srv-state"]);
    }));

  it("a --server-state-dir that is a symbolic link is refused before anything starts", () =>
    inTempDir(async (dir) => {
      mkdirSync(join(dir, "real"));
      symlinkSync(join(dir, "real"), join(dir, "link"));
      spawned.length = 0;
      await expect(runIn(dir, { serverStateDir: join(dir, "link") })).rejects.toThrow(/--server-state-dir .*link: is not a folder \(a symbolic link is not followed\)/);
      expect(spawned).toEqual([]);
      expect(statSync(join(dir, "real")).uid).toBe(0);
    }));
});
