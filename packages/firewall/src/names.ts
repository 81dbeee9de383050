import type { IpFamily } from "@knockport/protocol";
import { checkAppName, checkFamily } from "./validate.js";

export const NFT_TABLE_FAMILY = "inet";
export const NFT_TABLE_NAME = "knockport";
/** `inet knockport`, as nft commands spell the table. */
export const NFT_TABLE = `${NFT_TABLE_FAMILY} ${NFT_TABLE_NAME}`;

/** Base chains of the table (for status and tamper checks). */
export const NFT_CHAINS = {
  /** prerouting, priority raw: `notrack` for the stealth HTTP port. */
  rawPrerouting: "raw_prerouting",
  /** output, priority raw: `notrack` for replies from the stealth HTTP port. */
  rawOutput: "raw_output",
  /** input, priority filter - 10: knock ports and service ports. */
  input: "input",
  /** output, priority filter - 10: only SYN-ACK leaves the stealth HTTP port. */
  output: "output",
  /** prerouting, priority dstnat - 10: DNAT of forwarded apps (only with forwarded apps). */
  natPrerouting: "nat_prerouting",
  /** forward, priority filter - 10: forwarded apps (only with forwarded apps). */
  forward: "forward",
  /** postrouting, priority srcnat - 10: masquerade of forwarded apps (only when one masquerades). */
  natPostrouting: "nat_postrouting",
} as const;

/** Clients that passed step 1 and may reach the HTTPS knock port. */
export const HTTPS_SET_V4 = "https_v4";
export const HTTPS_SET_V6 = "https_v6";

export function httpsSetName(family: IpFamily): string {
  return checkFamily(family) === 4 ? HTTPS_SET_V4 : HTTPS_SET_V6;
}

/**
 * `svc_<app>_v4` / `svc_<app>_v6`: clients that passed step 2 of that app.
 *
 * The app name is used verbatim. nft 1.0.6 parses set names with "-" (its identifier token is
 * `[a-zA-Z_.][a-zA-Z0-9/\-_.]*`, checked on the real binary: `svc_my-app_v4`, `svc_1-2-3_v4`,
 * `svc_x--y_v4` all load and work in `@set` references and `add element`), and set names are
 * case-sensitive (`svc_A_v4` and `svc_a_v4` coexist). App names are unique keys of the config, the
 * family suffix differs between v4 and v6 and the `svc_` prefix cannot collide with `https_*`, so the
 * mapping is deterministic and injective. Longest name: 4 + 32 + 3 = 39 characters; the kernel
 * allows 255 (NFT_SET_MAXNAMELEN). Note: ipset names are limited to 31, so an iptables backend
 * needs its own naming.
 */
export function serviceSetName(appName: string, family: IpFamily): string {
  return `svc_${checkAppName(appName)}_v${checkFamily(family)}`;
}

const OUR_SET = /^(?:https|svc_[A-Za-z0-9][A-Za-z0-9_-]{0,31})_v([46])$/;

/** The family a set of ours holds, or undefined when `name` is not one of our set names. */
export function setFamily(name: string): IpFamily | undefined {
  const m = OUR_SET.exec(name);
  if (!m) return undefined;
  return m[1] === "4" ? 4 : 6;
}
