import { existsSync, rmSync } from "node:fs";
import { parseArgs } from "node:util";
import { HELPER_USER, SHARED_FLAGS, UsageError, loadConfig, parsePortFlag, parseWafFlags, withUsageErrors, type KnockportConfig } from "@knockport/config";
import { BACKEND_FLAGS, nftPlacement, parseBackendFlags, type BackendSpec } from "@knockport/firewall";
import { DIRECT } from "@knockport/firewall/run";
import { locateConntrackFor } from "@knockport/firewall/conntrack";
import { loadRender, loadRuntime, loadSudoers } from "@knockport/backends";
import { fsyncDir, helperStateFiles, takeInstanceLock } from "@knockport/durable-file";

// The one-shot firewall commands: what the helper would apply, the sudoers file for its commands, and
// the removal of KnockPort's firewall objects. They take the helper's backend flags, so the same
// command line picks the same backend, table and chains.

const FLAGS = {
  config: SHARED_FLAGS.config,
  "http-port": SHARED_FLAGS["http-port"],
  "https-port": SHARED_FLAGS["https-port"],
  "waf-http-port": SHARED_FLAGS["waf-http-port"],
  "waf-https-port": SHARED_FLAGS["waf-https-port"],
  "waf-trusted-ips": SHARED_FLAGS["waf-trusted-ips"],
  ...BACKEND_FLAGS,
  "sudo-user": { type: "string", default: HELPER_USER },
  "state-dir": { type: "string", default: "/var/lib/knockport" },
  help: { type: "boolean", short: "h" },
} as const;

export type FirewallCommand = "dry-run" | "print-sudoers" | "uninstall-firewall";

const USAGE: Record<FirewallCommand, string> = {
  "dry-run": "Usage: knockport dry-run -c CONFIG [--firewall-type T] [backend flags] [--http-port N] [--https-port N] [--waf-*]\n  prints exactly what knockport-helper would apply with these flags; needs no root and changes nothing",
  "print-sudoers":
    "Usage: knockport print-sudoers [--firewall-type T] [-c CONFIG] [backend flags] [--sudo-user USER]\n  prints the sudoers file allowing exactly the command lines knockport-helper --use-sudo runs\n  (with -c also the configured VyOS chains and conntrack lines); --sudo-user defaults to\n  knockport-helper, never the server's user knockport",
  "uninstall-firewall":
    "Usage: knockport uninstall-firewall [--firewall-type T] [--state-dir DIR] [--nftables-table-filter NAME] [-c CONFIG]\n  removes KnockPort's firewall objects (needs root; refused while knockport-helper runs on DIR):\n  the knockport nftables table; with --nftables-table-filter also exactly KnockPort's jumps, chains\n  and sets (knockport_*) in the admin's table inet NAME; --firewall-type iptables its jumps, chains\n  and ipsets; vyos with -c also empties its VyOS chains. The saved leases in DIR go too.",
};

/** Runs one of the commands; returns the exit code. */
export async function runFirewallCommand(command: FirewallCommand, argv: string[], out: (text: string) => void): Promise<number> {
  const { values: v } = withUsageErrors(() => parseArgs({ args: argv, strict: true, options: FLAGS }));
  if (v.help) return out(`${USAGE[command]}\nBackend flags as knockport-helper's: see knockport-helper --help.\n`), 0;
  const backend = parseBackendFlags(v);
  const spec: BackendSpec = { ...backend, privilege: DIRECT };
  const config = (): KnockportConfig | undefined =>
    v.config === undefined
      ? undefined
      : loadConfig(v.config, { httpPort: parsePortFlag("--http-port", v["http-port"]), httpsPort: parsePortFlag("--https-port", v["https-port"]), ...parseWafFlags(v) });
  if (command === "dry-run") {
    const c = config();
    if (c === undefined) throw new UsageError("-c/--config is required (e.g. -c /etc/knockport/config.yaml)");
    out((await loadRender(backend.type)).renderDryRun(c, spec));
    return 0;
  }
  if (command === "print-sudoers") {
    const { conntrackSudoCommands, renderSudoers } = await import("@knockport/backends/sudoers");
    const c = config();
    const commands = (await loadSudoers(backend.type)).sudoCommands(spec, c);
    const conntrack = c === undefined ? [] : conntrackSudoCommands(c, locateConntrackFor(c));
    out(renderSudoers(v["sudo-user"], [...commands, ...conntrack], backend.type));
    return 0;
  }
  return uninstallFirewall(spec, v["state-dir"], backend.type === "vyos" ? config() : undefined, out);
}

/**
 * Under the helper's instance lock (a running helper would put everything back at once): the backend's
 * objects go, then the saved leases, so a later start does not bring back leases of before.
 */
async function uninstallFirewall(spec: BackendSpec, stateDir: string, config: KnockportConfig | undefined, out: (text: string) => void): Promise<number> {
  const files = helperStateFiles(stateDir);
  // No state dir: no helper ever ran with it, and there are no saved leases.
  const lock = existsSync(stateDir) ? await takeInstanceLock(files.lock, `--state-dir ${stateDir}`) : undefined;
  try {
    const removed = await (await loadRuntime(spec.type)).uninstall(spec, config);
    if (lock !== undefined) {
      rmSync(files.journalLog, { force: true });
      rmSync(files.journal, { force: true });
      fsyncDir(stateDir);
    }
    const where = spec.type === "iptables" ? "the KNOCKPORT-* chains and ipsets" : nftPlacement(spec.customChains).table;
    out(removed ? `KnockPort's firewall objects removed (${where})\n` : `no KnockPort firewall objects were installed (${where})\n`);
    return 0;
  } finally {
    lock?.release();
  }
}
