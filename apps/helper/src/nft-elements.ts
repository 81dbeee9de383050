/**
 * Reads the elements of KnockPort's sets out of `nft list table inet knockport` (the text form: the same
 * command line the self-heal check and --print-sudoers already use, so no extra sudoers entry), for the
 * reconciliation of kernel and lease book and the per-lease counters. Element lines look like
 *   elements = { 198.51.100.10 counter packets 12 bytes 840 timeout 1m expires 59s748ms, 198.51.100.12,
 *                2001:db8::1 counter packets 0 bytes 0 timeout 5s expires 4s992ms }
 * An element without `expires` has no timeout (added by hand): it would never end.
 */
export interface KernelElement {
  readonly set: string;
  /** The address as nft printed it. */
  readonly ip: string;
  /** Milliseconds until the kernel removes it; Infinity when it has no timeout. */
  readonly expiresInMs: number;
  /** Packets and bytes the element's counter matched, when the set has per-element counters. */
  readonly packets?: number;
  readonly bytes?: number;
}

/** `packets N bytes M` among an element's words (nft prints `counter packets N bytes M`, ipset `packets N bytes M`). */
function counterOf(words: readonly string[]): { packets: number; bytes: number } | undefined {
  const p = words.indexOf("packets");
  const b = words.indexOf("bytes");
  if (p === -1 || b === -1) return undefined;
  const packets = Number(words[p + 1]);
  const bytes = Number(words[b + 1]);
  return Number.isSafeInteger(packets) && Number.isSafeInteger(bytes) && packets >= 0 && bytes >= 0 ? { packets, bytes } : undefined;
}

const UNIT_MS: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, ms: 1 };

/** nft's duration form (`2d23h59m59s992ms`, `1m30s`, `500ms`) in milliseconds; undefined when malformed. */
export function parseNftDuration(text: string): number | undefined {
  if (!/^(\d+(d|h|ms|m|s))+$/.test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(/(\d+)(d|h|ms|m|s)/g)) total += Number(m[1]) * (UNIT_MS[m[2] ?? ""] ?? NaN);
  return Number.isFinite(total) ? total : undefined;
}

/**
 * Elements of the sets named in `sets` (others, e.g. DNAT maps or the session's sync set, are skipped).
 * Bounded: at most `maxElements` are returned (a listing larger than that is cut, never looped over twice).
 */
export function parseNftSetElements(listing: string, sets: ReadonlySet<string>, maxElements = 1_000_000): KernelElement[] {
  const out: KernelElement[] = [];
  const setHeader = /^\s*set (\S+) \{\s*$/gm;
  for (let header = setHeader.exec(listing); header !== null; header = setHeader.exec(listing)) {
    const name = header[1] ?? "";
    if (!sets.has(name)) continue;
    // The set's body ends at the first line that is only "}" at the set's indentation or less.
    const bodyStart = header.index + header[0].length;
    const end = listing.indexOf("\n\t}", bodyStart);
    const body = listing.slice(bodyStart, end === -1 ? undefined : end);
    const open = body.indexOf("elements = {");
    if (open === -1) continue;
    const close = body.indexOf("}", open);
    const inner = body.slice(open + "elements = {".length, close === -1 ? undefined : close);
    for (const raw of inner.split(",")) {
      if (out.length >= maxElements) return out;
      const words = raw.trim().split(/\s+/).filter((w) => w !== "");
      const ip = words[0];
      if (ip === undefined) continue;
      const at = words.indexOf("expires");
      const expiresInMs = at === -1 ? Infinity : (parseNftDuration(words[at + 1] ?? "") ?? 0);
      out.push({ set: name, ip, expiresInMs, ...counterOf(words) });
    }
  }
  return out;
}

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
