import { counterOf, type KernelElement } from "@knockport/firewall";

/**
 * Elements of our ipsets out of `ipset save` (lines `add <set> <ip> timeout <seconds>`), with logical set
 * names (`names` maps ipset name -> logical name; other sets are skipped). ipset reports whole seconds.
 */
export function parseIpsetSave(save: string, names: ReadonlyMap<string, string>, maxElements = 1_000_000): KernelElement[] {
  const out: KernelElement[] = [];
  for (const line of save.split("\n")) {
    if (out.length >= maxElements) break;
    const words = line.trim().split(/\s+/);
    if (words[0] !== "add") continue;
    const set = names.get(words[1] ?? "");
    const ip = words[2];
    if (set === undefined || ip === undefined) continue;
    const at = words.indexOf("timeout");
    const seconds = at === -1 ? Infinity : Number(words[at + 1]);
    // `timeout 0` in a set with timeouts means "never expires".
    out.push({ set, ip, expiresInMs: Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : Infinity, ...counterOf(words) });
  }
  return out;
}

/**
 * Names of our ipsets (`ours`) that `ipset save` shows without the `counters` option: made by a version
 * before per-element counters, to be swapped for sets with counters at install.
 */
export function ipsetsWithoutCounters(save: string, ours: (name: string) => boolean): Set<string> {
  const out = new Set<string>();
  for (const line of save.split("\n")) {
    if (!line.startsWith("create ")) continue;
    const words = line.trim().split(/\s+/);
    const name = words[1] ?? "";
    if (ours(name) && !words.includes("counters")) out.add(name);
  }
  return out;
}
