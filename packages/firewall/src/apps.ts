import type { FirewallApp as AppConfig, FirewallConfig as KnockportConfig } from "@knockport/config/firewall";
import { ipFamily, type IpAddress, type IpFamily } from "@knockport/protocol";
import { InvalidValueError } from "./errors.js";
import { HTTPS_SET_V4, HTTPS_SET_V6, serviceSetName } from "./names.js";
import { checkIp, checkPort } from "./validate.js";

/** Names of every set `renderNftRuleset(config)` defines, in rendering order. */
export function rulesetSetNames(config: KnockportConfig): string[] {
  return [HTTPS_SET_V4, HTTPS_SET_V6, ...allApps(config).flatMap((a) => [serviceSetName(a.name, 4), serviceSetName(a.name, 6)])];
}

/** An app whose service runs on a LAN host: DNAT from interface_ext, forward, optional masquerade. */
export interface ForwardedApp {
  readonly app: AppConfig;
  readonly ip: IpAddress;
  readonly family: IpFamily;
  readonly port: number;
}

/** The forwarded apps of `config` with their re-checked destination. */
export function forwardedApps(config: KnockportConfig): ForwardedApp[] {
  const out: ForwardedApp[] = [];
  for (const app of config.apps) {
    const d = app.destination;
    if (d.kind !== "forward") continue;
    const ip = checkIp(d.ip);
    out.push({ app, ip, family: ipFamily(ip), port: checkPort(d.port, `${app.name}.destination port`) });
  }
  return out;
}

export function allApps(config: KnockportConfig): AppConfig[] {
  const seen = new Set<string>();
  for (const a of config.apps) {
    if (seen.has(a.name)) throw new InvalidValueError("app name", `${JSON.stringify(a.name)} appears twice; set names would collide`);
    seen.add(a.name);
  }
  return [...config.apps];
}
