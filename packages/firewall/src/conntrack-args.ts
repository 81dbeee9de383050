import { existsSync } from "node:fs";
import type { FirewallApp as AppConfig, FirewallConfig as KnockportConfig } from "@knockport/config/firewall";
import { ipFamily, type IpAddress } from "@knockport/protocol";

const CONNTRACK_CANDIDATES = ["/usr/sbin/conntrack", "/sbin/conntrack", "/usr/bin/conntrack"];
/** An app has `close_established: true` but the conntrack tool is missing. */
export class ConntrackMissingError extends Error {
  readonly code = "CONNTRACK_MISSING";
  constructor(message: string) {
    super(message);
    this.name = "ConntrackMissingError";
  }
}

/**
 * The conntrack binary when some app has `close_established: true`, undefined when none has; refuses
 * to start without it (the admin asked for flows to be cut, a silent no-op would hide that they are not).
 */
export function locateConntrackFor(config: KnockportConfig, exists: (p: string) => boolean = existsSync): string | undefined {
  const apps = config.apps.filter((a) => a.closeEstablished).map((a) => a.name);
  if (apps.length === 0) return undefined;
  const found = CONNTRACK_CANDIDATES.find((p) => exists(p));
  if (found === undefined) {
    throw new ConntrackMissingError(
      `${config.file}: ${apps.map((a) => `${a}.close_established`).join(", ")} is true but conntrack was not found ` +
        `(looked in ${CONNTRACK_CANDIDATES.join(", ")}); install it (apt-get install conntrack) or set it to false`,
    );
  }
  return found;
}

/**
 * `conntrack -D` arguments deleting the flows `ip` started to `app`'s service port. The filter is on the
 * ORIGINAL tuple (client source, protocol, destination port as the client sent it), which for a forwarded
 * app is the public port before DNAT, so one command line serves local and forwarded apps. The address
 * comes last: knockport print-sudoers allows these lines with only the address left open.
 */
export function conntrackDeleteArgs(app: Pick<AppConfig, "protocol" | "port">, ip: IpAddress): string[] {
  return conntrackDeletePrefix(app, ipFamily(ip)).concat(ip);
}

/** conntrackDeleteArgs without the address (for knockport print-sudoers). */
export function conntrackDeletePrefix(app: Pick<AppConfig, "protocol" | "port">, family: 4 | 6): string[] {
  return ["-D", "-f", family === 4 ? "ipv4" : "ipv6", "-p", app.protocol, "--orig-port-dst", String(app.port), "--orig-src"];
}
