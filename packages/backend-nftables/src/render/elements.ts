import { ipFamily, type IpAddress } from "@knockport/protocol";
import { InvalidValueError, OWN_TABLE, checkIp, checkTimeout, placedName, setFamily, type GrantTarget, type NftPlacement, type SetElement } from "@knockport/firewall";

function checked(target: SetElement, placement: NftPlacement): { set: string; ip: IpAddress } {
  const ip = checkIp(target.ip);
  const family = setFamily(String(target.set));
  if (family === undefined) throw new InvalidValueError("set name", `${JSON.stringify(String(target.set).slice(0, 40))} is not a KnockPort set`);
  if (family !== ipFamily(ip)) throw new InvalidValueError("set element", `${ip} is IPv${ipFamily(ip)} but set ${target.set} holds IPv${family}`);
  return { set: placedName(placement, target.set), ip };
}

/** `add element <table> <set> { <ip> timeout <n>s }`, no newline; `target.set` is the logical name. */
export function renderAddElement(target: GrantTarget, placement: NftPlacement = OWN_TABLE): string {
  const { set, ip } = checked(target, placement);
  return `add element ${placement.table} ${set} { ${ip} timeout ${checkTimeout(target.timeoutSeconds)}s }`;
}

/**
 * Grant or refresh: afterwards the set holds `ip` once, expiring `timeoutSeconds` from now. One line of
 * `;`-separated commands is one transaction both in `nft -f -` and in a long-lived `nft -i`. Every add
 * carries the timeout: an `add element` of an existing element replaces its timeout (nft 1.0.6, kernel
 * 6.18), and one without would make it permanent, fail-open, were a batch ever split.
 */
export function renderNftGrant(target: GrantTarget, placement: NftPlacement = OWN_TABLE): string {
  const { set, ip } = checked(target, placement);
  const add = renderAddElement(target, placement);
  return `${add}; delete element ${placement.table} ${set} { ${ip} }; ${add}\n`;
}

/** Revoke, one transaction: the placeholder add makes the delete succeed whether or not `ip` was there. */
export function renderNftRevoke(target: SetElement, placement: NftPlacement = OWN_TABLE): string {
  const { set, ip } = checked(target, placement);
  return `add element ${placement.table} ${set} { ${ip} timeout 1s }; delete element ${placement.table} ${set} { ${ip} }\n`;
}
