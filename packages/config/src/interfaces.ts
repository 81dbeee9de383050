import { readFileSync } from "node:fs";
import { ConfigError } from "./errors.js";
import type { FirewallConfig } from "./types.js";

/**
 * Names of this network namespace's interfaces, up or down, with or without an address. Read from
 * /proc/self/net/dev, which always shows the reading process's own network namespace (sysfs shows the
 * one it was mounted in, os.networkInterfaces() only interfaces that have an address).
 */
export function listHostInterfaces(procNetDev = "/proc/self/net/dev"): string[] {
  return readFileSync(procNetDev, "utf8")
    .split("\n")
    .slice(2) // two header lines
    .map((line) => line.split(":")[0]?.trim() ?? "")
    .filter((name) => name !== "");
}

/** Every interface name the config uses, with the keys that use it (`global.interface_ext`, `ssh.interface_int`...). */
export function usedInterfaces(config: FirewallConfig): Map<string, string[]> {
  const used = new Map<string, string[]>();
  const note = (name: string, key: string): void => {
    const keys = used.get(name) ?? [];
    if (!keys.includes(key)) keys.push(key);
    used.set(name, keys);
  };
  note(config.global.interfaceExt, "global.interface_ext");
  note(config.global.interfaceInt, "global.interface_int");
  for (const app of config.apps) {
    note(app.interfaceExt, `${app.name}.interface_ext`);
    note(app.interfaceInt, `${app.name}.interface_int`);
  }
  return used;
}

export interface InterfaceCheck {
  /** Missing and listed in global.allow_missing_interfaces: the firewall fails closed on them until they appear. */
  readonly waiting: string[];
  /** One line per missing interface that is not allowed to be missing. */
  readonly problems: string[];
  /** The names of those (missing, not in global.allow_missing_interfaces). */
  readonly unlisted: string[];
}

/** Which of the config's interfaces are missing from `present`, split into allowed (waiting) and refused. */
export function checkInterfaces(config: FirewallConfig, present: readonly string[]): InterfaceCheck {
  const allowed = new Set(config.global.allowMissingInterfaces ?? []);
  const here = new Set(present);
  const waiting: string[] = [];
  const problems: string[] = [];
  const unlisted: string[] = [];
  for (const [name, keys] of usedInterfaces(config)) {
    if (here.has(name)) continue;
    if (allowed.has(name)) {
      waiting.push(name);
      continue;
    }
    unlisted.push(name);
    problems.push(
      `${config.file}: ${keys.join(", ")}: interface ${name} does not exist on this host (it has ${present.join(", ") || "none"}); ` +
        "a rule on a missing interface matches nothing, so its ports would be open to everyone. Fix the name, or, for an " +
        "interface that appears later (ppp, VPN), list it in global.allow_missing_interfaces",
    );
  }
  return { waiting, problems, unlisted };
}

/** Throws a ConfigError (exit 2) naming every interface of the config this host lacks and may not lack. */
export function refuseMissingInterfaces(config: FirewallConfig, present: readonly string[] = listHostInterfaces()): InterfaceCheck {
  const check = checkInterfaces(config, present);
  if (check.problems.length > 0) throw new ConfigError("CONFIG_INVALID", config.file, check.problems);
  return check;
}
