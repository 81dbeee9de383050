import { parseIpAddress, parsePort, type Port } from "@knockport/protocol";
import type { Destination } from "./types.js";

const BRACKETED_IPV6 = /^\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?$/;
const DOTTED_IPV4 = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$/;
const BARE_IPV6 = /^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$/;

/**
 * Parse an app's `destination`: `local`, or the LAN host the service port is forwarded to as
 * `[IPv6]`, `[IPv6]:PORT`, `IPv4`, `IPv4:PORT` or a bare IPv6 (no port: `2001:db8::5:2222` is an
 * address). The address must be unicast (parseIpAddress) and is returned in canonical form; the
 * port defaults to the service port. Undefined when the text is none of these.
 */
export function parseDestination(text: string, servicePort: Port): Destination | undefined {
  if (text === "local") return { kind: "local" };
  let hostText: string | undefined;
  let portText: string | undefined;
  const bracketed = BRACKETED_IPV6.exec(text);
  const dotted = DOTTED_IPV4.exec(text);
  if (bracketed) {
    hostText = bracketed[1];
    portText = bracketed[2];
    if (!hostText?.includes(":")) return undefined; // [192.0.2.10] is not an IPv6 address
  } else if (dotted) {
    hostText = dotted[1];
    portText = dotted[2];
  } else if (BARE_IPV6.test(text)) {
    hostText = text;
  }
  const ip = hostText === undefined ? undefined : parseIpAddress(hostText);
  if (!ip) return undefined;
  const port = portText === undefined ? servicePort : parsePort(Number(portText));
  if (!port) return undefined;
  return { kind: "forward", ip, port };
}
