import { randomBytes } from "node:crypto";
import { closeSync, constants, fchmodSync, fchownSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";

export interface DurableWriteOptions {
  /** Default 0600. */
  mode?: number;
  owner?: { uid: number; gid: number };
}

/**
 * Opens `file` without ever following a symlink at its last component (ELOOP instead), so a link
 * planted where root writes cannot redirect the write to another file.
 */
export function openNoFollow(file: string, flags: number, mode = 0o600): number {
  return openSync(file, flags | constants.O_NOFOLLOW, mode);
}

/**
 * Replace `file` whole: write a temporary file beside it, fsync it, rename it over the old one and
 * fsync the folder. A crash leaves the old content or the new, never a torn file. The temporary
 * file has a random name and is created with O_EXCL|O_NOFOLLOW, and its mode and owner are set on
 * the open descriptor: whatever sits at that name (a planted symlink, a file) makes the write fail
 * instead of touching another file. Errors are thrown as they come (the caller names the file).
 */
export function writeFileDurably(file: string, data: string | Buffer, options: DurableWriteOptions = {}): void {
  const mode = options.mode ?? 0o600;
  const tmp = join(dirname(file), `.${basename(file)}.tmp-${randomBytes(8).toString("hex")}`);
  const fd = openNoFollow(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    try {
      fchmodSync(fd, mode); // the umask may have narrowed what open asked for
      if (options.owner !== undefined) fchownSync(fd, options.owner.uid, options.owner.gid);
      writeSync(fd, typeof data === "string" ? Buffer.from(data, "utf8") : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file); // rename replaces a symlink at `file` itself, never its target
  } catch (err) {
    // O_EXCL made this name ours: removing it cannot hit someone else's file. A full disk must not
    // also keep a half-written file around.
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw err;
  }
  fsyncDir(dirname(file));
}

/** fsync a folder, so that a file created or renamed in it is still there after a crash. */
export function fsyncDir(dir: string): void {
  const dirFd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
