import { spawn } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InstanceLockError, lockPrivateDir, takeInstanceLock } from "../src/instance-lock.js";

/** The built module (pnpm build runs before the unit tests): a plain node child cannot load TypeScript. */
const BUILT = resolve(__dirname, "../dist/instance-lock.js");

describe("takeInstanceLock", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "kp-lock-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("a second taker is refused, naming the holder's pid, until the holder releases it", async () => {
    const path = join(dir, "helper.lock");
    const first = await takeInstanceLock(path, "--state-dir x");
    expect(readFileSync(path, "utf8")).toBe(`${process.pid}\n`);
    const second = takeInstanceLock(path, "--state-dir x");
    await expect(second).rejects.toBeInstanceOf(InstanceLockError);
    await expect(second).rejects.toThrow(`--state-dir x: another knockport-helper is running (it holds ${path}, pid ${process.pid})`);
    expect(readFileSync(path, "utf8"), "a refused taker leaves the holder's pid").toBe(`${process.pid}\n`);
    first.release();
    const third = await takeInstanceLock(path, "--state-dir x");
    third.release();
  });

  it("the lock dies with its holder, even one killed with SIGKILL (no stale lock)", async () => {
    const path = join(dir, "helper.lock");
    const script = `import { takeInstanceLock } from ${JSON.stringify(BUILT)};
await takeInstanceLock(${JSON.stringify(path)}, "child");
process.stdout.write("locked\\n");
setInterval(() => undefined, 1000);`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
    try {
      const locked = await new Promise<boolean>((done) => {
        const timer = setTimeout(() => done(false), 10_000);
        child.stdout.on("data", (d: Buffer) => {
          if (d.toString().includes("locked")) {
            clearTimeout(timer);
            done(true);
          }
        });
        child.once("exit", () => done(false));
      });
      expect(locked, "the child took the lock").toBe(true);
      await expect(takeInstanceLock(path, "parent")).rejects.toThrow(`pid ${String(child.pid)}`);
    } finally {
      child.kill("SIGKILL");
    }
    await new Promise((r) => child.once("exit", r));
    const after = await takeInstanceLock(path, "parent");
    after.release();
  });

  it("refuses a lock path that is a symlink or not a regular file", async () => {
    const target = join(dir, "elsewhere");
    writeFileSync(target, "");
    symlinkSync(target, join(dir, "link.lock"));
    await expect(takeInstanceLock(join(dir, "link.lock"), "--socket s")).rejects.toThrow(/--socket s: cannot open lock file .*link\.lock \(ELOOP\)/);
    await expect(takeInstanceLock(dir, "--socket s")).rejects.toThrow(/--socket s: (cannot open lock file|lock file .* is not a regular file)/);
  });
});

describe("lockPrivateDir (the helper's --state-dir)", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "kp-lockdir-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("makes a missing folder 0700 and takes its lock", async () => {
    const state = join(dir, "a", "state");
    const lock = await lockPrivateDir(state, join(state, "helper.lock"), "--state-dir");
    expect((statSync(state).mode & 0o777).toString(8)).toBe("700");
    expect(readFileSync(join(state, "helper.lock"), "utf8")).toBe(`${process.pid}\n`);
    lock.release();
  });

  it("refuses a group-writable state dir with the path, the mode and the fix", async () => {
    const state = join(dir, "state");
    mkdirSync(state, { mode: 0o700 });
    chmodSync(state, 0o770);
    await expect(lockPrivateDir(state, join(state, "helper.lock"), "--state-dir")).rejects.toThrow(
      new RegExp(`--state-dir ${state}: writable by its group .*mode 0770.*chmod go-w`),
    );
  });

  it.runIf(process.geteuid?.() === 0)("refuses a state dir owned by another user (root helper, dir of nobody)", async () => {
    const state = join(dir, "state");
    mkdirSync(state, { mode: 0o700 });
    chownSync(state, 65534, 65534);
    await expect(lockPrivateDir(state, join(state, "helper.lock"), "--state-dir")).rejects.toThrow(/owned by another user \(owner uid 65534/);
  });
});
