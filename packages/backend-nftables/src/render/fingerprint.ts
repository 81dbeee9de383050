import { CUSTOM_JUMP_COMMENT, isOurCustomChain, isOurCustomSet } from "@knockport/firewall";
import { ListingParseError } from "./listing.js";

/**
 * What the kernel enforces of our objects, from `nft -t -j list table <family> <name>`: every chain (type,
 * hook, priority, policy), every rule with its expressions, every set's definition, in the kernel's order;
 * without handles, counter values and set elements, which change without anyone touching the rules.
 * Taken right after an install, it is the kernel's form of our rendering: any later listing that differs
 * (a flushed or deleted chain, a deleted or added rule, a changed hook or priority, a set gone, another
 * config's table) means the rules in force are not ours. Pure: the backend runs nft.
 */

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Which objects of the listed table are ours: all of them in our own table, the prefixed ones and our jumps in an admin's. */
export type Ownership = "own-table" | "custom";

function without(o: Json, keys: readonly string[]): Json {
  return Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)));
}

/** A rule's expressions with every counter's values dropped (the statement itself stays). */
function ruleExpressions(expr: unknown): unknown {
  if (!Array.isArray(expr)) return expr;
  return expr.map((e) => (isObject(e) && "counter" in e ? { counter: null } : e));
}

export function tableFingerprint(json: string, ownership: Ownership): string {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw new ListingParseError(`nft printed JSON that does not parse: ${(err as Error).message}`);
  }
  if (!isObject(doc) || !Array.isArray(doc.nftables)) throw new ListingParseError("nft's JSON listing has no nftables array");
  const custom = ownership === "custom";
  const out: unknown[] = [];
  for (const item of doc.nftables as unknown[]) {
    if (!isObject(item)) continue;
    const { table, chain, set, rule } = item;
    if (isObject(table) && !custom) out.push({ table: without(table, ["handle"]) });
    else if (isObject(chain) && (!custom || isOurCustomChain(String(chain.name)))) out.push({ chain: without(chain, ["handle"]) });
    else if (isObject(set) && (!custom || isOurCustomSet(String(set.name)))) out.push({ set: without(set, ["handle", "elem"]) });
    else if (isObject(rule) && (!custom || isOurCustomChain(String(rule.chain)) || rule.comment === CUSTOM_JUMP_COMMENT)) {
      out.push({ rule: { ...without(rule, ["handle", "expr"]), expr: ruleExpressions(rule.expr) } });
    }
  }
  return JSON.stringify(out);
}
