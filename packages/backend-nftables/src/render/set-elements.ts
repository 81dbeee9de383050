import { counterOf, type KernelElement } from "@knockport/firewall";

const UNIT_MS: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, ms: 1 };

/** nft's duration form (`2d23h59m59s992ms`, `1m30s`, `500ms`) in milliseconds; undefined when malformed. */
export function parseNftDuration(text: string): number | undefined {
  if (!/^(\d+(d|h|ms|m|s))+$/.test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(/(\d+)(d|h|ms|m|s)/g)) total += Number(m[1]) * (UNIT_MS[m[2] ?? ""] ?? NaN);
  return Number.isFinite(total) ? total : undefined;
}

/**
 * Elements of the sets named in `sets` from `nft list table` (text: the line the sudoers file already
 * allows), at most `maxElements`. Lines look like `elements = { 198.51.100.10 counter packets 12 bytes 840
 * timeout 1m expires 59s748ms, 198.51.100.12, ... }`; one without `expires` (added by hand) never ends.
 */
export function parseNftSetElements(listing: string, sets: ReadonlySet<string>, maxElements = 1_000_000): KernelElement[] {
  const out: KernelElement[] = [];
  const setHeader = /^\s*set (\S+) \{\s*$/gm;
  for (let header = setHeader.exec(listing); header !== null; header = setHeader.exec(listing)) {
    const name = header[1] ?? "";
    if (!sets.has(name)) continue;
    // The set's body ends at the first line that is only "}" at the set's indentation.
    const bodyStart = header.index + header[0].length;
    const end = listing.indexOf("\n\t}", bodyStart);
    const body = listing.slice(bodyStart, end === -1 ? undefined : end);
    const open = body.indexOf("elements = {");
    if (open === -1) continue;
    const close = body.indexOf("}", open);
    for (const raw of body.slice(open + "elements = {".length, close === -1 ? undefined : close).split(",")) {
      if (out.length >= maxElements) return out;
      const words = raw.trim().split(/\s+/).filter((w) => w !== "");
      const ip = words[0];
      if (ip === undefined) continue;
      const at = words.indexOf("expires");
      out.push({ set: name, ip, expiresInMs: at === -1 ? Infinity : (parseNftDuration(words[at + 1] ?? "") ?? 0), ...counterOf(words) });
    }
  }
  return out;
}
