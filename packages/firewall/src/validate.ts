import { APP_NAME_PATTERN, parseIpAddress, type IpAddress, type IpFamily } from "@knockport/protocol";
import { HTTP_POST_PATH_MAX_LENGTH, HTTPS_CONNECTION_LIMIT_MAX, INTERFACE_PATTERN, MAX_DURATION_SECONDS, POST_PATH_PATTERN } from "@knockport/config/firewall";
import { InvalidValueError } from "./errors.js";

// Cheap re-checks of everything interpolated into firewall rules. The config loader and the RPC layer
// validated these already: a failure here is a bug or a hand-built object, so the rule is refused.

const APP_NAME = new RegExp(APP_NAME_PATTERN);
const INTERFACE = new RegExp(INTERFACE_PATTERN);
const POST_PATH = new RegExp(POST_PATH_PATTERN);
/** Inside a rule's comment "...": no quote, backslash or control character. */
const COMMENT = /^[\x20-\x21\x23-\x5b\x5d-\x7e]{1,128}$/;
/** A table or chain name from the command line: stricter than nft's identifier. */
export const NFT_IDENTIFIER_PATTERN = "^[A-Za-z_][A-Za-z0-9_-]{0,63}$";
const NFT_IDENTIFIER = new RegExp(NFT_IDENTIFIER_PATTERN);

function shown(value: unknown): string {
  const text = typeof value === "string" ? JSON.stringify(value) : String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function matching(value: unknown, pattern: RegExp, what: string, rule: string): string {
  if (typeof value !== "string" || !pattern.test(value)) throw new InvalidValueError(what, `${shown(value)} ${rule}`);
  return value;
}

function integer(value: unknown, min: number, max: number, what: string, rule: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) throw new InvalidValueError(what, `${shown(value)} ${rule}`);
  return value;
}

export const checkAppName = (name: unknown): string => matching(name, APP_NAME, "app name", `does not match ${APP_NAME_PATTERN}`);
export const checkInterface = (name: unknown): string => matching(name, INTERFACE, "interface name", `does not match ${INTERFACE_PATTERN}`);
export const checkPort = (port: unknown, what: string): number => integer(port, 1, 65535, what, "is not an integer 1-65535");
export const checkTimeout = (seconds: unknown): number =>
  integer(seconds, 1, MAX_DURATION_SECONDS, "timeout", `is not an integer number of seconds 1-${MAX_DURATION_SECONDS}`);
/** A rate or burst of the HTTPS connection limit. */
export const checkConnectionLimit = (value: unknown, what: string): number => integer(value, 1, HTTPS_CONNECTION_LIMIT_MAX, what, `is not an integer 1-${HTTPS_CONNECTION_LIMIT_MAX}`);
/** A rule handle from nft's listing. */
export const checkHandle = (handle: unknown): number => integer(handle, 1, Number.MAX_SAFE_INTEGER, "rule handle", "is not a positive integer");
export const checkNftIdentifier = (name: unknown, what: string): string => matching(name, NFT_IDENTIFIER, what, `is not a table/chain name (${NFT_IDENTIFIER_PATTERN})`);
export const checkComment = (text: string): string => matching(text, COMMENT, "rule comment", "is too long or holds a quote");

export function checkProtocol(protocol: unknown): "tcp" | "udp" {
  if (protocol !== "tcp" && protocol !== "udp") throw new InvalidValueError("protocol", `${shown(protocol)} is neither "tcp" nor "udp"`);
  return protocol;
}

/** The step-1 path is a secret: never echoed. */
export function checkHttpPostPath(path: unknown): string {
  if (typeof path !== "string" || path.length < 2 || path.length > HTTP_POST_PATH_MAX_LENGTH || !POST_PATH.test(path)) {
    throw new InvalidValueError("global.http_post_path", `must be 2-${HTTP_POST_PATH_MAX_LENGTH} characters matching ${POST_PATH_PATTERN}`);
  }
  return path;
}

export function checkIp(ip: unknown): IpAddress {
  if (typeof ip !== "string" || parseIpAddress(ip) !== ip) throw new InvalidValueError("IP address", `${shown(ip)} is not a normalised unicast IPv4/IPv6 address`);
  return ip as IpAddress;
}

export function checkFamily(family: unknown): IpFamily {
  if (family !== 4 && family !== 6) throw new InvalidValueError("IP family", `${shown(family)} is neither 4 nor 6`);
  return family;
}
