import type { FirewallApp as AppConfig } from "@knockport/config/firewall";
import type { IpFamily } from "@knockport/protocol";
import { serviceSetName } from "./names.js";
import { checkComment, checkInterface, checkPort, checkProtocol } from "./validate.js";

// The guard before DNAT. Docker, Podman, libvirt and kube-proxy publish a port by DNAT in prerouting;
// the packet then takes the forward path and never reaches an input chain. So every app's public port
// is also guarded in prerouting, by its original destination, before any DNAT: on the app's
// interface_ext, a packet from an address without a lease is dropped whether the port is served here,
// DNATed by us or DNATed by someone else - with no configuration saying which.
//
// The lookups are negated: a negated lookup never updates an element's counter (nft) and `!
// --update-counters` keeps ipset's untouched, so a lease still counts its packets once, where they are
// accepted (input, forward). Replies to connections made from this host or its LAN (a source port that
// is the app's port after SNAT) are nobody's access to the app: only `ct direction original` is dropped.

/** nftables: before `dstnat` (-100: Docker, Podman, libvirt, kube-proxy) and our nat_prerouting (dstnat - 10); after conntrack (-200). */
export const GUARD_PRIORITY = "dstnat - 20";

function what(app: AppConfig): string {
  return `app ${app.name} ${checkProtocol(app.protocol)}/${checkPort(app.port, `${app.name}.port`)}`;
}

function guardComment(app: AppConfig, family: IpFamily): string {
  return checkComment(`${what(app)}: IPv${family} clients without a lease, before any DNAT`);
}

/** The guard_prerouting rules of one app (`setRef` places a logical set name in the table). */
export function renderNftGuardRules(app: AppConfig, setRef: (logical: string) => string): string[] {
  const iif = `iifname "${checkInterface(app.interfaceExt)}"`;
  const svc = `${checkProtocol(app.protocol)} dport ${checkPort(app.port, `${app.name}.port`)}`;
  return ([4, 6] as const).map(
    (family) =>
      `${iif} ${svc} ct direction original ${family === 4 ? "ip" : "ip6"} saddr != ${setRef(serviceSetName(app.name, family))} counter drop comment "${guardComment(app, family)}"`,
  );
}

/** The mangle KNOCKPORT-PREROUTING rule of one app in one family (`ipset`: the app's ipset of that family). */
export function renderIptablesGuardRule(app: AppConfig, family: IpFamily, ipset: string): string[] {
  return [
    "-i", checkInterface(app.interfaceExt), "-p", checkProtocol(app.protocol), "--dport", `${checkPort(app.port, `${app.name}.port`)}`,
    "-m", "conntrack", "--ctdir", "ORIGINAL",
    "-m", "set", "!", "--match-set", ipset, "src", "!", "--update-counters",
    "-m", "comment", "--comment", `"${guardComment(app, family)}"`,
    "-j", "DROP",
  ];
}
