import { existsSync, readFileSync } from "node:fs";
import { pino, type Logger } from "pino";
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

/** The calls a recorder script appended to `file`: one per line, its arguments tab-separated. */
export function recordedCalls(file: string): string[][] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8").split("\n").filter((l) => l !== "").map((l) => l.split("\t"));
}

/** A logger that keeps every line it writes, parsed, in `lines`. */
export function capturingLogger(lines: Record<string, unknown>[]): Logger {
  return pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
}
