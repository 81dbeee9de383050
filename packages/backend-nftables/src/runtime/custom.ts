import type { FirewallConfig as KnockportConfig } from "@knockport/config/firewall";
import { forwardedApps, type CustomChains } from "@knockport/firewall";
import { FirewallCommandError } from "@knockport/firewall/run";
import { checkAdminChains, existingObjects, type ExistingObjects } from "../render/custom.js";
import type { TableListing } from "../render/listing.js";

/** Before an install into an admin's table (loaded only with --nftables-table-filter): it must exist and fit; what of ours it holds. */
export function adminTableObjects(listing: TableListing | undefined, table: string, custom: CustomChains, config: KnockportConfig): ExistingObjects {
  if (listing === undefined) {
    throw new FirewallCommandError(
      `--nftables-table-filter: table ${table} does not exist (an ip or ip6 table of that name does not count: KnockPort needs an inet table, which sees both families); create it with your own ruleset first (KnockPort only adds to it), or leave the flag out to use KnockPort's own table`,
      "",
    );
  }
  const problem = checkAdminChains(listing, custom, forwardedApps(config).length > 0);
  if (problem !== undefined) throw new FirewallCommandError(problem, "");
  return existingObjects(listing);
}
