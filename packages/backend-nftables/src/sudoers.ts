import { nftPlacement, NFT_TABLE_FAMILY, NFT_TABLE_NAME, OWN_TABLE, type BackendSudoers, type NftPlacement } from "@knockport/firewall";
import { locateNft } from "./runtime/backend.js";

/** The nft command lines the nftables backend (and VyOS's own table) runs, exact. */
export function nftSudoCommands(nft: string, placement: NftPlacement = OWN_TABLE): string[][] {
  const out = [
    [nft, "-f", "-"],
    [nft, "list", "table", NFT_TABLE_FAMILY, NFT_TABLE_NAME],
    [nft, "-t", "-j", "list", "table", NFT_TABLE_FAMILY, NFT_TABLE_NAME],
    // the self-heal watch: events only, it changes nothing
    [nft, "monitor"],
  ];
  const custom = placement.custom;
  // custom tables: the admin's table is read (JSON for chains/handles and the self-heal check, text for set elements)
  if (custom) out.push([nft, "-t", "-j", "list", "table", NFT_TABLE_FAMILY, custom.table], [nft, "list", "table", NFT_TABLE_FAMILY, custom.table]);
  return out;
}

export const sudoCommands: BackendSudoers["sudoCommands"] = (spec) => nftSudoCommands(locateNft(), nftPlacement(spec.customChains));
