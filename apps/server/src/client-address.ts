import { BlockList } from "node:net";
import type { IncomingHttpHeaders } from "node:http";
import type { TrustedProxy } from "@knockport/config";
import { parseIpAddress, type IpAddress } from "@knockport/protocol";

/** Whom a knock is for: the address the helper opens ports to. */
export type ClientAddress =
  /** `ip` undefined: a peer address that is no unicast address (the route denies it). */
  | { readonly ok: true; readonly ip: IpAddress | undefined; readonly viaProxy: false }
  /** Named by the trusted proxy `proxy` (its normalised peer address, for the log). */
  | { readonly ok: true; readonly ip: IpAddress; readonly viaProxy: true; readonly proxy: IpAddress }
  /** A trusted proxy sent no usable client address: answered 400, never a fallback to the proxy's own. */
  | { readonly ok: false; readonly reason: string; readonly proxy: IpAddress };

/**
 * WAF mode: the client address comes from `X-Real-IP`, else the LAST `X-Forwarded-For` hop (the one
 * the proxy itself appended; earlier hops are whatever the client wrote), and only when the TCP peer
 * is a trusted proxy. Any other peer's headers are ignored: its own address is the client. Without a
 * trusted list (WAF mode off) headers are never read.
 */
export class ClientAddressResolver {
  private readonly trusted: BlockList | undefined;

  constructor(trustedProxies: readonly TrustedProxy[] | undefined) {
    if (trustedProxies === undefined || trustedProxies.length === 0) return;
    this.trusted = new BlockList();
    for (const p of trustedProxies) this.trusted.addSubnet(p.address, p.prefix, p.family === 4 ? "ipv4" : "ipv6");
  }

  /** True when `peer` (as the socket reports it) is a trusted proxy. */
  isTrusted(peer: IpAddress | undefined): boolean {
    if (!this.trusted || peer === undefined) return false;
    return this.trusted.check(peer, peer.includes(":") ? "ipv6" : "ipv4");
  }

  resolve(peerText: string | undefined, headers: IncomingHttpHeaders): ClientAddress {
    const peer = parseIpAddress(peerText ?? "");
    if (peer === undefined || !this.isTrusted(peer)) return { ok: true, ip: peer, viaProxy: false };
    const named = clientFromProxyHeaders(headers);
    return named.ok ? { ok: true, ip: named.ip, viaProxy: true, proxy: peer } : { ok: false, reason: named.reason, proxy: peer };
  }
}

/** The client a trusted proxy names: `X-Real-IP`, else the LAST `X-Forwarded-For` hop. */
export function clientFromProxyHeaders(headers: IncomingHttpHeaders): { readonly ok: true; readonly ip: IpAddress } | { readonly ok: false; readonly reason: string } {
  const realIp = headers["x-real-ip"];
  if (realIp !== undefined) return fromHeader("X-Real-IP", realIp);
  const forwarded = headers["x-forwarded-for"];
  if (forwarded !== undefined) {
    // Node joins repeated X-Forwarded-For headers with ", ": the last hop is still the proxy's.
    const text = Array.isArray(forwarded) ? forwarded.join(",") : forwarded;
    return fromHeader("X-Forwarded-For (last hop)", text.slice(text.lastIndexOf(",") + 1));
  }
  return { ok: false, reason: "the trusted proxy sent neither X-Real-IP nor X-Forwarded-For" };
}

function fromHeader(name: string, value: string | string[]): { ok: true; ip: IpAddress } | { ok: false; reason: string } {
  // Node joins a repeated X-Real-IP into "a, b": two answers to one question, refused.
  if (typeof value !== "string") return { ok: false, reason: `${name} is not a single value` };
  const ip = parseIpAddress(value.trim());
  if (!ip) return { ok: false, reason: `${name} is not a unicast IPv4/IPv6 address` };
  return { ok: true, ip };
}
