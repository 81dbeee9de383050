import { checkHttpPostPath } from "./validate.js";

/**
 * Largest packet (IP header + TCP header + payload, `meta length`) accepted on the stealth HTTP port
 * when it starts with `POST <path> `. The whole knock request must fit in that one segment: a
 * following segment does not start with the path and is dropped.
 */
export const STEP1_MAX_PACKET_LENGTH = 500;

/** Largest constant nft compares in one payload expression: 128 bits. */
export const MAX_COMPARE_BYTES = 16;

export interface PayloadCompare {
  /** Offset from the start of the TCP payload, in bits. */
  readonly offsetBits: number;
  readonly lengthBits: number;
  /** Big-endian hex of the bytes, without 0x. */
  readonly hex: string;
}

/** The exact bytes the first segment of a step-1 knock must start with. */
export function step1Prefix(httpPostPath: string): string {
  return `POST ${checkHttpPostPath(httpPostPath)} `;
}

/**
 * Split `POST <path> ` into consecutive compares of at most 16 bytes against the TCP payload
 * (`@ih`, the inner header base: the byte after the TCP header including its options).
 */
export function postPathCompares(httpPostPath: string): PayloadCompare[] {
  const bytes = Buffer.from(step1Prefix(httpPostPath), "ascii");
  const out: PayloadCompare[] = [];
  for (let at = 0; at < bytes.length; at += MAX_COMPARE_BYTES) {
    const chunk = bytes.subarray(at, Math.min(at + MAX_COMPARE_BYTES, bytes.length));
    out.push({ offsetBits: at * 8, lengthBits: chunk.length * 8, hex: chunk.toString("hex") });
  }
  return out;
}

/** `@ih,0,128 0x… @ih,128,128 0x… …`: all must match, so the packet starts with `POST <path> `. */
export function renderPostPathMatch(httpPostPath: string): string {
  return postPathCompares(httpPostPath)
    .map((c) => `@ih,${c.offsetBits},${c.lengthBits} 0x${c.hex}`)
    .join(" ");
}
