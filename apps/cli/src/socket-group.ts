import { HELPER_USER, UsageError, parseGroup, parsePasswd } from "@knockport/config";

/** Group names that distributions hand to many unrelated daemons. */
const SHARED_GROUP_NAMES = new Set(["nogroup", "nobody", "nfsnobody"]);
/** The overflow id (nobody/nogroup) on every Linux distribution. */
const OVERFLOW_ID = 65534;

export interface ServerAccount {
  uid: number;
  gid: number;
  name: string;
}

/**
 * Why `account`'s primary group must not own the helper socket, or undefined. Whoever is in that
 * group may call the helper, so it must be the server's alone: not nogroup (every `nobody` daemon),
 * not the primary group of another account, with no other members. `passwd`/`group` are the text
 * of /etc/passwd and /etc/group.
 */
export function sharedSocketGroup(account: ServerAccount, passwd: string, group: string): string | undefined {
  const entry = parseGroup(group).find((g) => g.gid === account.gid);
  const name = entry?.name ?? String(account.gid);
  if (account.gid === OVERFLOW_ID || SHARED_GROUP_NAMES.has(name)) {
    return `group ${name} (gid ${account.gid}) is shared by unrelated daemons`;
  }
  // The helper's own user is in the server's group to own the socket: that is the helper itself.
  const ours = (name: string): boolean => name === account.name || name === HELPER_USER;
  const others = parsePasswd(passwd)
    .filter((u) => u.gid === account.gid && !ours(u.name))
    .map((u) => u.name);
  const members = (entry?.members ?? []).filter((m) => !ours(m));
  const sharers = [...new Set([...others, ...members])];
  if (sharers.length > 0) return `group ${name} (gid ${account.gid}) is shared with ${sharers.slice(0, 5).join(", ")}${sharers.length > 5 ? ", ..." : ""}`;
  return undefined;
}

/** Throws the usage error `knockport run` gives for a shared socket group. */
export function refuseSharedSocketGroup(account: ServerAccount, passwd: string, group: string): void {
  const problem = sharedSocketGroup(account, passwd, group);
  if (problem === undefined) return;
  throw new UsageError(
    `--user ${account.name}: the helper socket would belong to its group, and ${problem}: any of them could ask the helper to open ports. ` +
      `Create the server's own user and group: useradd --system --user-group --no-create-home --shell /usr/sbin/nologin knockport (then run again; --user defaults to knockport)`,
  );
}

/**
 * setpriv's arguments that drop to `account` keeping only CAP_NET_BIND_SERVICE; no_new_privs, so
 * nothing the server executes can gain privileges (setuid binaries, file capabilities).
 */
export function serverSetprivArgs(account: ServerAccount): string[] {
  return [
    `--reuid=${account.uid}`,
    `--regid=${account.gid}`,
    "--clear-groups",
    "--no-new-privs",
    "--inh-caps=-all,+net_bind_service",
    "--ambient-caps=-all,+net_bind_service",
  ];
}
