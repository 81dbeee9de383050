import type { IpFamily } from "@knockport/protocol";
import { step1Prefix } from "@knockport/firewall";

/**
 * `-m u32` tests that the TCP payload starts with exactly `POST <path> `, anchored at the first payload
 * byte whatever the IP and TCP header lengths: IPv4 `0>>22&0x3C@12>>26&0x3C@N` (IHL, then TCP data
 * offset), IPv6 `52>>26&0x3C@40+N` (fixed 40-byte header; a packet with extension headers before TCP
 * fails the test and is dropped). Four bytes per test, the last word masked; at most 10 tests per u32
 * match (the kernel's XT_U32_MAXSIZE), so several u32 matches in one rule.
 */
export function renderU32PostMatch(httpPostPath: string, family: IpFamily): string[] {
  const bytes = Buffer.from(step1Prefix(httpPostPath), "ascii");
  const tests: string[] = [];
  for (let at = 0; at < bytes.length; at += 4) {
    const chunk = Buffer.alloc(4);
    const n = Math.min(4, bytes.length - at);
    bytes.copy(chunk, 0, at, at + n);
    const value = chunk.readUInt32BE(0);
    const mask = n === 4 ? 0xffffffff : (0xffffffff << (8 * (4 - n))) >>> 0;
    const base = family === 4 ? `0>>22&0x3C@12>>26&0x3C@${at}` : `52>>26&0x3C@${40 + at}`;
    const hex = (v: number): string => `0x${v.toString(16).toUpperCase().padStart(8, "0")}`;
    tests.push(`${base}${n === 4 ? "" : `&${hex(mask)}`}=${hex(value)}`);
  }
  const out: string[] = [];
  for (let i = 0; i < tests.length; i += 10) out.push("-m", "u32", "--u32", `"${tests.slice(i, i + 10).join("&&")}"`);
  return out;
}
