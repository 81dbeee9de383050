import { ipFamily, parseIpAddress, type IpAddress, type IpFamily } from "@knockport/protocol";

/** One peer (address or network) whose X-Real-IP / X-Forwarded-For the server believes. */
export interface TrustedProxy {
  /** Canonical address (IPv4-mapped IPv6 written as IPv4). */
  readonly address: IpAddress;
  readonly prefix: number;
  readonly family: IpFamily;
}

/** Used when WAF ports are set and neither global.waf_trusted_ips nor --waf-trusted-ips names a proxy. */
export const DEFAULT_WAF_TRUSTED_IPS: readonly string[] = ["127.0.0.1", "::1"];
/** More trusted entries than any real deployment has; keeps the per-request check trivially cheap. */
export const WAF_TRUSTED_IPS_MAX = 64;
export const WAF_TRUSTED_IP_HINT =
  "an IPv4 or IPv6 address or network such as 127.0.0.1, ::1, 10.0.0.0/8 or fd00::/64 (no /0: that would trust every peer)";

/**
 * Parse `ADDRESS` or `ADDRESS/PREFIX` (IPv4 or IPv6, no scope ID, no brackets, no port). A bare
 * address is a /32 or /128. `/0` is refused: a peer trusted by everyone could claim any address.
 * Undefined when the text is anything else.
 */
export function parseTrustedProxy(text: string): TrustedProxy | undefined {
  if (typeof text !== "string" || text.length > 49 || !/^[0-9A-Fa-f:.]+(\/\d{1,3})?$/.test(text)) return undefined;
  const [addressText = "", prefixText] = text.split("/");
  const address = parseIpAddress(addressText);
  if (!address) return undefined;
  const family = ipFamily(address);
  // ::ffff:10.0.0.0/104 would silently become an IPv4 network with another meaning of the prefix
  if (prefixText !== undefined && family === 4 && addressText.includes(":")) return undefined;
  const max = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 1 || prefix > max) return undefined;
  return { address, prefix, family };
}

export function formatTrustedProxy(p: TrustedProxy): string {
  return p.prefix === (p.family === 4 ? 32 : 128) ? p.address : `${p.address}/${p.prefix}`;
}
