import { BlockList } from "node:net";
import { ipFamily, parseIpAddress, type IpAddress, type Port } from "@knockport/protocol";

/** Where the server's auth-check listener (for reverse proxies) listens: loopback TCP or a Unix socket. */
export type AuthCheckListen =
  | { readonly kind: "tcp"; readonly host: IpAddress; readonly port: Port }
  | { readonly kind: "unix"; readonly path: string };

export const AUTH_CHECK_LISTEN_HINT =
  "a loopback address and port such as 127.0.0.1:9180 or [::1]:9180, or an absolute Unix socket path such as /run/knockport-server/auth-check.sock";
/** sun_path holds 108 bytes with its terminating NUL. */
const UNIX_PATH_MAX = 107;

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/**
 * Parse `global.auth_check_listen` / `--auth-check-listen`. Only loopback addresses: the listener tells
 * whether an address holds a lease, which is nobody's business but the proxy's on this host.
 */
export function parseAuthCheckListen(text: string): AuthCheckListen | undefined {
  if (typeof text !== "string" || text.length === 0) return undefined;
  if (text.startsWith("/")) {
    const ok = Buffer.byteLength(text) <= UNIX_PATH_MAX && !text.includes("\0") && !text.endsWith("/") && !text.split("/").some((s) => s === "." || s === "..");
    return ok ? { kind: "unix", path: text } : undefined;
  }
  const m = /^(?:\[([0-9A-Fa-f:]+)\]|([0-9.]+)):([0-9]{1,5})$/.exec(text);
  if (!m) return undefined;
  const host = parseIpAddress(m[1] ?? m[2] ?? "");
  const port = Number(m[3]);
  if (!host || port < 1 || port > 65535) return undefined;
  if (!LOOPBACK.check(host, ipFamily(host) === 4 ? "ipv4" : "ipv6")) return undefined;
  return { kind: "tcp", host, port: port as Port };
}

/** For messages and logs: `127.0.0.1:9180`, `[::1]:9180` or the socket path. */
export function formatAuthCheckListen(l: AuthCheckListen): string {
  if (l.kind === "unix") return l.path;
  return l.host.includes(":") ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}`;
}
