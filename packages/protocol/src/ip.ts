import { isIPv4, isIPv6 } from "node:net";

declare const ipBrand: unique symbol;
/** A normalised unicast IPv4 or IPv6 address. Only `parseIpAddress` makes one. */
export type IpAddress = string & { readonly [ipBrand]: true };
export type IpFamily = 4 | 6;

const IPV4_MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

function ipv4Octets(text: string): number[] {
  return text.split(".").map((part) => Number(part));
}

function isUnicastIpv4(octets: number[]): boolean {
  const [a = 0] = octets;
  if (octets.every((o) => o === 0)) return false; // 0.0.0.0: "this host", never a peer
  if (a === 0) return false; // 0.0.0.0/8
  if (a >= 224) return false; // multicast 224/4, reserved 240/4, broadcast
  return true;
}

/** Expand an IPv6 address to its 8 hextets (input must already satisfy isIPv6). */
function ipv6Hextets(text: string): number[] {
  let head = text;
  let tailV4: number[] = [];
  const lastColon = text.lastIndexOf(":");
  const tail = text.slice(lastColon + 1);
  if (tail.includes(".")) {
    const o = ipv4Octets(tail);
    tailV4 = [((o[0] ?? 0) << 8) | (o[1] ?? 0), ((o[2] ?? 0) << 8) | (o[3] ?? 0)];
    head = text.slice(0, lastColon + 1) + "0"; // placeholder, removed below
  }
  const parse = (s: string): number[] => (s === "" ? [] : s.split(":").map((h) => parseInt(h, 16)));
  let groups: number[];
  const dbl = head.indexOf("::");
  if (dbl >= 0) {
    const left = parse(head.slice(0, dbl));
    let right = parse(head.slice(dbl + 2));
    if (tailV4.length) right = right.slice(0, -1);
    const fill = 8 - tailV4.length - left.length - right.length;
    groups = [...left, ...new Array<number>(fill).fill(0), ...right];
  } else {
    groups = parse(head);
    if (tailV4.length) groups = groups.slice(0, -1);
  }
  return [...groups, ...tailV4];
}

/** RFC 5952 text form: lowercase, no leading zeros, the longest run (>1) of zero groups as "::". */
function formatIpv6(h: number[]): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (h[i] !== 0) {
      i += 1;
      continue;
    }
    let j = i;
    while (j < 8 && h[j] === 0) j += 1;
    if (j - i > bestLen && j - i > 1) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = h.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

function isUnicastIpv6(h: number[]): boolean {
  if (h.every((g) => g === 0)) return false; // :: unspecified
  if (((h[0] ?? 0) & 0xff00) === 0xff00) return false; // ff00::/8 multicast
  return true;
}

/**
 * Validate and normalise a peer address. Accepts dotted IPv4, IPv6 (any valid spelling), and
 * IPv4-mapped IPv6 (as a dual-stack socket reports IPv4 peers), which becomes plain IPv4.
 * Rejects scope IDs, prefixes, ports, unspecified, multicast and broadcast addresses.
 */
export function parseIpAddress(text: string): IpAddress | undefined {
  if (typeof text !== "string" || text.length === 0 || text.length > 45) return undefined;
  const mapped = IPV4_MAPPED.exec(text);
  const candidate = mapped?.[1] ?? text;
  if (isIPv4(candidate)) {
    const octets = ipv4Octets(candidate);
    return isUnicastIpv4(octets) ? (octets.join(".") as IpAddress) : undefined;
  }
  if (isIPv6(candidate) && !candidate.includes("%")) {
    const hextets = ipv6Hextets(candidate);
    if (hextets.length !== 8 || hextets.some((g) => !Number.isInteger(g) || g < 0 || g > 0xffff)) return undefined;
    if (hextets.slice(0, 5).every((g) => g === 0) && hextets[5] === 0xffff) {
      // ::ffff:0:0/96 in any spelling is an IPv4 peer seen through a dual-stack socket
      const v4 = [hextets[6] ?? 0, hextets[7] ?? 0].flatMap((g) => [g >> 8, g & 0xff]);
      return isUnicastIpv4(v4) ? (v4.join(".") as IpAddress) : undefined;
    }
    return isUnicastIpv6(hextets) ? (formatIpv6(hextets) as IpAddress) : undefined;
  }
  return undefined;
}

export function ipFamily(ip: IpAddress): IpFamily {
  return ip.includes(":") ? 6 : 4;
}

/**
 * The network of `ip` as "<first address>/<bits>" for IPv6 (the address itself for IPv4 or bits
 * 128): a key for limits that must not give each address of one subscriber's prefix its own budget.
 */
export function ipv6NetworkKey(ip: IpAddress, bits: number): string {
  if (ipFamily(ip) === 4 || bits >= 128) return ip;
  const hextets = ipv6Hextets(ip);
  const masked = hextets.map((g, i) => {
    const keep = Math.min(Math.max(bits - i * 16, 0), 16);
    return keep === 0 ? 0 : g & (0xffff << (16 - keep)) & 0xffff;
  });
  return `${formatIpv6(masked)}/${bits}`;
}
