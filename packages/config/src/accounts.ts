/** The internet-facing server's user (deploy/sysusers.d). */
export const SERVER_USER = "knockport";
/** The helper's own user for --use-sudo and the capability unit; never the server's. */
export const HELPER_USER = "knockport-helper";

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

/** The entries of /etc/passwd text; malformed lines are passed over. */
export function parsePasswd(text: string): PasswdEntry[] {
  return text
    .split("\n")
    .map((l) => l.split(":"))
    .filter((f) => f.length >= 4 && f[0] !== "" && /^\d+$/.test(f[2] ?? "") && /^\d+$/.test(f[3] ?? ""))
    .map((f) => ({ name: f[0] as string, uid: Number(f[2]), gid: Number(f[3]) }));
}
