import type { IptJump } from "./names.js";

/**
 * What the kernel enforces of KnockPort's iptables rules, from `iptables-save` / `ip6tables-save` and
 * `ipset list -n`: our chains, every rule in them and every jump to them, per table and in the kernel's
 * order, and our ipsets; without packet counters and set elements. Taken right after an install it is
 * the kernel's form of our rendering, so a later one that differs means a flushed chain (`iptables -F`,
 * `iptables-restore` without our chains), a deleted or changed rule, a missing jump or ipset. Rules of the
 * host's own do not count, nor where in a built-in chain they stand relative to our jump.
 */
export function iptablesFingerprint(saves: { readonly v4: string; readonly v6: string }, ourIpsets: readonly string[]): string {
  const out: string[] = [];
  for (const [family, save] of [["v4", saves.v4], ["v6", saves.v6]] as const) {
    let table = "";
    for (const raw of save.split("\n")) {
      const line = raw.trim();
      if (line.startsWith("*")) table = line.slice(1);
      // Chain declarations (`:KNOCKPORT-INPUT - [12:840]`), our rules and the jumps to our chains.
      else if (/(^:KNOCKPORT-|^-A KNOCKPORT-| -j KNOCKPORT-)/.test(line)) out.push(`${family} ${table} ${line.replace(/ \[\d+:\d+\]$/, "")}`);
    }
  }
  out.push(...[...ourIpsets].sort().map((s) => `ipset ${s}`));
  return out.join("\n");
}

/** Whether the fingerprint holds each of `jumps` in both families (a sanity check of a fresh install). */
export function hasJumps(fingerprint: string, jumps: readonly IptJump[]): boolean {
  const lines = fingerprint.split("\n");
  return jumps.every((j) =>
    (["v4", "v6"] as const).every((f) => lines.some((l) => l.startsWith(`${f} ${j.table} -A ${j.builtin} `) && l.endsWith(`-j ${j.spec[j.spec.length - 1] ?? ""}`))),
  );
}
