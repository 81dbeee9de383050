import type { FirewallBackend, SetChange } from "../src/backend.js";

/** A firewall backend that only records the set changes it is asked to apply (service-level tests). */
export class RecordingFirewall implements FirewallBackend {
  readonly type = "nftables" as const;
  readonly changes: SetChange[] = [];
  renderRuleset(): string {
    return "";
  }
  async install(): Promise<void> {}
  async apply(changes: readonly SetChange[]): Promise<void> {
    this.changes.push(...changes);
  }
  async uninstall(): Promise<boolean> {
    return true;
  }
}
