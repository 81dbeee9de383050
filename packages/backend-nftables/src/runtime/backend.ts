import { existsSync } from "node:fs";
import type { FirewallConfig as KnockportConfig } from "@knockport/config/firewall";
import { forwardedApps, nftPlacement, placedName, syncSetName, OWN_TABLE, type BackendLog, type BackendSpec, type FirewallBackend, type KernelElement, type NftPlacement, type SetChange } from "@knockport/firewall";
import { DIRECT, FirewallCommandError, privilegeHint, runCommand, type Privilege } from "@knockport/firewall/run";
import { buildNftRuleset, type RulesetParts } from "../render/ruleset.js";

export type { RulesetParts };
import { ListingParseError, layoutInPlace, readTableListing, type TableListing } from "../render/listing.js";
import { renderNftGrant, renderNftRevoke } from "../render/elements.js";
import { parseNftSetElements } from "../render/set-elements.js";
import { NftSession, NftSessionError } from "./session.js";
import { NftMonitor } from "./monitor.js";

const NFT_CANDIDATES = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"];
const NFT_TIMEOUT_MS = 15_000;

export function locateNft(): string {
  const found = NFT_CANDIDATES.find((p) => existsSync(p));
  if (!found) throw new FirewallCommandError(`nft not found (looked in ${NFT_CANDIDATES.join(", ")}); install it: apt-get install nftables`, "");
  return found;
}

/** The rendering parts this config and placement need (forwarded apps, an admin's table), loaded now. */
export async function loadParts(config: KnockportConfig, placement: NftPlacement): Promise<RulesetParts> {
  return {
    ...(forwardedApps(config).length > 0 ? { forwardRules: (await import("../render/forward.js")).forwardRules } : {}),
    ...(placement.custom !== undefined ? { customHead: (await import("../render/custom.js")).customHead } : {}),
  };
}

/** The factory's entry (BackendRuntime). */
export async function createBackend(config: KnockportConfig, spec: BackendSpec): Promise<NftablesBackend> {
  const placement = nftPlacement(spec.customChains);
  return new NftablesBackend(config, locateNft(), spec.privilege, placement, await loadParts(config, placement));
}

export async function uninstall(spec: BackendSpec): Promise<boolean> {
  return (await import("./uninstall.js")).uninstallNftables(locateNft(), spec.privilege, nftPlacement(spec.customChains));
}

/** nft with an absolute path and an argument array, never a shell; a script on stdin is one transaction. */
export class NftablesBackend implements FirewallBackend {
  readonly type = "nftables" as const;
  /**
   * Grants and revokes go to one long-lived `nft -i` (no process start on the knock path). Under
   * --use-sudo each change starts `sudo nft -f -`: an interactive nft would be one more line to trust.
   */
  private readonly session: NftSession | undefined;
  /** The listing's fingerprint right after the last install: what isInstalled compares with. */
  private installed: string | undefined;
  private onChange: ((reason: string) => void) | undefined;
  private missingInterfaces: readonly string[] = [];

  constructor(
    private readonly config: KnockportConfig,
    private readonly nftPath: string,
    private readonly privilege: Privilege = DIRECT,
    private readonly placement: NftPlacement = OWN_TABLE,
    private readonly parts: RulesetParts = {},
  ) {
    this.session = privilege.viaSudo ? undefined : new NftSession({ command: nftPath, args: ["-i"], table: placement.table, syncSet: syncSetName(placement) });
  }

  setMissingInterfaces(names: readonly string[]): void {
    this.missingInterfaces = [...names];
  }

  private build(options: Parameters<typeof buildNftRuleset>[1] = {}): ReturnType<typeof buildNftRuleset> {
    return buildNftRuleset(this.config, { ...options, placement: this.placement, missingInterfaces: this.missingInterfaces }, this.parts);
  }

  async install(grants: readonly Extract<SetChange, { op: "grant" }>[]): Promise<void> {
    const elements = grants.map((g) => ({ set: g.set, ip: g.ip, timeoutSeconds: g.timeoutSeconds }));
    const custom = this.placement.custom;
    this.installed = undefined;
    // An admin's table is read first: its chains must fit, and what of ours it holds goes in the same
    // transaction that re-creates it (a restart or self-heal never duplicates a jump).
    const existing = custom === undefined ? undefined : (await import("./custom.js")).adminTableObjects(await this.list(), this.placement.table, custom, this.config);
    const built = this.build({ elements, ...(existing !== undefined ? { existing } : {}) });
    await this.runScript(built.text, custom === undefined ? "install the knockport table" : `install KnockPort's chains in table ${this.placement.table}`);
    // The long-lived nft starts now, not on the first knock: its start-up cost stays off the knock path.
    await this.session?.apply([]).catch((err: Error) => {
      throw new FirewallCommandError(`cannot start the nft session: ${err.message}`, "");
    });
    // The kernel's form of what was just installed; a change from outside in between fails this check or the next install.
    const listed = await this.list();
    if (listed === undefined || !layoutInPlace(listed, built.layout)) {
      throw new FirewallCommandError(`table ${this.placement.table} changed while KnockPort installed its rules; installing again`, "");
    }
    this.installed = listed.fingerprint;
  }

  /** `nft monitor`: every event touching our table (or `alsoTables`) calls `onChange`, as does a change the kernel refuses. */
  watch(onChange: (reason: string) => void, log: BackendLog, alsoTables: readonly string[] = []): () => void {
    this.onChange = onChange;
    const cmd = this.privilege.wrap(this.nftPath, ["monitor"]);
    const monitor = new NftMonitor({ command: cmd.file, args: cmd.args, tables: [this.placement.table, ...alsoTables], onChange, log });
    monitor.start();
    return () => {
      this.onChange = undefined;
      monitor.stop();
    };
  }

  async apply(changes: readonly SetChange[]): Promise<void> {
    if (changes.length === 0) return;
    const lines = changes.map((c) => (c.op === "grant" ? renderNftGrant(c, this.placement) : renderNftRevoke(c, this.placement)));
    if (!this.session) return this.runScript(lines.join(""), "update the knockport sets");
    try {
      await this.session.apply(lines.map((l) => l.trim()));
    } catch (err) {
      if (err instanceof NftSessionError && err.kind === "session") {
        // The session died (e.g. the stop signal reached the whole cgroup): the transaction committed whole or
        // not at all, and grants and revokes are idempotent, so it is applied again by a one-shot nft.
        return this.runScript(lines.join(""), "update the knockport sets");
      }
      this.onChange?.("nft refused a change");
      throw new FirewallCommandError(`nft failed to update the knockport sets: ${(err as Error).message}`, err instanceof NftSessionError ? err.stderr : "");
    }
  }

  /** Ends the long-lived nft (at helper stop). */
  close(): void {
    this.session?.close();
  }

  /**
   * Our objects are exactly as right after the last install (the listing's fingerprint). Never installed,
   * or the last install failed half-way: false, so the self-heal check installs it whole.
   */
  async isInstalled(): Promise<boolean> {
    if (this.installed === undefined) return false;
    return (await this.list())?.fingerprint === this.installed;
  }

  async listElements(sets: ReadonlySet<string>): Promise<readonly KernelElement[] | undefined> {
    const r = await nft(this.nftPath, this.privilege, ["list", "table", ...this.placement.table.split(" ")], 256 * 1024 * 1024);
    if (r.exitCode !== 0) return undefined;
    // Kernel names (knockport_https_v4 in an admin's table) back to the logical ones the leases use.
    const logical = new Map([...sets].map((s) => [placedName(this.placement, s), s]));
    return parseNftSetElements(r.stdout, new Set(logical.keys())).map((e) => ({ ...e, set: logical.get(e.set) ?? e.set }));
  }

  /** Our table (or the admin's) from `nft -t -j list table`; undefined when it does not exist. */
  private list(): Promise<TableListing | undefined> {
    return listTable(this.nftPath, this.privilege, this.placement);
  }

  private runScript(script: string, what: string): Promise<void> {
    return runNftScript(this.nftPath, script, what, this.privilege);
  }
}

async function nft(nftPath: string, privilege: Privilege, args: string[], maxBuffer?: number): Promise<{ exitCode: number | undefined; stdout: string; stderr: string }> {
  const cmd = privilege.wrap(nftPath, args);
  const r = await runCommand(cmd.file, cmd.args, { timeout: NFT_TIMEOUT_MS, stdin: "ignore", ...(maxBuffer !== undefined ? { maxBuffer } : {}) });
  if (r.timedOut) throw new FirewallCommandError(`nft timed out: nft ${args.join(" ")}`, "");
  return r;
}

/**
 * `nft -t -j list table` read in one walk; undefined when the table does not exist. Terse: without the
 * sets' elements (the self-heal check runs it every 2 s; 10,000 leases would be 0.7 MB of JSON each time).
 */
export async function listTable(nftPath: string, privilege: Privilege, placement: NftPlacement): Promise<TableListing | undefined> {
  const r = await nft(nftPath, privilege, ["-t", "-j", "list", "table", ...placement.table.split(" ")], 256 * 1024 * 1024);
  if (r.exitCode !== 0) {
    if (/No such file or directory/.test(r.stderr)) return undefined;
    throw new FirewallCommandError(`nft failed to list table ${placement.table}${privilegeHint(privilege, r.stderr)}: ${r.stderr.slice(0, 2000)}`, r.stderr);
  }
  try {
    return readTableListing(r.stdout, placement.custom !== undefined);
  } catch (err) {
    if (err instanceof ListingParseError) throw new FirewallCommandError(`cannot read nft's listing of table ${placement.table}: ${err.message}`, "");
    throw err;
  }
}

export async function runNftScript(nftPath: string, script: string, what: string, privilege: Privilege = DIRECT): Promise<void> {
  const cmd = privilege.wrap(nftPath, ["-f", "-"]);
  const r = await runCommand(cmd.file, cmd.args, { input: script, timeout: NFT_TIMEOUT_MS });
  if (r.exitCode !== 0 || r.timedOut) {
    const stderr = r.stderr.slice(0, 2000);
    throw new FirewallCommandError(`nft failed to ${what} (${r.timedOut ? "timed out" : `exit ${r.exitCode}`})${privilegeHint(privilege, stderr)}: ${stderr}`, stderr);
  }
}
