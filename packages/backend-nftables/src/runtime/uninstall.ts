import { NFT_TABLE_FAMILY, NFT_TABLE_NAME, OWN_TABLE, type NftPlacement } from "@knockport/firewall";
import { DIRECT, runCommand, type Privilege } from "@knockport/firewall/run";
import { existingObjects, renderNftRemoveCustom, renderNftRemoveTable } from "../render/custom.js";
import { listTable, runNftScript } from "./backend.js";

/**
 * Removes our table; false when it was not there. Needs no config. With custom chains: exactly our jumps,
 * chains and sets in the admin's table (found by its listing) and our own table if present.
 */
export async function uninstallNftables(nftPath: string, privilege: Privilege = DIRECT, placement: NftPlacement = OWN_TABLE): Promise<boolean> {
  const list = privilege.wrap(nftPath, ["list", "table", NFT_TABLE_FAMILY, NFT_TABLE_NAME]);
  const ownTable = (await runCommand(list.file, list.args, { timeout: 15_000 })).exitCode === 0;
  if (placement.custom === undefined) {
    if (ownTable) await runNftScript(nftPath, renderNftRemoveTable(), "remove the knockport table", privilege);
    return ownTable;
  }
  const admin = await listTable(nftPath, privilege, placement);
  const ours = admin === undefined ? { jumps: [], chains: [], sets: [] } : existingObjects(admin);
  if (!ownTable && ours.jumps.length + ours.chains.length + ours.sets.length === 0) return false;
  await runNftScript(nftPath, renderNftRemoveCustom(placement, ours), `remove KnockPort's chains from table ${placement.table}`, privilege);
  return true;
}
