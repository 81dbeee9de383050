import { HELPER_USER, SERVER_USER, UsageError, type KnockportConfig } from "@knockport/config";
import { vyosChains, IPT_CHAINS, iptablesJumps, ipsetName, rulesetSetNames, NFT_TABLE_FAMILY, NFT_TABLE_NAME, type IptTable, type NftPlacement } from "@knockport/firewall";
import type { IptablesBinaries } from "./iptables.js";
import { conntrackDeletePrefix } from "./conntrack.js";

/** What a client address may look like in a conntrack line (the helper passes canonical addresses only). */
const ADDRESS_PATTERN = { 4: "[0-9.]+", 6: "[0-9a-f:]+" } as const;

/**
 * Every command line (absolute program + exact arguments) the helper runs through `sudo -n` for one
 * backend. `--print-sudoers` turns them into a sudoers file, and the end-to-end suite checks that a
 * helper with --use-sudo runs nothing else.
 */
export function sudoCommands(
  backend: { type: "nftables" | "vyos"; nft: string; placement?: NftPlacement } | { type: "iptables"; bin: IptablesBinaries },
  config: KnockportConfig | undefined,
  conntrackPath?: string,
): string[][] {
  return [...firewallCommands(backend, config), ...conntrackCommands(config, conntrackPath)];
}

/**
 * `close_established` apps: one line per app and family, `conntrack -D … --orig-src <address>`. The address
 * differs per lease, so these are the only lines that are not exact: a sudoers regular expression (sudo
 * 1.9.10 or later; `^…$` around the whole argument list) that leaves open exactly one argument made of
 * address characters, so nothing can be appended.
 */
function conntrackCommands(config: KnockportConfig | undefined, conntrackPath: string | undefined): string[][] {
  if (config === undefined || conntrackPath === undefined) return [];
  const out: string[][] = [];
  for (const app of config.apps.filter((a) => a.closeEstablished)) {
    for (const family of [4, 6] as const) {
      const [first = "", ...rest] = conntrackDeletePrefix(app, family);
      out.push([conntrackPath, `^${first}`, ...rest, `${ADDRESS_PATTERN[family]}$`]);
    }
  }
  return out;
}

function firewallCommands(
  backend: { type: "nftables" | "vyos"; nft: string; placement?: NftPlacement } | { type: "iptables"; bin: IptablesBinaries },
  config: KnockportConfig | undefined,
): string[][] {
  if (backend.type !== "iptables") {
    const out = [
      [backend.nft, "-f", "-"],
      [backend.nft, "list", "table", NFT_TABLE_FAMILY, NFT_TABLE_NAME],
      [backend.nft, "-t", "-j", "list", "table", NFT_TABLE_FAMILY, NFT_TABLE_NAME],
      // the self-heal watch: events only, it changes nothing
      [backend.nft, "monitor"],
    ];
    const custom = backend.placement?.custom;
    // custom tables: the admin's table is read (JSON for chains/handles and the self-heal check, text for set elements)
    if (custom) out.push([backend.nft, "-t", "-j", "list", "table", NFT_TABLE_FAMILY, custom.table], [backend.nft, "list", "table", NFT_TABLE_FAMILY, custom.table]);
    if (backend.type === "vyos" && config) for (const c of vyosChains(config)) out.push([backend.nft, "list", "chain", c.family, c.table, c.chain]);
    return out;
  }
  const b = backend.bin;
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

/** sudoers escaping of one argument: `\`, `,`, `:`, `=` and whitespace-free otherwise. */
function escapeArg(arg: string): string {
  return arg.replace(/([\\,:=])/g, "\\$1");
}

const USER = /^[a-z_][a-z0-9_-]{0,31}$/;

export function renderSudoers(user: string, commands: readonly string[][], what: string): string {
  if (!USER.test(user)) throw new UsageError(`--sudo-user: must be a user name such as ${HELPER_USER} (got ${JSON.stringify(user.slice(0, 40))})`);
  if (user === SERVER_USER || user === "root") {
    // Whoever runs these owns the firewall and reads any file (nft include): never the internet-facing server.
    throw new UsageError(`--sudo-user ${user}: ${user === "root" ? "root needs no sudo" : "that is the server's user"}; name the helper's own user, ${HELPER_USER}`);
  }
  const lines = [
    `# /etc/sudoers.d/knockport for knockport-helper --use-sudo (${what}), generated by knockport-helper --print-sudoers.`,
    "# Install: visudo -cf FILE && install -m 0440 FILE /etc/sudoers.d/knockport",
    "# Only these exact command lines are allowed. This is NOT a security boundary: whoever runs these",
    "# commands owns the host's firewall, nft can read any file through `include`, and iptables-restore",
    "# input can name a --modprobe program that then runs as root. Prefer the capability unit (helper as",
    `# user ${HELPER_USER} with only CAP_NET_ADMIN, see deploy/systemd); use sudo only where that is impossible.`,
    `# Never give these to ${SERVER_USER}, the internet-facing server's user.`,
    "Defaults:" + user + " !requiretty",
    `Cmnd_Alias KNOCKPORT_FIREWALL = \\`,
  ];
  commands.forEach((c, i) => lines.push(`    ${c.map(escapeArg).join(" ")}${i === commands.length - 1 ? "" : ", \\"}`));
  lines.push(`${user} ALL = (root) NOPASSWD: KNOCKPORT_FIREWALL`, "");
  return lines.join("\n");
}
