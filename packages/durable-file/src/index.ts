import { chmodSync, chownSync, closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname, join, resolve, sep } from "node:path";

/**
 * mkdir -p with a bounded walk (one mkdir per path component). Node's own recursive mkdirSync can
 * spin forever on some paths (e.g. below /proc), which a daemon's start must never do.
 */
export function makeDirs(dir: string, mode: number): void {
  const parts = resolve(dir).split(sep).filter((p) => p !== "");
  let path: string = sep;
  for (const part of parts) {
    path = join(path, part);
    try {
      mkdirSync(path, { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
}

export interface DurableWriteOptions {
  /** Default 0600. */
  mode?: number;
  owner?: { uid: number; gid: number };
}

/**
 * Replace `file` whole: write a temporary file beside it, fsync it, rename it over the old one and
 * fsync the folder. A crash leaves the old content or the new, never a torn file. Errors are thrown
 * as they come (the caller names the file in its own message).
 */
export function writeFileDurably(file: string, data: string | Buffer, options: DurableWriteOptions = {}): void {
  const mode = options.mode ?? 0o600;
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    const fd = openSync(tmp, "w", mode);
    try {
      writeSync(fd, typeof data === "string" ? Buffer.from(data, "utf8") : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(tmp, mode); // the umask may have narrowed what openSync asked for
    if (options.owner !== undefined) chownSync(tmp, options.owner.uid, options.owner.gid);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true }); // a full disk must not also keep a half-written file around
    throw err;
  }
  fsyncDir(dirname(file));
}

/** fsync a folder, so that a file created or renamed in it is still there after a crash. */
export function fsyncDir(dir: string): void {
  const dirFd = openSync(dir, "r");
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
