import { UsageError } from "@knockport/config/flags";
import { HELPER_USER, SERVER_USER, parsePasswd } from "@knockport/config/accounts";

export { DIRECT, sudoPrivilege, type Privilege } from "@knockport/firewall/run";

/**
 * Refuses --use-sudo when the helper runs as the server's user: sudo would then give the
 * internet-facing process `nft -f -`, which can read any file (`include`) and owns the firewall.
 * `passwd` is the text of /etc/passwd.
 */
export function refuseSudoAsServerUser(uid: number, passwd: string): void {
  const name = parsePasswd(passwd).find((u) => u.uid === uid)?.name;
  if (name !== SERVER_USER) return;
  throw new UsageError(
    `--use-sudo: the helper runs as ${SERVER_USER}, the server's user; sudo would give the internet-facing server the firewall. ` +
      `Run the helper as its own user ${HELPER_USER} (deploy/sysusers.d, deploy/sudoers/knockport) or as root`,
  );
}
