// RFC 6238 TOTP (HMAC-SHA1, 6 digits) for the 2FA e2e files, written independently of the code under test.
import { createHmac } from "node:crypto";

/** The 6-digit code of a base32 secret for one time step. */
export function totp(base32: string, counter: number): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of base32.replace(/=+$/, "")) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const key = Buffer.from((bits.match(/.{8}/g) ?? []).map((b) => parseInt(b, 2)));
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac("sha1", key).update(msg).digest();
  const offset = (mac[mac.length - 1] ?? 0) & 0x0f;
  const code = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(code).padStart(6, "0");
}

/** The time step of `at` (default now) for a period in seconds. */
export const counterAt = (period: number, at = Date.now()): number => Math.floor(at / 1000 / period);
