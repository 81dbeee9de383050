import type { FirewallConfig as KnockportConfig } from "@knockport/config/firewall";
import type { BackendSudoers } from "@knockport/firewall";
import { nftSudoCommands } from "@knockport/backend-nftables/sudoers";
import { locateNft } from "@knockport/backend-nftables/runtime";
import { vyosChains } from "./render/ruleset.js";

/** Our own table's nft lines, plus the listing of each VyOS chain we fill. */
export function vyosSudoCommands(nft: string, config: KnockportConfig | undefined): string[][] {
  const out = nftSudoCommands(nft);
  if (config) for (const c of vyosChains(config)) out.push([nft, "list", "chain", c.family, c.table, c.chain]);
  return out;
}

export const sudoCommands: BackendSudoers["sudoCommands"] = (_spec, config) => vyosSudoCommands(locateNft(), config);
