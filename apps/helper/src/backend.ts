import type { Logger } from "./log.js";
import type { IpAddress } from "@knockport/protocol";
import type { KernelElement } from "./nft-elements.js";

export type SetChange =
  | { readonly op: "grant"; readonly set: string; readonly ip: IpAddress; readonly timeoutSeconds: number }
  | { readonly op: "revoke"; readonly set: string; readonly ip: IpAddress };

/** What the lease logic needs from a firewall; one implementation per --firewall-type. */
export interface FirewallBackend {
  readonly type: "nftables" | "iptables" | "vyos";
  /** The exact ruleset `install` applies (for --dry-run). */
  renderRuleset(): string;
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
  watch?(onChange: (reason: string) => void, log: Logger): () => void;
  /**
   * Elements of our lease sets as the kernel holds them, with the time left (for reconciling kernel and
   * lease book); undefined when our table is absent. Optional: backends without it are not reconciled.
   */
  listElements?(sets: ReadonlySet<string>): Promise<readonly KernelElement[] | undefined>;
  /**
   * Interfaces of the config missing right now (global.allow_missing_interfaces): the next `install`
   * and `renderRuleset` drop their apps' ports on every interface. Optional: a backend without it
   * cannot run with interfaces allowed to be missing.
   */
  setMissingInterfaces?(names: readonly string[]): void;
  /** Remove our table; false when it was not there. */
  uninstall(): Promise<boolean>;
}
