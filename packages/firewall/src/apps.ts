import type { FirewallApp as AppConfig, FirewallConfig as KnockportConfig } from "@knockport/config/firewall";
import { ipFamily, type IpAddress, type IpFamily } from "@knockport/protocol";
import { HTTPS_SET_V4, HTTPS_SET_V6, serviceSetName } from "./names.js";

/** Names of every set `renderNftRuleset(config)` defines, in rendering order. */
export function rulesetSetNames(config: KnockportConfig): string[] {
  return [HTTPS_SET_V4, HTTPS_SET_V6, ...config.apps.flatMap((a) => [serviceSetName(a.name, 4), serviceSetName(a.name, 6)])];
}

/** An app whose service runs on a LAN host: DNAT from interface_ext, forward, optional masquerade. */
export interface ForwardedApp {
  readonly app: AppConfig;
  readonly ip: IpAddress;
  readonly family: IpFamily;
  readonly port: number;
}

export function forwardedApps(config: KnockportConfig): ForwardedApp[] {
  const out: ForwardedApp[] = [];
  for (const app of config.apps) {
    if (app.destination.kind === "forward") out.push({ app, ip: app.destination.ip, family: ipFamily(app.destination.ip), port: app.destination.port });
  }
  return out;
}
