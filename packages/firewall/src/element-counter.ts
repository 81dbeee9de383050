/** `packets N bytes M` among an element's words (nft prints `counter packets N bytes M`, ipset `packets N bytes M`). */
export function counterOf(words: readonly string[]): { packets: number; bytes: number } | undefined {
  const p = words.indexOf("packets");
  const b = words.indexOf("bytes");
  if (p === -1 || b === -1) return undefined;
  const packets = Number(words[p + 1]);
  const bytes = Number(words[b + 1]);
  return Number.isSafeInteger(packets) && Number.isSafeInteger(bytes) && packets >= 0 && bytes >= 0 ? { packets, bytes } : undefined;
}
