import { UsageError } from "@knockport/config/flags";
import type { FirewallType } from "./backend.js";
import { CUSTOM_PREFIX, type CustomChains } from "./names.js";

// The flags that pick and place a backend, shared by knockport-helper and the knockport CLI's
// dry-run, print-sudoers and uninstall-firewall (one definition, one check).

export const BACKEND_FLAGS = {
  "firewall-type": { type: "string", default: "nftables" },
  "iptables-binary": { type: "string", default: "auto" },
  vbash: { type: "string" },
  "nftables-table-filter": { type: "string" },
  "nftables-chain-input": { type: "string" },
  "nftables-chain-forward": { type: "string" },
  "nftables-chain-output": { type: "string" },
} as const;

type BackendFlagValues = Partial<Record<keyof typeof BACKEND_FLAGS, string>>;

export function parseBackendFlags(v: BackendFlagValues): { type: FirewallType; iptablesBinary: string; vbash: string | undefined; customChains: CustomChains | undefined } {
  const type = v["firewall-type"] ?? "nftables";
  if (type !== "nftables" && type !== "iptables" && type !== "vyos") {
    throw new UsageError(`--firewall-type: must be nftables, iptables or vyos (got "${type.slice(0, 40)}")`);
  }
  if (v.vbash !== undefined && !/^\/[A-Za-z0-9._/-]+$/.test(v.vbash)) {
    throw new UsageError(`--vbash: must be an absolute path such as /bin/vbash (got "${v.vbash.slice(0, 80)}")`);
  }
  const iptablesBinary = v["iptables-binary"] ?? "auto";
  if (!/^(auto|nft|legacy|\/[A-Za-z0-9._/-]*\/iptables(-[a-z]+)?)$/.test(iptablesBinary)) {
    throw new UsageError(`--iptables-binary: must be auto, nft, legacy or an absolute path to an iptables executable such as /usr/sbin/iptables-legacy (got "${iptablesBinary.slice(0, 80)}")`);
  }
  return { type, iptablesBinary, vbash: v.vbash, customChains: parseCustomChains(v, type) };
}

/** A table or chain name from the command line: stricter than nft's identifier. */
const NFT_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
const CHAIN_FLAGS = ["nftables-chain-input", "nftables-chain-forward", "nftables-chain-output"] as const;

/** The one check of the admin's table and chain names: they are interpolated into nft commands as they are. */
function parseCustomChains(v: BackendFlagValues, firewallType: string): CustomChains | undefined {
  const table = v["nftables-table-filter"];
  const given = CHAIN_FLAGS.filter((f) => v[f] !== undefined);
  if (table === undefined) {
    if (given[0] !== undefined) throw new UsageError(`--${given[0]}: needs --nftables-table-filter (the table that holds the chain)`);
    return undefined;
  }
  if (firewallType !== "nftables") {
    throw new UsageError(`--nftables-table-filter: only with --firewall-type nftables (got ${firewallType})`);
  }
  for (const flag of ["nftables-table-filter", ...given] as const) {
    const value = v[flag] ?? "";
    if (!NFT_IDENTIFIER.test(value)) {
      throw new UsageError(`--${flag}: must be an nftables table/chain name (letters, digits, _ and -, up to 64, not starting with a digit or -; got "${value.slice(0, 80)}")`);
    }
    if (value.startsWith(CUSTOM_PREFIX)) {
      throw new UsageError(`--${flag}: names starting with ${CUSTOM_PREFIX} are reserved for KnockPort's own chains and sets (got "${value.slice(0, 80)}")`);
    }
  }
  return { table, input: v["nftables-chain-input"] ?? "input", forward: v["nftables-chain-forward"] ?? "forward", output: v["nftables-chain-output"] };
}
