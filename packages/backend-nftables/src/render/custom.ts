import { CUSTOM_JUMP_COMMENT, InvalidValueError, NFT_TABLE, isOurCustomChain, isOurCustomSet, type CustomChains, type NftPlacement } from "@knockport/firewall";
import type { TableListing } from "./listing.js";

// Custom tables and chains (--nftables-table-filter), loaded only with that flag: what of ours an admin's
// table holds, its base chains' check, and the removal of exactly our objects.

/** A chain name and a rule handle from nft's listing of the admin's table, checked before a `delete rule` names them. */
const CHAIN_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
function jumpRule(j: { readonly chain: string; readonly handle: number }): string {
  if (!CHAIN_NAME.test(j.chain)) throw new InvalidValueError("chain", `${JSON.stringify(String(j.chain).slice(0, 40))} is not a table/chain name`);
  if (!Number.isSafeInteger(j.handle) || j.handle < 1) throw new InvalidValueError("rule handle", `${String(j.handle).slice(0, 40)} is not a positive integer`);
  return `${j.chain} handle ${j.handle}`;
}

/** KnockPort's objects in an admin's table (kernel names): jumps found by CUSTOM_JUMP_COMMENT, chains and sets by name. */
export interface ExistingObjects {
  readonly jumps: readonly { readonly chain: string; readonly handle: number }[];
  readonly chains: readonly string[];
  readonly sets: readonly string[];
}

export function existingObjects(listing: TableListing): ExistingObjects {
  return {
    jumps: listing.rules.filter((r) => r.comment === CUSTOM_JUMP_COMMENT).map((r) => ({ chain: r.chain, handle: r.handle })),
    chains: listing.chains.map((c) => c.name).filter(isOurCustomChain),
    sets: listing.sets.filter(isOurCustomSet),
  };
}

/** The admin's chains we jump from must be filter base chains on the right hook; else a message naming the flag. */
export function checkAdminChains(listing: TableListing, custom: CustomChains, needForward: boolean): string | undefined {
  const wanted: Array<[string | undefined, string, string]> = [
    [custom.input, "input", "--nftables-chain-input"],
    [needForward ? custom.forward : undefined, "forward", "--nftables-chain-forward"],
    [custom.output, "output", "--nftables-chain-output"],
  ];
  for (const [name, hook, flag] of wanted) {
    if (name === undefined) continue;
    const found = listing.chains.find((c) => c.name === name);
    const fix = `create it (nft add chain inet ${custom.table} ${name} '{ type filter hook ${hook} priority filter; }') or name yours with ${flag}`;
    if (!found) return `${flag}: table inet ${custom.table} has no chain ${name}; ${fix}`;
    if (found.hook !== hook || found.type !== "filter") {
      const what = found.hook === undefined ? "a regular chain (no hook)" : `a ${found.type ?? "?"} chain on hook ${found.hook}`;
      return `${flag}: chain ${name} of table inet ${custom.table} is ${what}, not a filter chain on hook ${hook}; ${fix}`;
    }
  }
  return undefined;
}

/**
 * What of ours the admin's table holds, removed (jumps first: a chain still jumped to cannot go), and
 * our own table of the default mode, so switching to custom chains leaves no second set of drops.
 * Every name is re-checked to be ours.
 */
export function removeOurs(placement: NftPlacement, existing: ExistingObjects): string[] {
  const table = placement.table;
  const out = [`table ${NFT_TABLE} {}`, `delete table ${NFT_TABLE}`];
  for (const j of existing.jumps) out.push(`delete rule ${table} ${jumpRule(j)}`);
  for (const c of existing.chains) {
    if (!isOurCustomChain(c)) throw new InvalidValueError("chain", `${JSON.stringify(c.slice(0, 80))} is not one of KnockPort's chains`);
    out.push(`flush chain ${table} ${c}`, `delete chain ${table} ${c}`);
  }
  for (const s of existing.sets) {
    if (!isOurCustomSet(s)) throw new InvalidValueError("set", `${JSON.stringify(s.slice(0, 80))} is not one of KnockPort's sets`);
    out.push(`delete set ${table} ${s}`);
  }
  return out;
}

/** The ruleset's start in an admin's table: what of ours it holds removed, then the table opened to add ours. */
export function customHead(placement: NftPlacement, existing: ExistingObjects): string[] {
  return [
    `# KnockPort nftables rules inside the admin's table ${placement.table}, generated: do not edit. Loading it`,
    "# replaces KnockPort's own sets, chains and jumps there (all named knockport_*) in one transaction and",
    "# leaves every other object of the table alone; set elements are wiped unless re-added at the end.",
    ...removeOurs(placement, existing),
    `table ${placement.table} {`, // declaring an existing table adds to it
  ];
}

/** Uninstall, idempotent and one transaction: our own table (`table … {}` makes the delete safe when it is gone). */
export function renderNftRemoveTable(): string {
  return `table ${NFT_TABLE} {}\ndelete table ${NFT_TABLE}\n`;
}

/** Uninstall with custom tables: exactly our jumps, chains and sets in the admin's table, and our own table. */
export function renderNftRemoveCustom(placement: NftPlacement, existing: ExistingObjects): string {
  if (placement.custom === undefined) return renderNftRemoveTable();
  return `${removeOurs(placement, existing).join("\n")}\n`;
}
