/**
 * What the helper's clients (server, CLI, knockport-hooks) need and the helper does not: the result
 * schemas, error names by code, and address networks for rate limits.
 */
import { HELPER_ERRORS, type HelperErrorName } from "./errors.js";
import { ipFamily, type IpAddress } from "./ip.js";

export * from "./results.js";

export function helperErrorNameFromCode(code: number): HelperErrorName | undefined {
  return (Object.keys(HELPER_ERRORS) as HelperErrorName[]).find((n) => HELPER_ERRORS[n].code === code);
}

/**
 * The network of `ip` as "<first address>/<bits>" for IPv6 (the address itself for IPv4 or bits
 * 128): a key for limits that must not give each address of one subscriber's prefix its own budget.
 */
export function ipv6NetworkKey(ip: IpAddress, bits: number): string {
  if (ipFamily(ip) === 4 || bits >= 128) return ip;
  const [left = [], right = []] = ip.split("::").map((s) => (s === "" ? [] : s.split(":").map((h) => parseInt(h, 16))));
  const hextets = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const masked = hextets.map((g, i) => g & (0xffff << (16 - Math.min(Math.max(bits - i * 16, 0), 16))) & 0xffff);
  return `${new URL(`http://[${masked.map((g) => g.toString(16)).join(":")}]/`).hostname.slice(1, -1)}/${bits}`;
}
