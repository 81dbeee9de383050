/**
 * Largest packet (`meta length`: IP and TCP headers and payload) accepted on the stealth HTTP port when it
 * starts with `POST <path> `: the whole knock must fit in that one segment (the next does not start with the path).
 */
export const STEP1_MAX_PACKET_LENGTH = 500;

/** Largest constant nft compares in one payload expression: 128 bits. */
export const MAX_COMPARE_BYTES = 16;

/** The bytes the first segment of a step-1 knock must start with. */
export function step1Prefix(httpPostPath: string): string {
  return `POST ${httpPostPath} `;
}

/** `POST <path> ` as consecutive compares of at most 16 bytes against the TCP payload (offsets in bits, big-endian hex). */
export function postPathCompares(httpPostPath: string): { offsetBits: number; lengthBits: number; hex: string }[] {
  const bytes = Buffer.from(step1Prefix(httpPostPath), "ascii");
  const out: { offsetBits: number; lengthBits: number; hex: string }[] = [];
  for (let at = 0; at < bytes.length; at += MAX_COMPARE_BYTES) {
    const chunk = bytes.subarray(at, Math.min(at + MAX_COMPARE_BYTES, bytes.length));
    out.push({ offsetBits: at * 8, lengthBits: chunk.length * 8, hex: chunk.toString("hex") });
  }
  return out;
}

/** `@ih,0,128 0x… @ih,128,128 0x… …` (`@ih`: the byte after the TCP header and its options); all must match. */
export function renderPostPathMatch(httpPostPath: string): string {
  return postPathCompares(httpPostPath).map((c) => `@ih,${c.offsetBits},${c.lengthBits} 0x${c.hex}`).join(" ");
}
