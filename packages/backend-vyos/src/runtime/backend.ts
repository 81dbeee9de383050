import { existsSync } from "node:fs";
import { delimiter, isAbsolute, join } from "node:path";
import type { FirewallConfig as KnockportConfig } from "@knockport/config/firewall";
import { OWN_TABLE, type BackendLog, type BackendSpec, type FirewallBackend, type KernelElement, type SetChange } from "@knockport/firewall";
import { DIRECT, FirewallCommandError, privilegeHint, runCommand, type Privilege } from "@knockport/firewall/run";
import { NftablesBackend, loadParts, locateNft, uninstall as uninstallNft, type RulesetParts } from "@knockport/backend-nftables/runtime";
import { VYOS_RULE_COMMENT, renderVyosBootstrap, renderVyosChains, renderVyosRerender, vyosChains } from "../render/ruleset.js";

const TIMEOUT_MS = 30_000;

/** The factory's entry (BackendRuntime). */
export async function createBackend(config: KnockportConfig, spec: BackendSpec): Promise<VyosBackend> {
  return new VyosBackend(config, locateVbash(spec.vbash), locateNft(), spec.privilege, await loadParts(config, OWN_TABLE));
}

/** Our table; with a config also VyOS's named chains, emptied (VyOS's configuration stays). */
export function uninstall(spec: BackendSpec, config: KnockportConfig | undefined): Promise<boolean> {
  if (config === undefined) return uninstallNft({ ...spec, customChains: undefined });
  return new VyosBackend(config, "/bin/vbash", locateNft(), spec.privilege).uninstall();
}

/** `--vbash PATH`, else the first `vbash` on PATH (VyOS: /bin/vbash). */
export function locateVbash(flag: string | undefined): string {
  if (flag !== undefined) {
    if (!isAbsolute(flag)) throw new FirewallCommandError(`--vbash: must be an absolute path such as /bin/vbash (got ${JSON.stringify(flag.slice(0, 80))})`, "");
    return flag;
  }
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(delimiter)) {
    if (dir !== "" && isAbsolute(dir) && existsSync(join(dir, "vbash"))) return join(dir, "vbash");
  }
  throw new FirewallCommandError("vbash not found on PATH: --firewall-type vyos runs on VyOS only (or pass --vbash PATH)", "");
}

/** The VyOS chains are missing and the helper may not create them itself (--use-sudo). */
export class VyosBootstrapNeededError extends Error {
  readonly code = "VYOS_BOOTSTRAP_NEEDED";
  constructor(script: string) {
    super(
      "the VyOS chains NAME_IN-KnockPort / NAME6_IN-KnockPort do not exist yet, and with --use-sudo the helper does not run vbash. " +
        `Run these commands as a VyOS admin (configure mode), then start the helper again:\n${script}`,
    );
    this.name = "VyosBootstrapNeededError";
  }
}

/**
 * VyOS: our own `table inet knockport` (as the nftables backend: sets, drops, NAT, stealth port) plus
 * accepts for exactly our ports in the named chains VyOS renders into `ip/ip6 vyos_filter`, which a
 * bootstrap through vbash creates (as the original does). A VyOS commit re-renders `vyos_filter` and
 * wipes those accepts: isInstalled() notices and the helper's self-heal re-applies them (leases live in
 * our table, which VyOS never touches).
 */
export class VyosBackend implements FirewallBackend {
  readonly type = "vyos" as const;
  private readonly nft: NftablesBackend;

  constructor(
    private readonly config: KnockportConfig,
    private readonly vbash: string,
    private readonly nftPath: string = locateNft(),
    private readonly privilege: Privilege = DIRECT,
    parts: RulesetParts = {},
  ) {
    this.nft = new NftablesBackend(config, nftPath, privilege, OWN_TABLE, parts);
  }

  /**
   * Our table first (its drops and the live leases do not depend on VyOS), then VyOS's named chains:
   * bootstrapped through vbash when missing and filled. When VyOS's own tables are gone (`nft flush
   * ruleset`), re-running the bootstrap is a commit without changes, which VyOS ignores; then two commits
   * that remove and restore our chains' description make VyOS re-render its firewall (config unchanged).
   */
  async install(grants: readonly Extract<SetChange, { op: "grant" }>[]): Promise<void> {
    await this.nft.install(grants);
    if (!(await this.chainsExist())) {
      const script = renderVyosBootstrap(this.config);
      if (this.privilege.viaSudo) throw new VyosBootstrapNeededError(script);
      let r = await this.runVbash(script);
      if (!(await this.chainsExist())) r = await this.runVbash(renderVyosRerender());
      if (!(await this.chainsExist())) {
        throw new FirewallCommandError(
          `vbash could not create the VyOS chains (exit ${String(r.exitCode)}): ${String(r.stderr ?? "").slice(0, 2000)}`,
          String(r.stderr ?? ""),
        );
      }
    }
    await this.fillChains();
  }

  private runVbash(script: string): Promise<{ exitCode?: number | undefined; stderr?: unknown }> {
    return runCommand(this.vbash, [], { input: `source /opt/vyatta/etc/functions/script-template\n${script}`, timeout: TIMEOUT_MS });
  }

  /** Our lease elements live in our own nftables table: reconciled (and counted) exactly as with the nftables backend. */
  listElements(sets: ReadonlySet<string>): Promise<readonly KernelElement[] | undefined> {
    return this.nft.listElements(sets);
  }

  apply(changes: readonly SetChange[]): Promise<void> {
    return this.nft.apply(changes);
  }

  async uninstall(): Promise<boolean> {
    const removed = await uninstallNft({ type: "vyos", privilege: this.privilege });
    if (await this.chainsExist()) {
      // Leave VyOS's configuration alone (its next commit would fail otherwise); just empty our chains.
      const script = vyosChains(this.config)
        .map((c) => `flush chain ${c.family} ${c.table} ${c.chain}\nadd rule ${c.family} ${c.table} ${c.chain} return`)
        .join("\n");
      await this.runNft(["-f", "-"], `${script}\n`, "empty the VyOS chains");
    }
    return removed;
  }

  /** Our table's events, and VyOS's tables' (a commit re-renders them and wipes our accepts). */
  watch(onChange: (reason: string) => void, log: BackendLog): () => void {
    return this.nft.watch(onChange, log, [...new Set(vyosChains(this.config).map((c) => `${c.family} ${c.table}`))]);
  }

  async isInstalled(): Promise<boolean> {
    if (!(await this.nft.isInstalled())) return false;
    for (const c of vyosChains(this.config)) {
      const cmd = this.privilege.wrap(this.nftPath, ["list", "chain", c.family, c.table, c.chain]);
      const r = await runCommand(cmd.file, cmd.args, { timeout: TIMEOUT_MS, stdin: "ignore" });
      // Each accept of ours once: a commit that re-rendered the chain, or one accept deleted, re-applies them all.
      if (r.exitCode !== 0 || String(r.stdout).split(VYOS_RULE_COMMENT).length - 1 !== c.rules.length) return false;
    }
    return true;
  }

  private async chainsExist(): Promise<boolean> {
    for (const c of vyosChains(this.config)) {
      const cmd = this.privilege.wrap(this.nftPath, ["list", "chain", c.family, c.table, c.chain]);
      const r = await runCommand(cmd.file, cmd.args, { timeout: TIMEOUT_MS, stdin: "ignore" });
      if (r.exitCode !== 0) return false;
    }
    return true;
  }

  private async fillChains(): Promise<void> {
    await this.runNft(["-f", "-"], renderVyosChains(this.config), "fill the VyOS chains");
  }

  private async runNft(args: string[], input: string, what: string): Promise<void> {
    const cmd = this.privilege.wrap(this.nftPath, args);
    const r = await runCommand(cmd.file, cmd.args, { input, timeout: TIMEOUT_MS });
    if (r.exitCode !== 0) {
      const stderr = String(r.stderr ?? "").slice(0, 2000);
      throw new FirewallCommandError(`nft failed to ${what} (exit ${String(r.exitCode)})${privilegeHint(this.privilege, stderr)}: ${stderr}`, stderr);
    }
  }
}
