import { APP_NAME_PATTERN, parseIpAddress, type IpAddress, type IpFamily } from "@knockport/protocol";
import { HTTP_POST_PATH_MAX_LENGTH, HTTPS_CONNECTION_LIMIT_MAX, INTERFACE_PATTERN, MAX_DURATION_SECONDS, POST_PATH_PATTERN } from "@knockport/config/firewall";
import { InvalidValueError } from "./errors.js";

// Cheap re-checks of everything that is interpolated into nft text. The config loader and the RPC
// layer already validated these; a failure here is a bug or a hand-built object, so we refuse.

const APP_NAME = new RegExp(APP_NAME_PATTERN);
const INTERFACE = new RegExp(INTERFACE_PATTERN);
const POST_PATH = new RegExp(POST_PATH_PATTERN);
/** What may appear inside a rule's comment "...": no quote, backslash or control character. */
const COMMENT = /^[\x20-\x21\x23-\x5b\x5d-\x7e]{1,128}$/;

function shown(value: unknown): string {
  const text = typeof value === "string" ? JSON.stringify(value) : String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

export function checkAppName(name: unknown): string {
  if (typeof name !== "string" || !APP_NAME.test(name)) {
    throw new InvalidValueError("app name", `${shown(name)} does not match ${APP_NAME_PATTERN}`);
  }
  return name;
}

export function checkInterface(name: unknown): string {
  if (typeof name !== "string" || !INTERFACE.test(name)) {
    throw new InvalidValueError("interface name", `${shown(name)} does not match ${INTERFACE_PATTERN}`);
  }
  return name;
}

export function checkPort(port: unknown, what: string): number {
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidValueError(what, `${shown(port)} is not an integer 1-65535`);
  }
  return port;
}

export function checkProtocol(protocol: unknown): "tcp" | "udp" {
  if (protocol !== "tcp" && protocol !== "udp") {
    throw new InvalidValueError("protocol", `${shown(protocol)} is neither "tcp" nor "udp"`);
  }
  return protocol;
}

/** The step-1 path is a secret: never echoed. */
export function checkHttpPostPath(path: unknown): string {
  if (typeof path !== "string" || path.length < 2 || path.length > HTTP_POST_PATH_MAX_LENGTH || !POST_PATH.test(path)) {
    throw new InvalidValueError(
      "global.http_post_path",
      `must be 2-${HTTP_POST_PATH_MAX_LENGTH} characters matching ${POST_PATH_PATTERN}`,
    );
  }
  return path;
}

export function checkIp(ip: unknown): IpAddress {
  if (typeof ip !== "string" || parseIpAddress(ip) !== ip) {
    throw new InvalidValueError("IP address", `${shown(ip)} is not a normalised unicast IPv4/IPv6 address`);
  }
  return ip as IpAddress;
}

export function checkFamily(family: unknown): IpFamily {
  if (family !== 4 && family !== 6) throw new InvalidValueError("IP family", `${shown(family)} is neither 4 nor 6`);
  return family;
}

export function checkTimeout(seconds: unknown): number {
  if (typeof seconds !== "number" || !Number.isInteger(seconds) || seconds < 1 || seconds > MAX_DURATION_SECONDS) {
    throw new InvalidValueError("timeout", `${shown(seconds)} is not an integer number of seconds 1-${MAX_DURATION_SECONDS}`);
  }
  return seconds;
}

/** A rate or burst of the HTTPS connection limit (interpolated into nft text and iptables arguments). */
export function checkConnectionLimit(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > HTTPS_CONNECTION_LIMIT_MAX) {
    throw new InvalidValueError(what, `${shown(value)} is not an integer 1-${HTTPS_CONNECTION_LIMIT_MAX}`);
  }
  return value;
}

export function checkComment(text: string): string {
  if (!COMMENT.test(text)) throw new InvalidValueError("rule comment", `${shown(text)} is too long or holds a quote`);
  return text;
}

/**
 * A table or chain name the admin gives on the command line. Stricter than nft's own identifier
 * (`[a-zA-Z_.][a-zA-Z0-9/\-_.]*`): letters, digits, `_` and `-`, up to 64 characters.
 */
export const NFT_IDENTIFIER_PATTERN = "^[A-Za-z_][A-Za-z0-9_-]{0,63}$";
const NFT_IDENTIFIER = new RegExp(NFT_IDENTIFIER_PATTERN);

export function checkNftIdentifier(name: unknown, what: string): string {
  if (typeof name !== "string" || !NFT_IDENTIFIER.test(name)) {
    throw new InvalidValueError(what, `${shown(name)} is not a table/chain name (${NFT_IDENTIFIER_PATTERN})`);
  }
  return name;
}

/** A rule handle from nft's listing (a positive integer). */
export function checkHandle(handle: unknown): number {
  if (typeof handle !== "number" || !Number.isSafeInteger(handle) || handle < 1) {
    throw new InvalidValueError("rule handle", `${shown(handle)} is not a positive integer`);
  }
  return handle;
}
