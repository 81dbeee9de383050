import { statSync } from "node:fs";

export class PrivateDirError extends Error {
  override readonly name = "PrivateDirError";
  readonly code = "PRIVATE_DIR_UNUSABLE";
}

export interface PrivateDirOptions {
  /** How the folder is named in errors, e.g. "--state-dir" or "2fa_config_folder". */
  label: string;
  /** Owners accepted besides root. Default: this process's effective user. */
  uids?: readonly number[];
  /** The command that makes the folder right (default: chown to the expected user, chmod go-w). */
  fix?: string;
}

/**
 * Refuses a folder that another user could write to: group- or world-writable, or owned by anyone
 * but root or the expected user. Whoever can write there can plant links and files where this
 * process (often root) creates, renames and reads its state. The error names the path, what was
 * found and the fix.
 */
export function checkPrivateDir(dir: string, options: PrivateDirOptions): void {
  const st = statSync(dir);
  if (!st.isDirectory()) throw new PrivateDirError(`${options.label} ${dir}: is not a folder`);
  const uids = options.uids ?? [process.geteuid?.() ?? 0];
  const mode = st.mode & 0o7777;
  const found = `owner uid ${st.uid}, gid ${st.gid}, mode ${mode.toString(8).padStart(4, "0")}`;
  if (st.uid !== 0 && !uids.includes(st.uid)) {
    const who = uids.filter((u) => u !== 0).map((u) => `uid ${u}`);
    throw new PrivateDirError(
      `${options.label} ${dir}: owned by another user (${found}); it must belong to root${who.length ? ` or ${who.join(" or ")}` : ""}: ${options.fix ?? `chown ${uids[0] ?? 0} ${dir}`}`,
    );
  }
  if ((mode & 0o022) !== 0) {
    throw new PrivateDirError(
      `${options.label} ${dir}: writable by ${(mode & 0o002) !== 0 ? "every user" : "its group"} (${found}); other users could plant files or links in it: ${options.fix ?? `chmod go-w ${dir}`}`,
    );
  }
}
