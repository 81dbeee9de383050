import { CUSTOM_JUMP_COMMENT, isOurCustomChain, isOurCustomSet, type CustomChains } from "@knockport/firewall";
import type { ExistingObjects, NftLayout } from "./ruleset.js";

/**
 * Reading an admin's table (`nft -j list table inet <name>`) for custom tables and chains: which of
 * its base chains hook where (the start-up check), which objects of ours it holds (removed and
 * re-created by the next install, removed by uninstall) and whether all of ours are in place (the
 * self-heal check). Pure: the backend runs nft.
 */

export interface ListedChain {
  readonly name: string;
  /** Base chains only. */
  readonly type?: string;
  readonly hook?: string;
}

export interface ListedRule {
  readonly chain: string;
  readonly handle: number;
  readonly comment?: string;
  /** The target when the rule is exactly one `jump` (with or without a counter). */
  readonly jumpTo?: string;
}

export interface TableListing {
  readonly chains: readonly ListedChain[];
  readonly sets: readonly string[];
  readonly rules: readonly ListedRule[];
}

/** Malformed JSON or not nft's shape: the caller reports the listing as unreadable. */
export class ListingParseError extends Error {
  readonly code = "NFT_LISTING_UNREADABLE";
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

export function parseTableListing(json: string): TableListing {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw new ListingParseError(`nft printed JSON that does not parse: ${(err as Error).message}`);
  }
  if (!isObject(doc) || !Array.isArray(doc.nftables)) throw new ListingParseError("nft's JSON listing has no nftables array");
  const chains: ListedChain[] = [];
  const sets: string[] = [];
  const rules: ListedRule[] = [];
  for (const item of doc.nftables as unknown[]) {
    if (!isObject(item)) continue;
    const { chain, set, rule } = item;
    if (isObject(chain) && typeof chain.name === "string") {
      chains.push({
        name: chain.name,
        ...(typeof chain.type === "string" ? { type: chain.type } : {}),
        ...(typeof chain.hook === "string" ? { hook: chain.hook } : {}),
      });
    } else if (isObject(set) && typeof set.name === "string") {
      sets.push(set.name);
    } else if (isObject(rule) && typeof rule.chain === "string" && typeof rule.handle === "number") {
      const expr = Array.isArray(rule.expr) ? (rule.expr as unknown[]) : [];
      const verdicts = expr.filter((e) => isObject(e) && !("counter" in e));
      const only = verdicts.length === 1 ? verdicts[0] : undefined;
      const jump = isObject(only) && isObject(only.jump) && typeof only.jump.target === "string" ? only.jump.target : undefined;
      rules.push({
        chain: rule.chain,
        handle: rule.handle,
        ...(typeof rule.comment === "string" ? { comment: rule.comment } : {}),
        ...(jump !== undefined ? { jumpTo: jump } : {}),
      });
    }
  }
  return { chains, sets, rules };
}

/** What of ours the table holds: jumps (by their comment, in any chain), our chains and sets (by name). */
export function existingObjects(listing: TableListing): ExistingObjects {
  return {
    jumps: listing.rules.filter((r) => r.comment === CUSTOM_JUMP_COMMENT).map((r) => ({ chain: r.chain, handle: r.handle })),
    chains: listing.chains.map((c) => c.name).filter(isOurCustomChain),
    sets: listing.sets.filter(isOurCustomSet),
  };
}

/**
 * The admin's chains we jump from must exist and be filter base chains on the right hook; a message
 * naming the flag otherwise (undefined when everything fits).
 */
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
 * Whether the table holds exactly what `layout` puts there: every chain of ours with all its rules,
 * every set, and each jump exactly once. False after `nft flush chain` of ours, a deleted jump, or an
 * admin reload that wiped our objects.
 */
export function layoutInPlace(listing: TableListing, layout: NftLayout): boolean {
  const chainNames = new Set(listing.chains.map((c) => c.name));
  const sets = new Set(listing.sets);
  for (const c of layout.chains) {
    if (!chainNames.has(c.name)) return false;
    if (listing.rules.filter((r) => r.chain === c.name).length !== c.rules) return false;
  }
  if (!layout.sets.every((s) => sets.has(s))) return false;
  const jumps = listing.rules.filter((r) => r.comment === CUSTOM_JUMP_COMMENT);
  if (jumps.length !== layout.jumps.length) return false;
  return layout.jumps.every((j) => jumps.some((r) => r.chain === j.from && r.jumpTo === j.to));
}
