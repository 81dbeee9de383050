import { CUSTOM_JUMP_COMMENT, isOurCustomChain, isOurCustomSet } from "@knockport/firewall";
import type { NftLayout } from "./ruleset.js";

/** One walk of `nft -t -j list table <family> <name>` (terse: no set elements, so it costs the same with any number of leases). */
export interface TableListing {
  readonly chains: readonly { readonly name: string; readonly type?: string; readonly hook?: string }[];
  readonly sets: readonly string[];
  /** `jumpTo`: the target when the rule is exactly one `jump` (with or without a counter). */
  readonly rules: readonly { readonly chain: string; readonly handle: number; readonly comment?: string; readonly jumpTo?: string }[];
  /**
   * What the kernel enforces of our objects: every chain (type, hook, priority, policy), rule (its
   * expressions) and set definition, in the kernel's order, without handles, counter values and elements,
   * which change without anyone touching the rules. Taken right after an install it is the kernel's form of
   * our rendering; a later one that differs means the rules in force are not ours.
   */
  readonly fingerprint: string;
}

/** Malformed JSON or not nft's shape: the caller reports the listing as unreadable. */
export class ListingParseError extends Error {
  readonly code = "NFT_LISTING_UNREADABLE";
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const without = (o: Json, keys: readonly string[]): Json => Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)));

/** `custom`: an admin's table, of which only our prefixed objects and our jumps are ours. */
export function readTableListing(json: string, custom: boolean): TableListing {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw new ListingParseError(`nft printed JSON that does not parse: ${(err as Error).message}`);
  }
  if (!isObject(doc) || !Array.isArray(doc.nftables)) throw new ListingParseError("nft's JSON listing has no nftables array");
  const chains: TableListing["chains"][number][] = [];
  const sets: string[] = [];
  const rules: TableListing["rules"][number][] = [];
  const ours: unknown[] = [];
  for (const item of doc.nftables as unknown[]) {
    if (!isObject(item)) continue;
    const { table, chain, set, rule } = item;
    if (isObject(table)) {
      if (!custom) ours.push({ table: without(table, ["handle"]) });
    } else if (isObject(chain)) {
      if (typeof chain.name === "string") chains.push({ name: chain.name, ...(typeof chain.type === "string" ? { type: chain.type } : {}), ...(typeof chain.hook === "string" ? { hook: chain.hook } : {}) });
      if (!custom || isOurCustomChain(String(chain.name))) ours.push({ chain: without(chain, ["handle"]) });
    } else if (isObject(set)) {
      if (typeof set.name === "string") sets.push(set.name);
      if (!custom || isOurCustomSet(String(set.name))) ours.push({ set: without(set, ["handle", "elem"]) });
    } else if (isObject(rule)) {
      const expr = Array.isArray(rule.expr) ? (rule.expr as unknown[]) : undefined;
      const verdicts = (expr ?? []).filter((e) => isObject(e) && !("counter" in e));
      const only = verdicts.length === 1 ? verdicts[0] : undefined;
      const jumpTo = isObject(only) && isObject(only.jump) && typeof only.jump.target === "string" ? only.jump.target : undefined;
      if (typeof rule.chain === "string" && typeof rule.handle === "number") {
        rules.push({ chain: rule.chain, handle: rule.handle, ...(typeof rule.comment === "string" ? { comment: rule.comment } : {}), ...(jumpTo !== undefined ? { jumpTo } : {}) });
      }
      if (!custom || isOurCustomChain(String(rule.chain)) || rule.comment === CUSTOM_JUMP_COMMENT) {
        // Counters keep their statement, not their values.
        ours.push({ rule: { ...without(rule, ["handle", "expr"]), expr: expr?.map((e) => (isObject(e) && "counter" in e ? { counter: null } : e)) ?? rule.expr } });
      }
    }
  }
  return { chains, sets, rules, fingerprint: JSON.stringify(ours) };
}

/**
 * Whether the table holds what `layout` puts there: every chain of ours with all its rules, every set,
 * each jump exactly once. False after a flushed chain, a deleted jump, a reload that wiped our objects.
 */
export function layoutInPlace(listing: TableListing, layout: NftLayout): boolean {
  const chainNames = new Set(listing.chains.map((c) => c.name));
  const sets = new Set(listing.sets);
  for (const c of layout.chains) {
    if (!chainNames.has(c.name) || listing.rules.filter((r) => r.chain === c.name).length !== c.rules) return false;
  }
  if (!layout.sets.every((s) => sets.has(s))) return false;
  const jumps = listing.rules.filter((r) => r.comment === CUSTOM_JUMP_COMMENT);
  return jumps.length === layout.jumps.length && layout.jumps.every((j) => jumps.some((r) => r.chain === j.from && r.jumpTo === j.to));
}
