import type { KnockportConfig } from "@knockport/config";
import type { NftPlacement } from "@knockport/firewall/nft";
import type { HelperOptions } from "./args.js";
import type { FirewallBackend } from "./backend.js";
import type { Privilege } from "./privilege.js";

/**
 * The one backend --firewall-type names, imported on demand: the running helper loads no code of the
 * other backends (less for a reviewer to audit in the process that runs as root).
 */
export async function createBackend(
  options: HelperOptions,
  config: KnockportConfig,
  privilege: Privilege,
  placement: NftPlacement,
): Promise<FirewallBackend> {
  switch (options.firewallType) {
    case "iptables": {
      const { IptablesBackend, locateIptables } = await import("./iptables.js");
      return new IptablesBackend(config, locateIptables(options.iptablesBinary), privilege);
    }
    case "vyos": {
      const { VyosBackend, locateVbash } = await import("./vyos.js");
      const { locateNft } = await import("./nftables.js");
      return new VyosBackend(config, locateVbash(options.vbash), locateNft(), privilege);
    }
    default: {
      const { NftablesBackend, locateNft } = await import("./nftables.js");
      return new NftablesBackend(config, locateNft(), privilege, placement);
    }
  }
}
