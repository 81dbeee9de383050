import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, chmodSync, chownSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

// The temporary name is random; fixing the random bytes lets the test plant a link at exactly that name.
const FIXED = Buffer.from("0011223344556677", "hex");
vi.mock("node:crypto", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:crypto")>();
  return { ...real, randomBytes: (n: number) => (n === 8 ? Buffer.from(FIXED) : real.randomBytes(n)) };
});

const { checkPrivateDir, writeFileDurably } = await import("../src/index.js");

const asRoot = process.geteuid?.() === 0;
let dir: string;
let victimDir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "kp-durable-"));
  victimDir = mkdtempSync(join(tmpdir(), "kp-victim-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(victimDir, { recursive: true, force: true });
});

describe("writeFileDurably and planted symlinks (real filesystem)", () => {
  it("a link at the temporary name (random or pid-based) neither creates, writes nor chowns its target", () => {
    const file = join(dir, "leases.json");
    const victimNew = join(victimDir, "created-through-link");
    const victimOld = join(victimDir, "shadow");
    writeFileSync(victimOld, "secret", { mode: 0o600 });
    symlinkSync(victimNew, join(dir, `.leases.json.tmp-${FIXED.toString("hex")}`));
    symlinkSync(victimOld, join(dir, `leases.json.tmp-${process.pid}`));
    const owner = { uid: 65534, gid: 65534 };
    expect(() => writeFileDurably(file, "data", asRoot ? { owner } : {})).toThrow(/EEXIST/);
    expect(existsSync(victimNew)).toBe(false);
    expect(readFileSync(victimOld, "utf8")).toBe("secret");
    expect(statSync(victimOld).uid).toBe(process.geteuid?.());
    expect(existsSync(file)).toBe(false);
    // the planted links are left alone (they are not ours to remove)
    expect(lstatSync(join(dir, `.leases.json.tmp-${FIXED.toString("hex")}`)).isSymbolicLink()).toBe(true);
  });

  it("a link at the file itself is replaced by the file, its target untouched", () => {
    const file = join(dir, "used-totp.json");
    const victim = join(victimDir, "passwd");
    writeFileSync(victim, "root:x:0:0", { mode: 0o644 });
    symlinkSync(victim, file);
    writeFileDurably(file, "new", asRoot ? { owner: { uid: 65534, gid: 65534 } } : {});
    expect(readFileSync(victim, "utf8")).toBe("root:x:0:0");
    expect(statSync(victim).mode & 0o777).toBe(0o644);
    expect(statSync(victim).uid).toBe(process.geteuid?.());
    expect(lstatSync(file).isSymbolicLink()).toBe(false);
    expect(readFileSync(file, "utf8")).toBe("new");
  });

  it.runIf(asRoot)("sets mode and owner on the descriptor: the file is 0640 nobody:nogroup whatever the umask", () => {
    const file = join(dir, "secret.json");
    const umask = process.umask(0o277);
    try {
      writeFileDurably(file, "x", { mode: 0o640, owner: { uid: 65534, gid: 65534 } });
    } finally {
      process.umask(umask);
    }
    const st = statSync(file);
    expect([st.mode & 0o777, st.uid, st.gid]).toEqual([0o640, 65534, 65534]);
    expect(readdirSync(dir)).toEqual(["secret.json"]);
  });
});

describe("checkPrivateDir", () => {
  it("accepts a 0700 and a 0750 folder of this user", () => {
    chmodSync(dir, 0o700);
    expect(() => checkPrivateDir(dir, { label: "--state-dir" })).not.toThrow();
    chmodSync(dir, 0o750);
    expect(() => checkPrivateDir(dir, { label: "--state-dir" })).not.toThrow();
  });

  it("refuses a group- or world-writable folder, naming the path, the mode found and the fix", () => {
    chmodSync(dir, 0o770);
    expect(() => checkPrivateDir(dir, { label: "--state-dir" })).toThrow(
      new RegExp(`--state-dir ${dir}: writable by its group \\(owner uid \\d+, gid \\d+, mode 0770\\).*chmod go-w ${dir}`),
    );
    chmodSync(dir, 0o1777);
    expect(() => checkPrivateDir(dir, { label: "2fa_config_folder" })).toThrow(/2fa_config_folder .*: writable by every user .*mode 1777/);
  });

  it.runIf(asRoot)("refuses a folder owned by another user than root or the expected one", () => {
    const other = join(dir, "other");
    mkdirSync(other, { mode: 0o700 });
    chownSync(other, 65534, 65534);
    expect(() => checkPrivateDir(other, { label: "--state-dir" })).toThrow(
      new RegExp(`--state-dir ${other}: owned by another user \\(owner uid 65534, gid 65534, mode 0700\\); it must belong to root`),
    );
    expect(() => checkPrivateDir(other, { label: "--state-dir", uids: [65534] })).not.toThrow();
  });

  it("refuses a file in place of a folder", () => {
    const f = join(dir, "f");
    writeFileSync(f, "");
    expect(() => checkPrivateDir(f, { label: "--state-dir" })).toThrow(/is not a folder/);
  });
});
