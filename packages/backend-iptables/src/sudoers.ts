import type { BackendSudoers } from "@knockport/firewall";
import { iptablesJumps } from "./render/names.js";
import { locateIptables, type IptablesBinaries } from "./runtime/backend.js";

/**
 * Every iptables, ip6tables and ipset command line the running helper runs, exact. Removing our jumps,
 * chains and sets is `knockport uninstall-firewall`'s, which runs as root: none of those lines is here.
 */
export function iptablesSudoCommands(b: IptablesBinaries): string[][] {
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
      out.push([bin, "-w", "5", "-t", j.table, "-C", j.builtin, ...j.spec], [bin, "-w", "5", "-t", j.table, "-I", j.builtin, "1", ...j.spec]);
    }
  }
  return out;
}

export const sudoCommands: BackendSudoers["sudoCommands"] = (spec) => iptablesSudoCommands(locateIptables(spec.iptablesBinary ?? "auto"));
