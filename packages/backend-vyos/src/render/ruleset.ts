import { publicHttpPort, publicHttpsPort, type FirewallConfig as KnockportConfig } from "@knockport/config/firewall";
import { InvalidValueError, forwardedApps } from "@knockport/firewall";

// VyOS backend. Everything that decides who gets in stays in our own `table inet knockport` (the
// nftables backend's table, untouched by VyOS). VyOS's own input / forward filters, though, end in its
// default action (usually drop), and an accept in our table does not override a drop in theirs. So, as
// the original does, we get named chains from VyOS (`set firewall ipv4 name IN-KnockPort`, which VyOS
// renders as chain `NAME_IN-KnockPort` in `ip vyos_filter`, jumped to by input rule 9999) and put into
// them accepts for exactly our ports: our table, earlier in the hook (priority filter - 10), has already
// dropped everyone not allowed on them. A VyOS commit re-renders `vyos_filter` and wipes those
// accepts; the helper's self-heal puts them back. Our leases are never in VyOS's tables, so they survive.

/** VyOS firewall names (as in `set firewall ipv4 name <NAME>`) and the nft chains VyOS renders for them. */
export const VYOS_NAMES = { input: "IN-KnockPort", forward: "FWD-KnockPort" } as const;
export const VYOS_RULE_NUMBER = 9999;
/** Description of our named chains in VyOS's configuration. */
export const VYOS_DESCRIPTION = "KnockPort (rules managed by knockport-helper)";

export interface VyosChain {
  /** `ip` or `ip6`. */
  readonly family: "ip" | "ip6";
  readonly table: "vyos_filter";
  /** `NAME_IN-KnockPort`, `NAME6_IN-KnockPort`, ... */
  readonly chain: string;
  /** Rules (without `insert rule …`), in order. */
  readonly rules: readonly string[];
}

export const VYOS_RULE_COMMENT = "KnockPort: its own table already filtered these";

function comment(): string {
  return `comment "${VYOS_RULE_COMMENT}"`;
}

/**
 * The chains we fill inside VyOS's tables, with their rules. Every accept names the interface our
 * table filters (interface_ext, per app where set): on any other interface our table drops nothing,
 * so an accept there would open the port to everyone behind it (the LAN included).
 */
export function vyosChains(config: KnockportConfig): VyosChain[] {
  // WAF mode: clients reach nginx's public ports; KnockPort's own ports are dropped in our table.
  const knockPorts = [publicHttpPort(config), publicHttpsPort(config)];
  const byIface = new Map<string, { tcp: Set<number>; udp: Set<number> }>();
  const portsOn = (iface: string): { tcp: Set<number>; udp: Set<number> } => {
    let p = byIface.get(iface);
    if (!p) byIface.set(iface, (p = { tcp: new Set(knockPorts), udp: new Set() }));
    return p;
  };
  portsOn(config.global.interfaceExt);
  for (const app of config.apps) {
    const p = portsOn(app.interfaceExt); // the knock ports are open on every app's interface, as in our table
    if (app.destination.kind !== "local") continue;
    p[app.protocol].add(app.port);
  }
  const ports = (s: Set<number>): string => `{ ${[...s].sort((a, b) => a - b).join(", ")} }`;
  const input: string[] = [];
  for (const [iface, p] of byIface) {
    input.push(`iifname "${iface}" tcp dport ${ports(p.tcp)} accept ${comment()}`);
    if (p.udp.size > 0) input.push(`iifname "${iface}" udp dport ${ports(p.udp)} accept ${comment()}`);
  }
  if (config.waf) {
    // nginx reaches KnockPort's own ports over loopback; VyOS's input filter would drop that too
    const own = new Set<number>([config.httpPort, config.httpsPort]);
    input.push(`iifname "lo" tcp dport ${ports(own)} accept ${comment()}`);
  }
  const out: VyosChain[] = [];
  for (const family of ["ip", "ip6"] as const) {
    out.push({ family, table: "vyos_filter", chain: `${family === "ip" ? "NAME" : "NAME6"}_${VYOS_NAMES.input}`, rules: input });
    const fwd = forwardedApps(config).filter((f) => (f.family === 4) === (family === "ip"));
    if (fwd.length > 0) {
      out.push({
        family,
        table: "vyos_filter",
        chain: `${family === "ip" ? "NAME" : "NAME6"}_${VYOS_NAMES.forward}`,
        rules: fwd.map((f) => `iifname "${f.app.interfaceExt}" ${family} daddr ${f.ip} ${f.app.protocol} dport ${f.port} accept ${comment()}`),
      });
    }
  }
  return out;
}

/**
 * `nft -f` script that (re)fills our VyOS chains: flush, then the accepts, then VyOS's own `return`
 * (the default-action of a named chain) is gone with the flush, so we add it back last. Fails (and
 * changes nothing: one transaction) when VyOS has not created the chains yet.
 */
export function renderVyosChains(config: KnockportConfig): string {
  const lines: string[] = [];
  for (const c of vyosChains(config)) {
    if (!/^NAME6?_(IN|FWD)-KnockPort$/.test(c.chain)) throw new InvalidValueError("VyOS chain", c.chain);
    lines.push(`flush chain ${c.family} ${c.table} ${c.chain}`);
    for (const r of c.rules) lines.push(`add rule ${c.family} ${c.table} ${c.chain} ${r}`);
    lines.push(`add rule ${c.family} ${c.table} ${c.chain} return comment "KnockPort: back to the VyOS filter (default-action return)"`);
  }
  return `${lines.join("\n")}\n`;
}

/**
 * The VyOS configuration commands that create the named chains and the jumps to them (rule 9999 of
 * the input filter and, with forwarded apps, of the forward filter), for IPv4 and IPv6; run by
 * `vbash` in configuration mode, or printed for the admin under --use-sudo. Nothing is `save`d: the
 * admin saves when satisfied (VyOS forgets unsaved config at reboot).
 */
export function renderVyosBootstrap(config: KnockportConfig): string {
  const lines = ["configure"];
  const forwarding = forwardedApps(config).length > 0;
  for (const fam of ["ipv4", "ipv6"] as const) {
    const hooks: Array<["input" | "forward", string]> = [["input", VYOS_NAMES.input], ...(forwarding ? ([["forward", VYOS_NAMES.forward]] as Array<["forward", string]>) : [])];
    for (const [hook, name] of hooks) {
      lines.push(
        `set firewall ${fam} name ${name} default-action 'return'`,
        `set firewall ${fam} name ${name} description '${VYOS_DESCRIPTION}'`,
        `set firewall ${fam} ${hook} filter rule ${VYOS_RULE_NUMBER} action 'jump'`,
        `set firewall ${fam} ${hook} filter rule ${VYOS_RULE_NUMBER} jump-target '${name}'`,
      );
    }
  }
  lines.push("commit", "exit");
  return `${lines.join("\n")}\n`;
}

/**
 * VyOS commands that make VyOS re-render its firewall tables without changing its configuration: the
 * description of our input chains is removed and committed, then set again and committed. For when
 * `vyos_filter` was deleted behind VyOS's back (`nft flush ruleset`): re-running the bootstrap is then a
 * commit without changes, which VyOS ignores, and only a real change re-renders the tables.
 */
export function renderVyosRerender(): string {
  const description = (fam: string, verb: "set" | "delete"): string =>
    `${verb} firewall ${fam} name ${VYOS_NAMES.input} description${verb === "set" ? ` '${VYOS_DESCRIPTION}'` : ""}`;
  return ["configure", description("ipv4", "delete"), description("ipv6", "delete"), "commit", description("ipv4", "set"), description("ipv6", "set"), "commit", "exit", ""].join("\n");
}
