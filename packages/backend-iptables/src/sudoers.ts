import type { FirewallConfig as KnockportConfig } from "@knockport/config/firewall";
import { rulesetSetNames, type BackendSudoers } from "@knockport/firewall";
import { IPT_CHAINS, iptablesJumps, ipsetName, type IptTable } from "./render/names.js";
import { locateIptables, type IptablesBinaries } from "./runtime/backend.js";

/** Every iptables, ip6tables and ipset command line the backend runs, exact. */
export function iptablesSudoCommands(b: IptablesBinaries, config: KnockportConfig | undefined): string[][] {
  const out: string[][] = [
    [b.ipset, "-exist", "restore"],
    [b.ipset, "list", "-n"],
    [b.ipset, "save"],
    [b.iptablesRestore, "-w", "5", "--noflush"],
    [b.ip6tablesRestore, "-w", "5", "--noflush"],
    // the self-heal check: every table's rules, read only
    [b.iptablesSave],
    [b.ip6tablesSave],
  ];
  for (const bin of [b.iptables, b.ip6tables]) {
    for (const j of iptablesJumps()) {
      out.push([bin, "-w", "5", "-t", j.table, "-C", j.builtin, ...j.spec]);
      out.push([bin, "-w", "5", "-t", j.table, "-I", j.builtin, "1", ...j.spec]);
      out.push([bin, "-w", "5", "-t", j.table, "-D", j.builtin, ...j.spec]);
    }
    for (const table of Object.keys(IPT_CHAINS) as IptTable[]) {
      for (const chain of new Set(Object.values(IPT_CHAINS[table]))) {
        out.push([bin, "-w", "5", "-t", table, "-F", chain], [bin, "-w", "5", "-t", table, "-X", chain]);
      }
    }
  }
  if (config) for (const set of rulesetSetNames(config)) out.push([b.ipset, "destroy", ipsetName(set)]);
  return out;
}

export const sudoCommands: BackendSudoers["sudoCommands"] = (spec, config) => iptablesSudoCommands(locateIptables(spec.iptablesBinary ?? "auto"), config);
