import { isIPv4, isIPv6 } from "node:net";

declare const ipBrand: unique symbol;
/** A normalised unicast IPv4 or IPv6 address. Only `parseIpAddress` makes one. */
export type IpAddress = string & { readonly [ipBrand]: true };
export type IpFamily = 4 | 6;

/** Dotted IPv4, or undefined for 0/8 ("this host"), multicast 224/4, reserved 240/4 and broadcast: never a peer. */
function unicastIpv4(octets: readonly number[]): IpAddress | undefined {
  const a = octets[0] ?? 0;
  return a === 0 || a >= 224 ? undefined : (octets.join(".") as IpAddress);
}

/**
 * Validate and normalise a peer address. Accepts dotted IPv4, IPv6 (any valid spelling), and
 * IPv4-mapped IPv6 (as a dual-stack socket reports IPv4 peers), which becomes plain IPv4.
 * Rejects scope IDs, prefixes, ports, unspecified, multicast and broadcast addresses.
 */
export function parseIpAddress(text: string): IpAddress | undefined {
  if (typeof text !== "string" || text.length === 0 || text.length > 45) return undefined;
  if (isIPv4(text)) return unicastIpv4(text.split(".").map(Number));
  if (!isIPv6(text) || text.includes("%")) return undefined;
  let ip: string;
  try {
    // The URL host serializer writes RFC 5952's form: lowercase, no leading zeros, the first longest run of zero groups as "::".
    ip = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  // ::ffff:0:0/96, in any spelling, is an IPv4 peer seen through a dual-stack socket.
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(ip);
  if (mapped) return unicastIpv4(mapped.slice(1).flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
  return ip === "::" || /^ff[0-9a-f]{2}:/.test(ip) ? undefined : (ip as IpAddress); // unspecified, multicast ff00::/8
}

export function ipFamily(ip: IpAddress): IpFamily {
  return ip.includes(":") ? 6 : 4;
}
