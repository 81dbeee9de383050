import { existsSync } from "node:fs";
import { basename, dirname, isAbsolute, join } from "node:path";
import type { FirewallConfig as KnockportConfig } from "@knockport/config/firewall";
import { IPT_CHAINS, iptablesJumps, ipsetName, isOurIpset, type IptJump, type IptTable } from "../render/names.js";
import { renderIpsetAdd, renderIpsetDel, renderIptablesRuleset } from "../render/ruleset.js";
import type { BackendSpec, FirewallBackend, KernelElement, SetChange } from "@knockport/firewall";
import { DIRECT, FirewallCommandError, privilegeHint, runCommand, type Privilege } from "@knockport/firewall/run";
import { ipsetsWithoutCounters, parseIpsetSave } from "../render/ipset-save.js";
import { hasJumps, iptablesFingerprint } from "../render/fingerprint.js";

const TIMEOUT_MS = 15_000;

/** The factory's entry (BackendRuntime). */
export async function createBackend(config: KnockportConfig, spec: BackendSpec): Promise<IptablesBackend> {
  return new IptablesBackend(config, locateIptables(spec.iptablesBinary ?? "auto"), spec.privilege);
}

export function uninstall(spec: BackendSpec): Promise<boolean> {
  return uninstallIptables(locateIptables(spec.iptablesBinary ?? "auto"), spec.privilege);
}
const SBIN = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/** The binaries of one iptables flavour (legacy or nft), all absolute paths. */
export interface IptablesBinaries {
  readonly iptables: string;
  readonly ip6tables: string;
  readonly iptablesRestore: string;
  readonly ip6tablesRestore: string;
  /** Listings for the self-heal check (`iptables-save`: every table in one command). */
  readonly iptablesSave: string;
  readonly ip6tablesSave: string;
  readonly ipset: string;
}

function find(name: string, what: string, pkg: string): string {
  const found = SBIN.map((d) => join(d, name)).find((p) => existsSync(p));
  if (!found) {
    throw new FirewallCommandError(`${name} not found (looked in ${SBIN.join(", ")}); ${what}: apt-get install ${pkg}`, "");
  }
  return found;
}

/**
 * `--iptables-binary`: `auto` (the distribution's `iptables`, whichever flavour it points to), `nft`,
 * `legacy`, or the absolute path of an iptables executable such as /usr/sbin/iptables-legacy; the
 * ip6tables and *-restore binaries are taken from the same directory with the same flavour suffix.
 */
export function locateIptables(choice: string): IptablesBinaries {
  const ipset = find("ipset", "the iptables backend keeps its timed sets in ipset", "ipset");
  if (choice === "auto" || choice === "nft" || choice === "legacy") {
    const suffix = choice === "auto" ? "" : `-${choice}`;
    return {
      iptables: find(`iptables${suffix}`, "--iptables-binary", "iptables"),
      ip6tables: find(`ip6tables${suffix}`, "--iptables-binary", "iptables"),
      iptablesRestore: find(`iptables${suffix}-restore`, "--iptables-binary", "iptables"),
      ip6tablesRestore: find(`ip6tables${suffix}-restore`, "--iptables-binary", "iptables"),
      iptablesSave: find(`iptables${suffix}-save`, "--iptables-binary", "iptables"),
      ip6tablesSave: find(`ip6tables${suffix}-save`, "--iptables-binary", "iptables"),
      ipset,
    };
  }
  const name = basename(choice);
  const m = /^iptables(-[a-z]+)?$/.exec(name);
  if (!isAbsolute(choice) || !m) {
    throw new FirewallCommandError(
      `--iptables-binary: must be auto, nft, legacy or an absolute path to an iptables executable such as /usr/sbin/iptables-legacy (got ${JSON.stringify(choice.slice(0, 80))})`,
      "",
    );
  }
  const dir = dirname(choice);
  const suffix = m[1] ?? "";
  const paths = {
    iptables: choice,
    ip6tables: join(dir, `ip6tables${suffix}`),
    iptablesRestore: join(dir, `iptables${suffix}-restore`),
    ip6tablesRestore: join(dir, `ip6tables${suffix}-restore`),
    iptablesSave: join(dir, `iptables${suffix}-save`),
    ip6tablesSave: join(dir, `ip6tables${suffix}-save`),
  };
  for (const p of Object.values(paths)) {
    if (!existsSync(p)) throw new FirewallCommandError(`--iptables-binary ${choice}: ${p} does not exist; install iptables or pick another flavour`, "");
  }
  return { ...paths, ipset };
}

async function run(p: Privilege, file: string, args: readonly string[], what: string, input?: string): Promise<{ exitCode: number; stderr: string }> {
  const cmd = p.wrap(file, args);
  const r = await runCommand(cmd.file, cmd.args, {
    timeout: TIMEOUT_MS,
    ...(input !== undefined ? { input } : { stdin: "ignore" as const }),
  });
  const stderr = String(r.stderr ?? "").slice(0, 2000);
  if (r.timedOut) throw new FirewallCommandError(`${basename(file)} timed out trying to ${what}`, stderr);
  return { exitCode: r.exitCode ?? 1, stderr };
}

async function mustRun(p: Privilege, file: string, args: readonly string[], what: string, input?: string): Promise<void> {
  const r = await run(p, file, args, what, input);
  if (r.exitCode !== 0) {
    const hint = privilegeHint(p, r.stderr);
    throw new FirewallCommandError(`${basename(file)} failed to ${what} (exit ${r.exitCode})${hint}: ${r.stderr}`, r.stderr);
  }
}

/**
 * iptables + ipset. Install: `ipset -exist restore` (sets created if missing, flushed, live leases
 * re-added), `iptables-restore --noflush` / `ip6tables-restore --noflush` (our chains declared, which
 * flushes and refills them in one commit per table, nothing else touched), then the jumps from the
 * built-in chains, each inserted at position 1 once (checked with -C). Grants and revokes are one
 * `ipset -exist restore` batch each: `add … timeout N` refreshes an existing entry's timeout.
 */
export class IptablesBackend implements FirewallBackend {
  readonly type = "iptables" as const;
  /** iptablesFingerprint right after the last install: what isInstalled compares with. */
  private installed: string | undefined;
  private onChange: ((reason: string) => void) | undefined;
  private lastChangeCheckAt = -Infinity;

  constructor(
    private readonly config: KnockportConfig,
    private readonly bin: IptablesBinaries,
    private readonly privilege: Privilege = DIRECT,
  ) {}

  async install(grants: readonly Extract<SetChange, { op: "grant" }>[]): Promise<void> {
    const r = renderIptablesRuleset(this.config, {
      elements: grants.map((g) => ({ set: g.set, ip: g.ip, timeoutSeconds: g.timeoutSeconds })),
      withoutCounters: await this.setsWithoutCounters(),
    });
    const p = this.privilege;
    this.installed = undefined;
    await mustRun(p, this.bin.ipset, ["-exist", "restore"], "create the knockport ipsets", r.ipset);
    await mustRun(p, this.bin.iptablesRestore, ["-w", "5", "--noflush"], "load the KNOCKPORT-* chains (IPv4)", r.v4);
    await mustRun(p, this.bin.ip6tablesRestore, ["-w", "5", "--noflush"], "load the KNOCKPORT-* chains (IPv6)", r.v6);
    for (const j of r.jumps) {
      await this.ensureJump(this.bin.iptables, j);
      await this.ensureJump(this.bin.ip6tables, j);
    }
    await this.destroyStaleSets(new Set(r.ipset.split("\n").filter((l) => l.startsWith("create ")).map((l) => l.split(" ")[1] ?? "")));
    // The kernel's form of what was just installed; a change from outside in between fails the jump check or the next install.
    const fingerprint = await this.fingerprint();
    if (!hasJumps(fingerprint, r.jumps)) throw new FirewallCommandError("the KNOCKPORT-* jumps changed while KnockPort installed them; installing again", "");
    this.installed = fingerprint;
  }

  private async fingerprint(): Promise<string> {
    const save = async (binary: string): Promise<string> => {
      const cmd = this.privilege.wrap(binary, []);
      const r = await runCommand(cmd.file, cmd.args, { timeout: TIMEOUT_MS, stdin: "ignore", maxBuffer: 64 * 1024 * 1024 });
      if (r.exitCode !== 0 || r.timedOut) {
        const stderr = String(r.stderr ?? "").slice(0, 2000);
        throw new FirewallCommandError(`${basename(binary)} failed (${r.timedOut ? "timed out" : `exit ${String(r.exitCode)}`})${privilegeHint(this.privilege, stderr)}: ${stderr}`, stderr);
      }
      return String(r.stdout);
    };
    const [v4, v6] = [await save(this.bin.iptablesSave), await save(this.bin.ip6tablesSave)];
    return iptablesFingerprint({ v4, v6 }, await listOurSets(this.bin.ipset, this.privilege));
  }

  /**
   * No event source for iptables: the check runs after a change the kernel refused (an ipset gone) and,
   * at most once a second, after a change it took (a knock while the chains are flushed still lands in its
   * ipset, and the rules that use it come back at once rather than at the next periodic check).
   */
  watch(onChange: (reason: string) => void): () => void {
    this.onChange = onChange;
    return () => {
      this.onChange = undefined;
    };
  }

  async apply(changes: readonly SetChange[]): Promise<void> {
    if (changes.length === 0) return;
    const script = changes
      .map((c) => (c.op === "grant" ? renderIpsetAdd({ set: c.set, ip: c.ip, timeoutSeconds: c.timeoutSeconds }) : renderIpsetDel({ set: c.set, ip: c.ip })))
      .join("");
    try {
      await mustRun(this.privilege, this.bin.ipset, ["-exist", "restore"], "update the knockport ipsets", script);
    } catch (err) {
      this.onChange?.("ipset refused a change");
      throw err;
    }
    if (performance.now() - this.lastChangeCheckAt >= 1000) {
      this.lastChangeCheckAt = performance.now();
      this.onChange?.("a lease changed");
    }
  }

  /**
   * Our chains, rules, jumps and ipsets exactly as right after the last install (iptablesFingerprint:
   * `iptables-save`, `ip6tables-save`, `ipset list -n`); before any install, the INPUT jumps (checked with
   * -C, which also fails when KNOCKPORT-INPUT is gone) and our https ipsets.
   */
  async isInstalled(): Promise<boolean> {
    if (this.installed !== undefined) return (await this.fingerprint()) === this.installed;
    for (const binary of [this.bin.iptables, this.bin.ip6tables]) {
      for (const j of iptablesJumps().filter((x) => x.table === "filter" && x.builtin === "INPUT")) {
        const r = await run(this.privilege, binary, ["-w", "5", "-t", j.table, "-C", j.builtin, ...j.spec], "check a jump");
        if (r.exitCode !== 0) return false;
      }
    }
    const sets = new Set(await listOurSets(this.bin.ipset, this.privilege));
    return sets.has("kp-https-v4") && sets.has("kp-https-v6");
  }

  /** Our ipsets' elements from `ipset save` (one command; the sudoers file allows it), with logical set names. */
  async listElements(sets: ReadonlySet<string>): Promise<readonly KernelElement[] | undefined> {
    const names = new Map([...sets].map((logical) => [ipsetName(logical), logical] as const));
    const cmd = this.privilege.wrap(this.bin.ipset, ["save"]);
    const r = await runCommand(cmd.file, cmd.args, { timeout: TIMEOUT_MS, stdin: "ignore", maxBuffer: 256 * 1024 * 1024 });
    if (r.timedOut) throw new Error("ipset save timed out");
    if (r.exitCode !== 0) return undefined;
    const elements = parseIpsetSave(String(r.stdout), names);
    // Our https sets missing: not installed (the self-heal check reinstalls); nothing to reconcile.
    return String(r.stdout).includes(`create ${ipsetName("https_v4")} `) ? elements : undefined;
  }

  /** Our ipsets made before per-element counters (upgrade): `ipset save`, the command listElements runs. */
  private async setsWithoutCounters(): Promise<Set<string>> {
    const cmd = this.privilege.wrap(this.bin.ipset, ["save"]);
    const r = await runCommand(cmd.file, cmd.args, { timeout: TIMEOUT_MS, stdin: "ignore", maxBuffer: 256 * 1024 * 1024 });
    if (r.timedOut) throw new FirewallCommandError("ipset save timed out", "");
    return r.exitCode === 0 ? ipsetsWithoutCounters(String(r.stdout), isOurIpset) : new Set();
  }

  private async ensureJump(binary: string, j: IptJump): Promise<void> {
    const check = await run(this.privilege, binary, ["-w", "5", "-t", j.table, "-C", j.builtin, ...j.spec], "check a jump");
    if (check.exitCode === 0) return;
    await mustRun(this.privilege, binary, ["-w", "5", "-t", j.table, "-I", j.builtin, "1", ...j.spec], `insert the jump ${j.table}/${j.builtin} -> KNOCKPORT`);
  }

  /** Sets of apps that are no longer configured (their rules are gone now, so they are unreferenced). */
  private async destroyStaleSets(keep: Set<string>): Promise<void> {
    for (const name of await listOurSets(this.bin.ipset, this.privilege)) {
      if (!keep.has(name)) await run(this.privilege, this.bin.ipset, ["destroy", name], "destroy a stale set");
    }
  }
}

async function listOurSets(ipset: string, p: Privilege): Promise<string[]> {
  const cmd = p.wrap(ipset, ["list", "-n"]);
  const r = await runCommand(cmd.file, cmd.args, { timeout: TIMEOUT_MS, stdin: "ignore" });
  if (r.exitCode !== 0) return [];
  return String(r.stdout).split("\n").map((l) => l.trim()).filter(isOurIpset);
}

/** Remove our jumps, chains and sets; false when none of them was there. Needs no config. */
export async function uninstallIptables(bin: IptablesBinaries, p: Privilege = DIRECT): Promise<boolean> {
  let found = false;
  for (const binary of [bin.iptables, bin.ip6tables]) {
    for (const j of iptablesJumps()) {
      // at most a few copies (e.g. inserted by hand); bounded
      for (let i = 0; i < 8; i++) {
        const del = await run(p, binary, ["-w", "5", "-t", j.table, "-D", j.builtin, ...j.spec], "remove a jump");
        if (del.exitCode !== 0) break;
        found = true;
      }
    }
    for (const table of Object.keys(IPT_CHAINS) as IptTable[]) {
      for (const chain of new Set(Object.values(IPT_CHAINS[table]))) {
        const flushed = await run(p, binary, ["-w", "5", "-t", table, "-F", chain], "flush a chain");
        if (flushed.exitCode !== 0) continue;
        found = true;
        await mustRun(p, binary, ["-w", "5", "-t", table, "-X", chain], `delete chain ${table}/${chain}`);
      }
    }
  }
  for (const name of await listOurSets(bin.ipset, p)) {
    found = true;
    await mustRun(p, bin.ipset, ["destroy", name], `destroy ipset ${name}`);
  }
  return found;
}

