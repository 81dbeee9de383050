import { readFileSync } from "node:fs";
import { ConfigError } from "./errors.js";
import type { FirewallConfig, InterfaceCheck } from "./types.js";

/**
 * Names of this network namespace's interfaces, up or down, with or without an address. Read from
 * /proc/self/net/dev, which always shows the reading process's own network namespace (sysfs shows the
 * one it was mounted in, os.networkInterfaces() only interfaces that have an address).
 */
export function listHostInterfaces(procNetDev = "/proc/self/net/dev"): string[] {
  // two header lines, then "  name: counters..."
  return readFileSync(procNetDev, "utf8").split("\n").slice(2).map((line) => line.split(":")[0]?.trim() ?? "").filter((name) => name !== "");
}

/** Every interface name the config uses, with the keys that use it (`global.interface_ext`, `ssh.interface_int`...). */
export function usedInterfaces(config: FirewallConfig): Map<string, string[]> {
  const used = new Map<string, string[]>();
  const users: [string, string, string][] = [
    ["global", config.global.interfaceExt, config.global.interfaceInt],
    ...config.apps.map((a): [string, string, string] => [a.name, a.interfaceExt, a.interfaceInt]),
  ];
  for (const [owner, ext, int] of users) {
    for (const [name, key] of [[ext, `${owner}.interface_ext`], [int, `${owner}.interface_int`]] as const) {
      if (!used.get(name)?.includes(key)) used.set(name, [...(used.get(name) ?? []), key]);
    }
  }
  return used;
}

/** Which of the config's interfaces are missing from `present`, split into allowed (waiting) and refused. */
export function checkInterfaces(config: FirewallConfig, present: readonly string[]): InterfaceCheck {
  const allowed = new Set(config.global.allowMissingInterfaces ?? []);
  const check: InterfaceCheck = { waiting: [], problems: [], unlisted: [] };
  for (const [name, keys] of usedInterfaces(config)) {
    if (present.includes(name)) continue;
    if (allowed.has(name)) check.waiting.push(name);
    else {
      check.unlisted.push(name);
      check.problems.push(
        `${config.file}: ${keys.join(", ")}: interface ${name} does not exist on this host (it has ${present.join(", ") || "none"}); ` +
          "a rule on a missing interface matches nothing, so its ports would be open to everyone. Fix the name, or, for an " +
          "interface that appears later (ppp, VPN), list it in global.allow_missing_interfaces",
      );
    }
  }
  return check;
}

/** Throws a ConfigError (exit 2) naming every interface of the config this host lacks and may not lack. */
export function refuseMissingInterfaces(config: FirewallConfig, present: readonly string[] = listHostInterfaces()): InterfaceCheck {
  const check = checkInterfaces(config, present);
  if (check.problems.length > 0) throw new ConfigError("CONFIG_INVALID", config.file, check.problems);
  return check;
}
