import type { Logger } from "./log.js";
import { loadConfig } from "@knockport/config";
import type { NftPlacement } from "@knockport/firewall";
import { loadRender, loadRuntime, loadSudoers } from "@knockport/backends";
import type { HelperOptions } from "./args.js";
import type { Privilege } from "./privilege.js";
import { backendSpec } from "./backend-factory.js";

// The helper's one-shot modes (--print-sudoers, --dry-run, --uninstall-firewall). main.ts imports this
// module only for them, so the running helper never loads the sudoers and rendering code of every backend.

export async function printSudoers(options: HelperOptions, privilege: Privilege): Promise<string> {
  const { conntrackSudoCommands, renderSudoers } = await import("@knockport/backends/sudoers");
  const { locateConntrackFor } = await import("@knockport/firewall/run");
  const config = options.configFile === undefined ? undefined : loadConfig(options.configFile, { httpPort: options.httpPort, httpsPort: options.httpsPort, ...options.waf });
  const commands = (await loadSudoers(options.firewallType)).sudoCommands(backendSpec(options, privilege), config);
  const conntrack = config === undefined ? [] : conntrackSudoCommands(config, locateConntrackFor(config));
  return renderSudoers(options.sudoUser, [...commands, ...conntrack], options.firewallType);
}

/** The exact ruleset the backend would install; needs no firewall binary and no privileges. */
export async function renderDryRun(options: HelperOptions): Promise<string> {
  const config = loadConfig(options.configFile ?? "", { httpPort: options.httpPort, httpsPort: options.httpsPort, ...options.waf });
  return (await loadRender(options.firewallType)).renderDryRun(config, { customChains: options.customChains });
}

/** Removes KnockPort's firewall objects; true when there were some. */
export async function uninstallFirewall(options: HelperOptions, privilege: Privilege): Promise<boolean> {
  const config = options.firewallType === "vyos" && options.configFile !== undefined ? loadConfig(options.configFile) : undefined;
  return (await loadRuntime(options.firewallType)).uninstall(backendSpec(options, privilege), config);
}

export function logUninstalled(log: Logger, removed: boolean, placement: NftPlacement): void {
  log.info(
    { event: "firewall.uninstalled", removed, table: placement.table },
    removed ? `KnockPort's firewall objects removed (${placement.table})` : "no KnockPort firewall objects were installed",
  );
}
