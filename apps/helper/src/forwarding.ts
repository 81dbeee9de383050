import { readFileSync } from "node:fs";
import type { FirewallConfig as KnockportConfig } from "@knockport/config/firewall";
import { forwardedApps } from "@knockport/firewall";

/** Forwarded apps are configured but the kernel does not route between interfaces. */
export class ForwardingDisabledError extends Error {
  readonly code = "FORWARDING_DISABLED";
  constructor(message: string) {
    super(message);
    this.name = "ForwardingDisabledError";
  }
}

const SYSCTL = {
  4: { file: "/proc/sys/net/ipv4/ip_forward", key: "net.ipv4.ip_forward" },
  6: { file: "/proc/sys/net/ipv6/conf/all/forwarding", key: "net.ipv6.conf.all.forwarding" },
} as const;

/**
 * Refuse to start when an app forwards to a LAN host of a family whose forwarding is off: the knock
 * would answer OK and nothing would get through. `read` is injectable for tests.
 */
export function checkForwarding(config: KnockportConfig, read: (file: string) => string = (f) => readFileSync(f, "utf8")): void {
  const problems: string[] = [];
  for (const family of [4, 6] as const) {
    const apps = forwardedApps(config).filter((f) => f.family === family);
    if (apps.length === 0) continue;
    const { file, key } = SYSCTL[family];
    let value: string;
    try {
      value = read(file).trim();
    } catch (err) {
      value = `unreadable (${(err as NodeJS.ErrnoException).code ?? "error"})`;
    }
    if (value !== "1") {
      const which = apps.map((f) => `${f.app.name}.destination (${f.ip})`).join(", ");
      problems.push(
        `${which}: IPv${family} forwarding is off (${file} is ${value}); enable it with "sysctl -w ${key}=1" ` +
          `and keep it in /etc/sysctl.d/, or use destination: local`,
      );
    }
  }
  if (problems.length > 0) throw new ForwardingDisabledError(`${config.file}: ${problems.join("\n")}`);
}
