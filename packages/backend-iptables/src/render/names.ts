import { createHash } from "node:crypto";
import type { IpFamily } from "@knockport/protocol";
import { HTTPS_SET_V4, HTTPS_SET_V6, InvalidValueError, setFamily } from "@knockport/firewall";

// The names the iptables backend gives its objects in the kernel: its chains and the jumps to them,
// its ipsets and its hashlimit tables.

/** Our chains, per table. A chain declared in an `iptables-restore --noflush` file is flushed first. */
export const IPT_CHAINS = {
  raw: { PREROUTING: "KNOCKPORT-PREROUTING", OUTPUT: "KNOCKPORT-OUTPUT" },
  /** The guard before DNAT (guard.ts): mangle runs before nat, where Docker and the others DNAT. */
  mangle: { PREROUTING: "KNOCKPORT-PREROUTING" },
  filter: { INPUT: "KNOCKPORT-INPUT", OUTPUT: "KNOCKPORT-OUTPUT", FORWARD: "KNOCKPORT-FORWARD" },
  nat: { PREROUTING: "KNOCKPORT-PREROUTING", POSTROUTING: "KNOCKPORT-POSTROUTING" },
} as const;

export type IptTable = keyof typeof IPT_CHAINS;

/** One jump from a built-in chain to ours, inserted at position 1 (before the host's own rules). */
export interface IptJump {
  readonly table: IptTable;
  readonly builtin: string;
  /** The rule without `-A/-I/-C/-D <chain>`: `-m comment --comment "…" -j KNOCKPORT-…`. */
  readonly spec: readonly string[];
}

export const IPT_JUMP_COMMENT = "KnockPort: jump to its own chain";

/** Every jump we install, in every family (both iptables and ip6tables). */
export function iptablesJumps(): IptJump[] {
  const out: IptJump[] = [];
  for (const table of Object.keys(IPT_CHAINS) as IptTable[]) {
    for (const [builtin, chain] of Object.entries(IPT_CHAINS[table])) {
      out.push({ table, builtin, spec: ["-m", "comment", "--comment", IPT_JUMP_COMMENT, "-j", chain] });
    }
  }
  return out;
}

/** ipset names are limited to 31 characters; ours start with `kp-` and end with `-v4` / `-v6`. */
export const IPSET_NAME_MAX = 31;
const IPSET_PATTERN = /^kp-[A-Za-z0-9_-]{1,24}-v[46]$/;

/**
 * ipset name of one of our logical sets (`https_v4`, `svc_<app>_v6`, as the helper names them):
 * `kp-https-v4`, and `kp-<first 14 characters of the app name>-<8 hex of sha256(app name)>-v6`
 * (at most 3 + 14 + 1 + 8 + 3 = 29 characters). The hash keeps the mapping injective for names that
 * share their first 14 characters or differ only in case; the prefix keeps `ipset list` readable.
 */
export function ipsetName(logical: string): string {
  const family = setFamily(String(logical));
  if (family === undefined) throw new InvalidValueError("set name", `${JSON.stringify(String(logical).slice(0, 40))} is not a KnockPort set`);
  if (logical === HTTPS_SET_V4 || logical === HTTPS_SET_V6) return `kp-https-v${family}`;
  const app = logical.slice("svc_".length, -"_v4".length);
  const hash = createHash("sha256").update(app, "utf8").digest("hex").slice(0, 8);
  const name = `kp-${app.slice(0, 14)}-${hash}-v${family}`;
  if (name.length > IPSET_NAME_MAX || !IPSET_PATTERN.test(name)) throw new InvalidValueError("ipset name", `${JSON.stringify(name)} is not valid`);
  return name;
}

/**
 * The hashlimit table of the HTTPS connection limit (`/proc/net/ipt_hashlimit/kp-https-v4`, ip6t_ for
 * IPv6): one per family, shared by the rules of every knock interface. Its entries are limiter state,
 * not leases.
 */
export function hashlimitName(family: IpFamily): string {
  return `kp-https-v${family}`;
}

/** True for names of ipsets this backend creates (for cleaning up sets of apps no longer configured). */
export function isOurIpset(name: string): boolean {
  return IPSET_PATTERN.test(name);
}

/** Name under which a set without counters is replaced (never an ipsetName: it ends in `-u`). */
export function ipsetUpgradeName(ipset: string): string {
  if (!isOurIpset(ipset)) throw new InvalidValueError("ipset name", `${JSON.stringify(String(ipset).slice(0, 40))} is not a KnockPort set`);
  return `${ipset}-u`;
}
