import { closeSync, constants, existsSync, fstatSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { spawn } from "node:child_process";
import { checkPrivateDir } from "./dirs.js";

/** Another helper holds the lock, or the lock cannot be taken: the helper must not touch the firewall. */
export class InstanceLockError extends Error {
  readonly code = "INSTANCE_LOCKED";
}

const FLOCK_CANDIDATES = ["/usr/bin/flock", "/bin/flock"];
/** flock's exit code when the lock is held elsewhere (--conflict-exit-code), apart from its own failures. */
const FLOCK_CONFLICT = 75;

export function locateFlock(): string {
  const found = FLOCK_CANDIDATES.find((p) => existsSync(p));
  if (found === undefined) {
    throw new InstanceLockError(`flock not found (looked in ${FLOCK_CANDIDATES.join(", ")}); install util-linux: apt-get install util-linux`);
  }
  return found;
}

export interface InstanceLock {
  readonly path: string;
  release(): void;
}

/**
 * An exclusive flock(2) on `path`, held as long as this process keeps the file open (the kernel drops
 * it when the process dies, however it dies: no stale lock to clean up, no pid to trust). Node has no
 * flock call, so util-linux `flock` locks our descriptor, handed to it as its stdin: a flock lock
 * belongs to the open file description, which outlives the short-lived flock process. The descriptor is
 * close-on-exec, so no other child (nft, hooks) keeps the lock after we are gone. The pid written into
 * the file only names the holder in the message; nothing is decided on it.
 */
export async function takeInstanceLock(path: string, what: string, flockPath = locateFlock()): Promise<InstanceLock> {
  let fd: number;
  try {
    // Read-only: flock(2) needs no write access, and a descriptor open for writing would keep the
    // state dir's file system from being remounted read-only.
    fd = openSync(path, constants.O_RDONLY | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    throw new InstanceLockError(`${what}: cannot open lock file ${path} (${(err as NodeJS.ErrnoException).code})`);
  }
  try {
    if (!fstatSync(fd).isFile()) throw new InstanceLockError(`${what}: lock file ${path} is not a regular file; remove it`);
    const r = await runFlock(flockPath, fd);
    if (r.exitCode === FLOCK_CONFLICT) {
      const pid = /^\d+/.exec(readFileSync(path, "utf8"))?.[0];
      throw new InstanceLockError(
        `${what}: another knockport-helper is running (it holds ${path}${pid === undefined ? "" : `, pid ${pid}`}); ` +
          "this one ran no firewall command; stop the other helper first (one helper per host owns the firewall)",
      );
    }
    if (r.exitCode !== 0) {
      throw new InstanceLockError(`${what}: cannot lock ${path} (flock exit ${String(r.exitCode)}: ${String(r.stderr).trim().slice(0, 200)})`);
    }
    writePid(path);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  let held = true;
  return {
    path,
    release: () => {
      if (!held) return;
      held = false;
      closeSync(fd);
    },
  };
}

/**
 * The lock file `path` in `dir`, a folder made 0700 when missing and refused (PRIVATE_DIR_UNUSABLE)
 * when another user could plant files or links in it. `label` names it in errors (e.g. --state-dir).
 */
export async function lockPrivateDir(dir: string, path: string, label: string): Promise<InstanceLock> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  checkPrivateDir(dir, { label });
  return takeInstanceLock(path, `${label} ${dir}`);
}

/**
 * The holder's pid, for the other helper's message, once the lock is ours. Best effort: a full or
 * read-only disk must not cost the lock (it lives in the open file description, not in the file's
 * content); the journal's own write then names the real problem (ENOSPC / EROFS on leases.json).
 */
function writePid(path: string): void {
  try {
    const w = openSync(path, constants.O_WRONLY | constants.O_TRUNC | constants.O_NOFOLLOW);
    try {
      writeSync(w, `${process.pid}\n`);
    } finally {
      closeSync(w);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOSPC" && code !== "EDQUOT" && code !== "EROFS") throw err;
  }
}

/**
 * `flock --nonblock 0` on `fd`, with `fd` as its stdin. An argument array, no shell.
 */
function runFlock(flockPath: string, fd: number): Promise<{ exitCode: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(flockPath, ["--exclusive", "--nonblock", "--conflict-exit-code", String(FLOCK_CONFLICT), "0"], {
      stdio: [fd, "ignore", "pipe"],
      timeout: 10_000,
    });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(0, 1000)));
    child.once("error", (err) => resolve({ exitCode: null, stderr: err.message }));
    child.once("close", (code) => resolve({ exitCode: code, stderr }));
  });
}
