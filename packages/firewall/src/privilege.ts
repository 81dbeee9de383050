/**
 * How the helper runs firewall binaries: directly (root, or a unit with CAP_NET_ADMIN), or through
 * `sudo -n` (`--use-sudo`, the helper as an ordinary user). Always an absolute program path and an
 * argument array, never a shell; `-n` makes sudo fail instead of prompting for a password.
 */
export interface Privilege {
  readonly viaSudo: boolean;
  /** The program to start and its arguments for running `file args…`. */
  wrap(file: string, args: readonly string[]): { file: string; args: string[] };
}

export const DIRECT: Privilege = { viaSudo: false, wrap: (file, args) => ({ file, args: [...args] }) };

export const DEFAULT_SUDO_PATH = "/usr/bin/sudo";

export function sudoPrivilege(sudoPath: string = DEFAULT_SUDO_PATH): Privilege {
  return { viaSudo: true, wrap: (file, args) => ({ file: sudoPath, args: ["-n", "--", file, ...args] }) };
}

/** Hint for a failed command: what the admin should check. */
export function privilegeHint(p: Privilege, stderr: string): string {
  if (p.viaSudo && /sudo:|a password is required|not allowed to execute|may not run sudo/i.test(stderr)) {
    return "; sudo refused: install deploy/sudoers/knockport as /etc/sudoers.d/knockport (visudo -cf) for the helper's user";
  }
  if (/Permission denied|Operation not permitted|EPERM/i.test(stderr)) {
    return p.viaSudo ? "; check the sudoers entry for the helper's user" : "; the helper needs root or CAP_NET_ADMIN (or --use-sudo)";
  }
  return "";
}
