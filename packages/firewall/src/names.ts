import type { IpFamily } from "@knockport/protocol";

export const NFT_TABLE_FAMILY = "inet";
export const NFT_TABLE_NAME = "knockport";
export const NFT_TABLE = `${NFT_TABLE_FAMILY} ${NFT_TABLE_NAME}`;

/** Chains of the nftables ruleset (logical names; `knockport_`-prefixed in an admin's table). */
export const NFT_CHAINS = {
  rawPrerouting: "raw_prerouting",
  rawOutput: "raw_output",
  /** prerouting, dstnat - 20: every app's port by its original destination, before anyone's DNAT (Docker, libvirt, ...). */
  guard: "guard_prerouting",
  input: "input",
  output: "output",
  natPrerouting: "nat_prerouting",
  forward: "forward",
  natPostrouting: "nat_postrouting",
} as const;

/** Clients that passed step 1 and may reach the HTTPS knock port. */
export const HTTPS_SET_V4 = "https_v4";
export const HTTPS_SET_V6 = "https_v6";
/** Per-address meters of new HTTPS connections: limiter state, not leases (setFamily does not know them). */
export const HTTPS_METER_V4 = "https_meter_v4";
export const HTTPS_METER_V6 = "https_meter_v6";

export function httpsSetName(family: IpFamily): string {
  return family === 4 ? HTTPS_SET_V4 : HTTPS_SET_V6;
}

/**
 * `svc_<app>_v4|6`, the app name verbatim: app names are unique keys matching APP_NAME_PATTERN, which nft
 * takes in set names (checked on nft 1.0.6: `svc_my-app_v4`, `svc_1-2-3_v4`; case-sensitive), and the
 * prefix and suffix keep it injective. At most 39 characters (the kernel allows 255; ipset 31, hence its own names).
 */
export function serviceSetName(appName: string, family: IpFamily): string {
  return `svc_${appName}_v${family}`;
}

const OUR_SET = /^(?:https|svc_[A-Za-z0-9][A-Za-z0-9_-]{0,31})_v([46])$/;

/** The family a set of ours holds; undefined for any other name. */
export function setFamily(name: string): IpFamily | undefined {
  const m = OUR_SET.exec(name);
  return m ? (m[1] === "4" ? 4 : 6) : undefined;
}

/** Custom tables (`--nftables-table-filter`): everything of ours in the admin's table carries this prefix, which admin names may not. */
export const CUSTOM_PREFIX = "knockport_";

/** The comment of each jump KnockPort inserts into an admin's base chain: how it finds its jumps again. */
export const CUSTOM_JUMP_COMMENT = "KnockPort: jump to its own rules, managed by knockport-helper";

/** The admin's inet table and the base chains that jump to ours; `output` absent: ours is a base chain. */
export interface CustomChains {
  readonly table: string;
  readonly input: string;
  readonly forward: string;
  readonly output?: string | undefined;
}

/** Where our sets and chains live: our own table, or prefixed inside the admin's (`custom`). */
export interface NftPlacement {
  /** As nft commands spell it: `inet knockport`, `inet <admin table>`. */
  readonly table: string;
  readonly prefix: string;
  readonly custom: CustomChains | undefined;
}

export const OWN_TABLE: NftPlacement = { table: NFT_TABLE, prefix: "", custom: undefined };

/** Where `custom` puts our objects; its names were checked with the flags that give them (parseBackendFlags). */
export function nftPlacement(custom: CustomChains | undefined): NftPlacement {
  return custom === undefined ? OWN_TABLE : { table: `${NFT_TABLE_FAMILY} ${custom.table}`, prefix: CUSTOM_PREFIX, custom };
}

/** The kernel name of one of our sets or chains. */
export function placedName(placement: NftPlacement, name: string): string {
  return `${placement.prefix}${name}`;
}

/** The set the helper's nft session marks each applied transaction in (runtime/session.ts); part of the ruleset. */
export function syncSetName(placement: NftPlacement): string {
  return placement.custom === undefined ? "kp_sync" : `${CUSTOM_PREFIX}sync`;
}

const OUR_CUSTOM_SET = /^knockport_(?:(?:https|https_meter|svc_[A-Za-z0-9][A-Za-z0-9_-]{0,31})_v[46]|sync)$/;
export function isOurCustomSet(name: string): boolean {
  return OUR_CUSTOM_SET.test(name);
}

export function isOurCustomChain(name: string): boolean {
  return Object.values(NFT_CHAINS).some((c) => `${CUSTOM_PREFIX}${c}` === name);
}
