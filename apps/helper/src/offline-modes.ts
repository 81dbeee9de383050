import type { Logger } from "./log.js";
import { loadConfig } from "@knockport/config";
import type { NftPlacement } from "@knockport/firewall/nft";
import type { HelperOptions } from "./args.js";
import type { Privilege } from "./privilege.js";

// The helper's one-shot modes (--print-sudoers, --dry-run, --uninstall-firewall). main.ts imports this
// module only for them, so the running helper never loads the sudoers and rendering code of every backend.

export async function printSudoers(options: HelperOptions, placement: NftPlacement): Promise<string> {
  const { renderSudoers, sudoCommands } = await import("./sudoers.js");
  const { locateConntrackFor } = await import("./conntrack.js");
  const { locateNft } = await import("./nftables.js");
  const config = options.configFile === undefined ? undefined : loadConfig(options.configFile, { httpPort: options.httpPort, httpsPort: options.httpsPort, ...options.waf });
  const conntrackPath = config === undefined ? undefined : locateConntrackFor(config);
  let commands;
  if (options.firewallType === "iptables") {
    const { locateIptables } = await import("./iptables.js");
    commands = sudoCommands({ type: "iptables", bin: locateIptables(options.iptablesBinary) }, config, conntrackPath);
  } else if (options.firewallType === "vyos") {
    commands = sudoCommands({ type: "vyos", nft: locateNft() }, config, conntrackPath);
  } else {
    commands = sudoCommands({ type: "nftables", nft: locateNft(), placement }, config, conntrackPath);
  }
  return renderSudoers(options.sudoUser, commands, options.firewallType);
}

/** The exact ruleset the backend would install; needs no firewall binary and no privileges. */
export async function renderDryRun(options: HelperOptions, placement: NftPlacement): Promise<string> {
  const config = loadConfig(options.configFile ?? "", { httpPort: options.httpPort, httpsPort: options.httpsPort, ...options.waf });
  const { renderIptablesDryRun, renderNftRuleset } = await import("@knockport/firewall");
  if (options.firewallType === "iptables") return renderIptablesDryRun(config);
  if (options.firewallType === "vyos") {
    const { VyosBackend } = await import("./vyos.js");
    return new VyosBackend(config, "/bin/vbash", "/usr/sbin/nft").renderRuleset();
  }
  return renderNftRuleset(config, { placement });
}

/** Removes KnockPort's firewall objects; true when there were some. */
export async function uninstallFirewall(options: HelperOptions, privilege: Privilege, placement: NftPlacement): Promise<boolean> {
  if (options.firewallType === "iptables") {
    const { locateIptables, uninstallIptables } = await import("./iptables.js");
    return uninstallIptables(locateIptables(options.iptablesBinary), privilege);
  }
  const { locateNft, uninstallNftables } = await import("./nftables.js");
  if (options.firewallType === "vyos" && options.configFile !== undefined) {
    const { VyosBackend } = await import("./vyos.js");
    return new VyosBackend(loadConfig(options.configFile), "/bin/vbash", locateNft(), privilege).uninstall();
  }
  return uninstallNftables(locateNft(), privilege, placement);
}

export function logUninstalled(log: Logger, removed: boolean, placement: NftPlacement): void {
  log.info(
    { event: "firewall.uninstalled", removed, table: placement.table },
    removed ? `KnockPort's firewall objects removed (${placement.table})` : "no KnockPort firewall objects were installed",
  );
}
