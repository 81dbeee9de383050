import { existsSync } from "node:fs";
import type { FirewallConfig as KnockportConfig } from "@knockport/config/firewall";
import {
  forwardedApps,
  nftPlacement,
  placedName,
  renderNftGrant,
  renderNftRevoke,
  syncSetName,
  NFT_TABLE_FAMILY,
  NFT_TABLE_NAME,
  OWN_TABLE,
  type BackendLog,
  type BackendSpec,
  type FirewallBackend,
  type KernelElement,
  type NftPlacement,
  type SetChange,
} from "@knockport/firewall";
import { DIRECT, FirewallCommandError, privilegeHint, runCommand, type Privilege } from "@knockport/firewall/run";
import { nftLayout, renderNftRemoveCustom, renderNftRemoveTable, renderNftRuleset, NO_EXISTING_OBJECTS } from "../render/ruleset.js";
import { checkAdminChains, existingObjects, ListingParseError, layoutInPlace, parseTableListing, type TableListing } from "../render/listing.js";
import { tableFingerprint } from "../render/fingerprint.js";
import { parseNftSetElements } from "../render/set-elements.js";
import { NftSession, NftSessionError } from "./session.js";
import { NftMonitor } from "./monitor.js";

/** The factory's entry (BackendRuntime): our own table, or with custom chains prefixed objects in the admin's. */
export function createBackend(config: KnockportConfig, spec: BackendSpec): NftablesBackend {
  return new NftablesBackend(config, locateNft(), spec.privilege, nftPlacement(spec.customChains));
}

export function uninstall(spec: BackendSpec): Promise<boolean> {
  return uninstallNftables(locateNft(), spec.privilege, nftPlacement(spec.customChains));
}


const NFT_CANDIDATES = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"];
const NFT_TIMEOUT_MS = 15_000;

export function locateNft(): string {
  const found = NFT_CANDIDATES.find((p) => existsSync(p));
  if (!found) {
    throw new FirewallCommandError(
      `nft not found (looked in ${NFT_CANDIDATES.join(", ")}); install it: apt-get install nftables`,
      "",
    );
  }
  return found;
}

/**
 * Runs nft with an absolute path and an argument array (never a shell); scripts go in on stdin so
 * every call is one atomic transaction: it applies whole or not at all.
 */
export class NftablesBackend implements FirewallBackend {
  readonly type = "nftables" as const;
  /**
   * Grants and revokes go to one long-lived `nft -i` (no process start on the knock path). Under
   * --use-sudo each change still starts `sudo nft -f -`: the sudoers file allows exact command
   * lines, and an interactive nft would be one more of them to trust.
   */
  private readonly session: NftSession | undefined;
  /** tableFingerprint of our objects right after the last install: what isInstalled compares with. */
  private installed: string | undefined;
  private onChange: ((reason: string) => void) | undefined;

  constructor(
    private readonly config: KnockportConfig,
    private readonly nftPath: string = locateNft(),
    private readonly privilege: Privilege = DIRECT,
    /** Our own table (default) or, with --nftables-table-filter, prefixed objects in the admin's table. */
    private readonly placement: NftPlacement = OWN_TABLE,
  ) {
    this.session = privilege.viaSudo
      ? undefined
      : new NftSession({ command: nftPath, args: ["-i"], table: placement.table, syncSet: syncSetName(placement) });
  }

  private missingInterfaces: readonly string[] = [];

  renderRuleset(): string {
    return renderNftRuleset(this.config, { placement: this.placement, missingInterfaces: this.missingInterfaces });
  }

  setMissingInterfaces(names: readonly string[]): void {
    this.missingInterfaces = [...names];
  }

  async install(grants: readonly Extract<SetChange, { op: "grant" }>[]): Promise<void> {
    const elements = grants.map((g) => ({ set: g.set, ip: g.ip, timeoutSeconds: g.timeoutSeconds }));
    const custom = this.placement.custom;
    this.installed = undefined;
    if (custom === undefined) {
      await this.runScript(renderNftRuleset(this.config, { elements, missingInterfaces: this.missingInterfaces }), "install the knockport table");
    } else {
      // Read the admin's table first: its chains must fit, and what of ours it holds goes in the same
      // transaction that re-creates it (so a restart or self-heal never duplicates a jump).
      const listing = await listTableJson(this.nftPath, this.privilege, this.placement.table);
      if (listing === undefined) {
        throw new FirewallCommandError(
          `--nftables-table-filter: table ${this.placement.table} does not exist (an ip or ip6 table of that name does not count: KnockPort needs an inet table, which sees both families); create it with your own ruleset first (KnockPort only adds to it), or leave the flag out to use KnockPort's own table`,
          "",
        );
      }
      const problem = checkAdminChains(listing, custom, forwardedApps(this.config).length > 0);
      if (problem !== undefined) throw new FirewallCommandError(problem, "");
      const script = renderNftRuleset(this.config, {
        elements,
        placement: this.placement,
        existing: existingObjects(listing),
        missingInterfaces: this.missingInterfaces,
      });
      await this.runScript(script, `install KnockPort's chains in table ${this.placement.table}`);
    }
    // Start the long-lived nft now, not on the first knock: its start-up cost stays off the
    // knock path, and the helper's open files are settled once it is ready.
    await this.session?.apply([]).catch((err: Error) => {
      throw new FirewallCommandError(`cannot start the nft session: ${err.message}`, "");
    });
    // The kernel's form of what was just installed. Should a change from outside have come between the
    // install and this listing, the layout check below or the next install catches it.
    const listed = await this.listOurs();
    if (listed === undefined || !layoutInPlace(listed.listing, nftLayout(this.config, this.placement, this.missingInterfaces))) {
      throw new FirewallCommandError(`table ${this.placement.table} changed while KnockPort installed its rules; installing again`, "");
    }
    this.installed = listed.fingerprint;
  }

  /** Our table's listing and fingerprint; undefined when the table is gone. */
  private async listOurs(): Promise<{ listing: TableListing; fingerprint: string } | undefined> {
    const json = await listTableJsonText(this.nftPath, this.privilege, this.placement.table);
    if (json === undefined) return undefined;
    try {
      return { listing: parseTableListing(json), fingerprint: tableFingerprint(json, this.placement.custom === undefined ? "own-table" : "custom") };
    } catch (err) {
      if (err instanceof ListingParseError) throw new FirewallCommandError(`cannot read nft's listing of table ${this.placement.table}: ${err.message}`, "");
      throw err;
    }
  }

  /**
   * `nft monitor`: every event touching our table (or the admin's, with custom chains; or `alsoTables`)
   * calls `onChange`; so does every change the kernel refuses (a set or the table gone).
   */
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
    const script = changes
      .map((c) =>
        c.op === "grant"
          ? renderNftGrant({ set: c.set, ip: c.ip, timeoutSeconds: c.timeoutSeconds }, this.placement)
          : renderNftRevoke({ set: c.set, ip: c.ip }, this.placement),
      )
      .join("");
    if (!this.session) {
      await this.runScript(script, "update the knockport sets");
      return;
    }
    const commands = script
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line !== "" && !line.startsWith("#"));
    try {
      await this.session.apply(commands);
    } catch (err) {
      if (err instanceof NftSessionError && err.kind === "session") {
        // The session died (e.g. the stop signal reached the whole cgroup). The transaction either
        // committed whole or not at all; grants and revokes are idempotent, so apply it again in a
        // one-shot nft. The next change starts a fresh session.
        await this.runScript(script, "update the knockport sets");
        return;
      }
      const stderr = err instanceof NftSessionError ? err.stderr : "";
      this.onChange?.("nft refused a change");
      throw new FirewallCommandError(`nft failed to update the knockport sets: ${(err as Error).message}`, stderr);
    }
  }

  /** Ends the long-lived nft process (at helper stop). */
  close(): void {
    this.session?.close();
  }

  async uninstall(): Promise<boolean> {
    return uninstallNftables(this.nftPath, this.privilege, this.placement);
  }

  /**
   * Our objects in `nft -t -j list table` (terse: without the sets' elements, so this check costs the
   * same with 10 leases or 10,000) are exactly as right after the last install (tableFingerprint); before
   * any install: every chain of ours with all its rules, every set and each jump exactly once.
   */
  async isInstalled(): Promise<boolean> {
    const listed = await this.listOurs();
    if (listed === undefined) return false;
    if (this.installed === undefined) return layoutInPlace(listed.listing, nftLayout(this.config, this.placement, this.missingInterfaces));
    return listed.fingerprint === this.installed;
  }

  /** Our sets' elements from `nft list table inet knockport`. */
  async listElements(sets: ReadonlySet<string>): Promise<readonly KernelElement[] | undefined> {
    const cmd = this.privilege.wrap(this.nftPath, ["list", "table", ...tableArgs(this.placement.table)]);
    const r = await runCommand(cmd.file, cmd.args, { timeout: NFT_TIMEOUT_MS, stdin: "ignore", maxBuffer: 256 * 1024 * 1024 });
    if (r.timedOut) throw new FirewallCommandError(`nft timed out listing table ${this.placement.table}`, "");
    if (r.exitCode !== 0) return undefined;
    // Kernel names (knockport_https_v4 in an admin's table) back to the logical ones the leases use.
    const logical = new Map([...sets].map((s) => [placedName(this.placement, s), s]));
    return parseNftSetElements(String(r.stdout), new Set(logical.keys())).map((e) => ({ ...e, set: logical.get(e.set) ?? e.set }));
  }

  private runScript(script: string, what: string): Promise<void> {
    return runNftScript(this.nftPath, script, what, this.privilege);
  }
}

/**
 * Remove our table; false when it was not there. Needs no config. With custom chains: exactly our
 * jumps, chains and sets in the admin's table (found by its listing) and our own table if present.
 */
export async function uninstallNftables(
  nftPath: string = locateNft(),
  privilege: Privilege = DIRECT,
  placement: NftPlacement = OWN_TABLE,
): Promise<boolean> {
  const list = privilege.wrap(nftPath, ["list", "table", NFT_TABLE_FAMILY, NFT_TABLE_NAME]);
  const listed = await runCommand(list.file, list.args, {
    timeout: NFT_TIMEOUT_MS,
  });
  const ownTable = listed.exitCode === 0;
  if (placement.custom === undefined) {
    if (!ownTable) return false;
    await runNftScript(nftPath, renderNftRemoveTable(), "remove the knockport table", privilege);
    return true;
  }
  const admin = await listTableJson(nftPath, privilege, placement.table);
  const ours = admin === undefined ? NO_EXISTING_OBJECTS : existingObjects(admin);
  const found = ownTable || ours.jumps.length + ours.chains.length + ours.sets.length > 0;
  if (!found) return false;
  await runNftScript(nftPath, renderNftRemoveCustom(placement, ours), `remove KnockPort's chains from table ${placement.table}`, privilege);
  return true;
}

/** `inet filter` -> ["inet", "filter"] (the placement was checked when it was built). */
function tableArgs(table: string): string[] {
  return table.split(" ");
}

/**
 * `nft -t -j list table <family> <name>`, parsed; undefined when the table does not exist. Terse: chains,
 * rules and set names without the sets' elements (the self-heal check runs it every 2 s, and with
 * 10,000 leases the elements would be 0.7 MB of JSON each time).
 */
async function listTableJson(nftPath: string, privilege: Privilege, table: string): Promise<TableListing | undefined> {
  const json = await listTableJsonText(nftPath, privilege, table);
  if (json === undefined) return undefined;
  try {
    return parseTableListing(json);
  } catch (err) {
    if (err instanceof ListingParseError) throw new FirewallCommandError(`cannot read nft's listing of table ${table}: ${err.message}`, "");
    throw err;
  }
}

/** The JSON text of that listing; undefined when the table does not exist. */
async function listTableJsonText(nftPath: string, privilege: Privilege, table: string): Promise<string | undefined> {
  const cmd = privilege.wrap(nftPath, ["-t", "-j", "list", "table", ...tableArgs(table)]);
  const r = await runCommand(cmd.file, cmd.args, { timeout: NFT_TIMEOUT_MS, stdin: "ignore", maxBuffer: 256 * 1024 * 1024 });
  if (r.timedOut) throw new FirewallCommandError(`nft timed out listing table ${table}`, "");
  if (r.exitCode !== 0) {
    const stderr = String(r.stderr ?? "");
    if (/No such file or directory/.test(stderr)) return undefined;
    throw new FirewallCommandError(`nft failed to list table ${table}${privilegeHint(privilege, stderr)}: ${stderr.slice(0, 2000)}`, stderr);
  }
  return String(r.stdout);
}

async function runNftScript(nftPath: string, script: string, what: string, privilege: Privilege = DIRECT): Promise<void> {
  const cmd = privilege.wrap(nftPath, ["-f", "-"]);
  const r = await runCommand(cmd.file, cmd.args, {
    input: script,
    timeout: NFT_TIMEOUT_MS,
  });
  if (r.exitCode !== 0 || r.timedOut) {
    const stderr = String(r.stderr ?? "").slice(0, 2000);
    const hint = privilegeHint(privilege, stderr);
    throw new FirewallCommandError(
      `nft failed to ${what} (${r.timedOut ? "timed out" : `exit ${r.exitCode}`})${hint}: ${stderr}`,
      stderr,
    );
  }
}
