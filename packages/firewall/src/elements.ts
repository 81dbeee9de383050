import type { FirewallApp as AppConfig, FirewallConfig as KnockportConfig } from "@knockport/config/firewall";
import { ipFamily, type IpAddress } from "@knockport/protocol";
import { FirewallError, InvalidValueError } from "./errors.js";
import { httpsSetName, OWN_TABLE, placedName, serviceSetName, setFamily, type NftPlacement } from "./names.js";
import { checkIp, checkTimeout } from "./validate.js";

/** One client address in one of our sets. */
export interface SetElement {
  /** One of our set names: `https_v4|6` or `svc_<app>_v4|6`; its family must match `ip`. */
  readonly set: string;
  readonly ip: IpAddress;
}

/** A timed grant: the kernel removes the element after `timeoutSeconds`. */
export interface GrantTarget extends SetElement {
  /** Whole seconds, 1 to 366 days. */
  readonly timeoutSeconds: number;
}

/** Timeout of the element a revoke adds just before deleting it (only matters if the delete were lost). */
const REVOKE_PLACEHOLDER_TIMEOUT = "1s";

/** Re-check a target and return the pieces to interpolate. */
function checked(target: SetElement, placement: NftPlacement): { set: string; ip: IpAddress } {
  const ip = checkIp(target.ip);
  const family = setFamily(String(target.set));
  if (family === undefined) {
    throw new InvalidValueError("set name", `${JSON.stringify(String(target.set).slice(0, 40))} is not a KnockPort set`);
  }
  if (family !== ipFamily(ip)) {
    throw new InvalidValueError("set element", `${ip} is IPv${ipFamily(ip)} but set ${target.set} holds IPv${family}`);
  }
  return { set: placedName(placement, target.set), ip };
}

/**
 * `add element inet knockport <set> { <ip> timeout <n>s }` without a newline. `target.set` is the
 * logical set name (`https_v4`); `placement` (custom tables) decides table and prefix.
 */
export function renderAddElement(target: GrantTarget, placement: NftPlacement = OWN_TABLE): string {
  const { set, ip } = checked(target, placement);
  return `add element ${placement.table} ${set} { ${ip} timeout ${checkTimeout(target.timeoutSeconds)}s }`;
}

/**
 * Grant or refresh: after this batch the set holds `ip` exactly once, expiring `timeoutSeconds` from now,
 * whether or not it was there before. `add` (no error if present) + `delete` + `add … timeout`.
 *
 * One line, commands separated by ";": nft runs one input buffer as one transaction, so this is atomic
 * both through `nft -f -` and as one line written to a long-lived `nft -i` (which takes each line as its
 * own buffer). Checked on nft 1.0.6 / kernel 6.18: a failing last command leaves the set untouched.
 * Every add carries the timeout: on this kernel an `add element` of an existing element REPLACES its
 * timeout, and an add without one would make it permanent (fail-open if a batch were ever split).
 */
export function renderNftGrant(target: GrantTarget, placement: NftPlacement = OWN_TABLE): string {
  const { set, ip } = checked(target, placement);
  const add = renderAddElement(target, placement);
  return `${add}; delete element ${placement.table} ${set} { ${ip} }; ${add}\n`;
}

/** Revoke: after this batch `ip` is not in the set, whether or not it was before. One transaction. */
export function renderNftRevoke(target: SetElement, placement: NftPlacement = OWN_TABLE): string {
  const { set, ip } = checked(target, placement);
  return (
    `add element ${placement.table} ${set} { ${ip} timeout ${REVOKE_PLACEHOLDER_TIMEOUT} }; ` +
    `delete element ${placement.table} ${set} { ${ip} }\n`
  );
}

function findAppOf(config: KnockportConfig, app: AppConfig | string): AppConfig {
  const name = typeof app === "string" ? app : app.name;
  const found = config.apps.find((a) => a.name === name);
  if (!found) throw new FirewallError("UNKNOWN_APP", `no app ${JSON.stringify(name.slice(0, 40))} in ${config.file}`);
  return found;
}

/** Step 1 passed: `ip` may reach the HTTPS knock port for the app's `step2_https_duration`. */
export function step1Target(config: KnockportConfig, app: AppConfig | string, ip: IpAddress): GrantTarget {
  const a = findAppOf(config, app);
  const checkedIp = checkIp(ip);
  return { set: httpsSetName(ipFamily(checkedIp)), ip: checkedIp, timeoutSeconds: a.step2HttpsDurationSeconds };
}

/** Step 2 passed: `ip` may reach the app's service port for the app's `duration`. */
export function step2Target(config: KnockportConfig, app: AppConfig | string, ip: IpAddress): GrantTarget {
  const a = findAppOf(config, app);
  const checkedIp = checkIp(ip);
  return { set: serviceSetName(a.name, ipFamily(checkedIp)), ip: checkedIp, timeoutSeconds: a.durationSeconds };
}
