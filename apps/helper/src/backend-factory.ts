import type { FirewallConfig as KnockportConfig } from "@knockport/config/firewall";
import type { FirewallBackend } from "@knockport/firewall";
import { loadRuntime } from "@knockport/backends";
import type { HelperOptions } from "./args.js";
import type { Privilege } from "./privilege.js";

/** The one backend --firewall-type names (its package is imported on demand by the factory). */
export async function createBackend(options: HelperOptions, config: KnockportConfig, privilege: Privilege): Promise<FirewallBackend> {
  const runtime = await loadRuntime(options.firewallType);
  return runtime.createBackend(config, backendSpec(options, privilege));
}

export function backendSpec(options: HelperOptions, privilege: Privilege) {
  return { type: options.firewallType, privilege, customChains: options.customChains, iptablesBinary: options.iptablesBinary, vbash: options.vbash };
}
