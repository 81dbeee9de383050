import type { FirewallConfig as KnockportConfig } from "@knockport/config/firewall";
import type { IpAddress } from "@knockport/protocol";
import type { CustomChains } from "./names.js";
import type { Privilege } from "./privilege.js";

export type FirewallType = "nftables" | "iptables" | "vyos";

export type SetChange =
  | { readonly op: "grant"; readonly set: string; readonly ip: IpAddress; readonly timeoutSeconds: number }
  | { readonly op: "revoke"; readonly set: string; readonly ip: IpAddress };

/** One element of a lease set as the kernel holds it (for reconciling kernel and lease book). */
export interface KernelElement {
  readonly set: string;
  /** The address as the firewall tool printed it. */
  readonly ip: string;
  /** Milliseconds until the kernel removes it; Infinity when it has no timeout. */
  readonly expiresInMs: number;
  /** Packets and bytes the element's counter matched, when the set has per-element counters. */
  readonly packets?: number;
  readonly bytes?: number;
}

/** What a backend logs through (the helper's logger has this shape). */
export interface BackendLog {
  warn(fields: Record<string, unknown>, msg?: string): void;
}

/** How a backend is chosen and run: the helper's and the CLI's flags, checked. */
export interface BackendSpec {
  readonly type: FirewallType;
  readonly privilege: Privilege;
  /** nftables: `--nftables-table-filter` and its chains (undefined: our own table). */
  readonly customChains?: CustomChains | undefined;
  /** iptables: auto, nft, legacy or an absolute path to an iptables executable. */
  readonly iptablesBinary?: string;
  /** vyos: absolute path of vbash (default: the first vbash on PATH). */
  readonly vbash?: string | undefined;
}

/** What the lease logic needs from a firewall; one implementation per --firewall-type. */
export interface FirewallBackend {
  readonly type: FirewallType;
  /**
   * Replace our table atomically, with `grants` already in its sets: live leases survive a
   * reload without a moment in which their owners are locked out.
   */
  install(grants: readonly Extract<SetChange, { op: "grant" }>[]): Promise<void>;
  /** Apply grants/revokes as one transaction. */
  apply(changes: readonly SetChange[]): Promise<void>;
  /**
   * Whether the kernel holds exactly the rules the last install put there: our table / chains with all
   * their rules, hooks and priorities, sets and jumps, compared with their form right after that install
   * (set elements and counters aside). For self-healing after a reload from outside. Optional: backends
   * without it are never re-applied.
   */
  isInstalled?(): Promise<boolean>;
  /**
   * Calls `onChange` as soon as our rules may have changed (an `nft monitor` event, a change the kernel
   * refused because a set is gone), so the self-heal check runs at once rather than at its next tick.
   * Returns the function that stops watching. Optional: without it only the periodic check runs.
   */
  watch?(onChange: (reason: string) => void, log: BackendLog): () => void;
  /**
   * Elements of our lease sets as the kernel holds them, with the time left (for reconciling kernel and
   * lease book); undefined when our table is absent. Optional: backends without it are not reconciled.
   */
  listElements?(sets: ReadonlySet<string>): Promise<readonly KernelElement[] | undefined>;
  /**
   * Interfaces of the config missing right now (global.allow_missing_interfaces): the next `install`
   * drops their apps' ports on every interface. Optional: a backend without it
   * cannot run with interfaces allowed to be missing.
   */
  setMissingInterfaces?(names: readonly string[]): void;
}

/** A backend package's `runtime` module (loaded by the factory, @knockport/backends). */
export interface BackendRuntime {
  createBackend(config: KnockportConfig, spec: BackendSpec): Promise<FirewallBackend>;
  /** Remove our objects (knockport uninstall-firewall, as root); needs no config (VyOS: with one, its named chains are emptied too). */
  uninstall(spec: BackendSpec, config: KnockportConfig | undefined): Promise<boolean>;
}

/** A backend package's `sudoers` module. */
export interface BackendSudoers {
  /** Every command line (absolute program + exact arguments) the backend runs through `sudo -n`. */
  sudoCommands(spec: BackendSpec, config: KnockportConfig | undefined): string[][];
}

/** A backend package's `render` module: pure, no firewall binary needed. */
export interface BackendRender {
  /** Everything `install` would apply, as text. */
  renderDryRun(config: KnockportConfig, spec: Pick<BackendSpec, "customChains">): string;
}
