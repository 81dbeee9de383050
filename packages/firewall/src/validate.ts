import { parseIpAddress, type IpAddress } from "@knockport/protocol";
import { MAX_DURATION_SECONDS } from "@knockport/config/firewall";
import { InvalidValueError } from "./errors.js";

// Set elements are rendered from RPC requests (an address, a lease time), right before they are
// interpolated into a firewall command: each is checked here once more. Config values are not: the
// config view's schema is their one check (every FirewallConfig comes from it).

function shown(value: unknown): string {
  const text = typeof value === "string" ? JSON.stringify(value) : String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

export function checkTimeout(seconds: unknown): number {
  if (typeof seconds !== "number" || !Number.isSafeInteger(seconds) || seconds < 1 || seconds > MAX_DURATION_SECONDS) {
    throw new InvalidValueError("timeout", `${shown(seconds)} is not an integer number of seconds 1-${MAX_DURATION_SECONDS}`);
  }
  return seconds;
}

export function checkIp(ip: unknown): IpAddress {
  if (typeof ip !== "string" || parseIpAddress(ip) !== ip) throw new InvalidValueError("IP address", `${shown(ip)} is not a normalised unicast IPv4/IPv6 address`);
  return ip as IpAddress;
}
