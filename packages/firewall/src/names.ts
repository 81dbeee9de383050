import type { IpFamily } from "@knockport/protocol";
import { InvalidValueError } from "./errors.js";
import { checkAppName, checkFamily, checkNftIdentifier } from "./validate.js";
export { NFT_IDENTIFIER_PATTERN } from "./validate.js";

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
  /**
   * prerouting, priority dstnat - 20: every app's public port by its original destination, before any
   * DNAT (ours, Docker's, Podman's, libvirt's, kube-proxy's), so a port someone else forwards is closed too.
   */
  guard: "guard_prerouting",
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

/**
 * Per-address meters of NEW connections to the HTTPS knock port (nftables dynamic sets, filled by the
 * packet path). Their elements are rate-limiter state, not leases: `setFamily` does not know these
 * names, so the lease/element walks skip them.
 */
export const HTTPS_METER_V4 = "https_meter_v4";
export const HTTPS_METER_V6 = "https_meter_v6";

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

/**
 * Custom tables and chains (`--nftables-table-filter`): every object KnockPort adds to the admin's
 * table carries this prefix (sets, its own chains, the session's sync set), so it never touches a name
 * of the admin's and uninstall can name exactly what is ours. Admin tables/chains may not use it.
 */
export const CUSTOM_PREFIX = "knockport_";

/** The comment of each jump rule KnockPort inserts into an admin's base chain: how it finds its jumps again. */
export const CUSTOM_JUMP_COMMENT = "KnockPort: jump to its own rules, managed by knockport-helper";

/** The admin's table and base chains KnockPort hooks into instead of owning `table inet knockport`. */
export interface CustomChains {
  /** Name of an existing `inet` table (`--nftables-table-filter`). */
  readonly table: string;
  /** Its base chain hooked at input (`--nftables-chain-input`): gets the jump to `knockport_input`. */
  readonly input: string;
  /** Its base chain hooked at forward (`--nftables-chain-forward`): gets the jump to `knockport_forward` (forwarded apps only). */
  readonly forward: string;
  /** Its base chain hooked at output (`--nftables-chain-output`); absent: `knockport_output` is a base chain of ours. */
  readonly output?: string | undefined;
}

/** Where KnockPort's sets and chains live: its own table, or (custom) prefixed inside the admin's. */
export interface NftPlacement {
  /** `inet knockport` or `inet <admin table>`, as nft commands spell it. */
  readonly table: string;
  /** "" in our own table, CUSTOM_PREFIX in the admin's. */
  readonly prefix: string;
  readonly custom: CustomChains | undefined;
}

export const OWN_TABLE: NftPlacement = { table: NFT_TABLE, prefix: "", custom: undefined };

/** The placement for `custom` (re-checked: every name is interpolated into nft text), or OWN_TABLE. */
export function nftPlacement(custom: CustomChains | undefined): NftPlacement {
  if (custom === undefined) return OWN_TABLE;
  const checked: CustomChains = {
    table: checkAdminName(custom.table, "--nftables-table-filter"),
    input: checkAdminName(custom.input, "--nftables-chain-input"),
    forward: checkAdminName(custom.forward, "--nftables-chain-forward"),
    output: custom.output === undefined ? undefined : checkAdminName(custom.output, "--nftables-chain-output"),
  };
  return { table: `${NFT_TABLE_FAMILY} ${checked.table}`, prefix: CUSTOM_PREFIX, custom: checked };
}

function checkAdminName(name: string, what: string): string {
  const n = checkNftIdentifier(name, what);
  if (n.startsWith(CUSTOM_PREFIX)) throw new InvalidValueError(what, `names starting with ${CUSTOM_PREFIX} are KnockPort's own`);
  return n;
}

const PLACED_TABLE = /^inet [A-Za-z_][A-Za-z0-9_-]{0,63}$/;

/** Re-check a placement that may have been built by hand (its table is interpolated into nft text). */
export function checkPlacement(placement: NftPlacement): NftPlacement {
  const ok =
    placement.custom === undefined
      ? placement.table === NFT_TABLE && placement.prefix === ""
      : PLACED_TABLE.test(placement.table) && placement.prefix === CUSTOM_PREFIX && placement.table === `${NFT_TABLE_FAMILY} ${placement.custom.table}`;
  if (!ok) throw new InvalidValueError("nftables placement", `${JSON.stringify(placement.table).slice(0, 80)} is not KnockPort's table or a checked custom table`);
  return placement;
}

/** The kernel name of one of our sets or chains under `placement`. */
export function placedName(placement: NftPlacement, name: string): string {
  return `${checkPlacement(placement).prefix}${name}`;
}

/**
 * The set in which knockport-helper's long-lived nft session marks each transaction it applied (one
 * element, replaced every time; see apps/helper/src/nft-session.ts). Part of the ruleset, so the session
 * never has to create anything.
 */
export function syncSetName(placement: NftPlacement): string {
  return checkPlacement(placement).custom === undefined ? "kp_sync" : `${CUSTOM_PREFIX}sync`;
}

/** Every set name ours in an admin's table: `knockport_https_v4|6`, `knockport_https_meter_v4|6`, `knockport_svc_<app>_v4|6`, the session's `knockport_sync`. */
const OUR_CUSTOM_SET = /^knockport_(?:(?:https|https_meter|svc_[A-Za-z0-9][A-Za-z0-9_-]{0,31})_v[46]|sync)$/;
export function isOurCustomSet(name: string): boolean {
  return OUR_CUSTOM_SET.test(name);
}

/** Every chain name ours in an admin's table (the NFT_CHAINS names, prefixed). */
export function isOurCustomChain(name: string): boolean {
  return Object.values(NFT_CHAINS).some((c) => `${CUSTOM_PREFIX}${c}` === name);
}
