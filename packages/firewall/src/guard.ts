import type { FirewallApp as AppConfig } from "@knockport/config/firewall";
import type { IpFamily } from "@knockport/protocol";
import { serviceSetName } from "./names.js";

// The guard before DNAT. Docker, Podman, libvirt and kube-proxy publish a port by DNAT in prerouting, and
// the packet then never reaches an input chain; so every app's public port is also guarded in prerouting,
// by its original destination: on its interface_ext a packet from an address without a lease is dropped,
// whoever serves or DNATs the port. The lookups are negated, so a lease's counter still counts its packets
// once, where they are accepted; only `ct direction original` is dropped (replies to this host's own
// connections are nobody's access to the app).

/** nftables: before `dstnat` (-100: Docker and the others) and our nat_prerouting (dstnat - 10), after conntrack. */
export const GUARD_PRIORITY = "dstnat - 20";

export function guardComment(app: AppConfig, family: IpFamily): string {
  return `app ${app.name} ${app.protocol}/${app.port}: IPv${family} clients without a lease, before any DNAT`;
}

/** The guard_prerouting rules of one app (`setRef` places a logical set name in the table). */
export function renderNftGuardRules(app: AppConfig, setRef: (logical: string) => string): string[] {
  const head = `iifname "${app.interfaceExt}" ${app.protocol} dport ${app.port} ct direction original`;
  return ([4, 6] as const).map((f) => `${head} ${f === 4 ? "ip" : "ip6"} saddr != ${setRef(serviceSetName(app.name, f))} counter drop comment "${guardComment(app, f)}"`);
}
