/** A firewall command (nft, iptables-restore, ipset, vbash) failed or could not be run. */
export class FirewallCommandError extends Error {
  readonly code = "FIREWALL_COMMAND_FAILED";
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
    this.name = "FirewallCommandError";
  }
}
