/**
 * The root helper's part of the error catalogue (errors-apps.ts has the rest; error-fixes.ts the fix for
 * every code, apart so that the helper does not load it): exit status and message shape per code.
 */
export interface ExitError { readonly exit: number; readonly message: string }

export const ROOT_ERRORS = {
  USAGE: { exit: 2, message: "<flag>: <what is wrong with it>" },
  CONFIG_NOT_FOUND: { exit: 2, message: "<file>: no such file" },
  CONFIG_UNREADABLE: { exit: 2, message: "<file>: cannot read it (<errno>)" },
  CONFIG_YAML: { exit: 2, message: "<file>: YAML syntax error at line <n>: <reason>" },
  CONFIG_INVALID: { exit: 2, message: "<file>: <key path>: <problem> (one line per problem)" },
  FIREWALL_COMMAND_FAILED: { exit: 1, message: "nft|iptables|vbash failed to <what> (exit <n>): <stderr>" },
  CONNTRACK_MISSING: { exit: 1, message: "conntrack not found …" },
  VYOS_BOOTSTRAP_NEEDED: { exit: 1, message: "VyOS needs a one-time bootstrap as root: <script>" },
  SOCKET_SETUP_FAILED: { exit: 1, message: "<--socket flag> <path|group>: <problem>" },
  FORWARDING_DISABLED: { exit: 1, message: "<file>: forwarded apps need net.ipv4.ip_forward=1 …" },
  INSTANCE_LOCKED: { exit: 1, message: "<what>: <lock file> is held by another process" },
  PRIVATE_DIR_UNUSABLE: { exit: 1, message: "<flag> <dir>: is not a folder | owned by another user (…) | writable by its group (…)" },
} as const satisfies Record<string, ExitError>;

/** What the helper answers over JSON-RPC besides the standard errors (`code` is the wire code). Stable. */
export const HELPER_ERRORS = {
  UNKNOWN_APP: { code: -32001, message: "unknown app" },
  STEP1_REQUIRED: { code: -32002, message: "step 2 requires a live step-1 lease for this app and address" },
  FIREWALL_FAILED: { code: -32003, message: "the firewall refused the change" },
  INVALID_ADDRESS: { code: -32004, message: "not a unicast IPv4 or IPv6 address" },
  OVERLOADED: { code: -32005, message: "helper is busy, retry later" },
  DURATION_TOO_LONG: { code: -32007, message: "durationSeconds exceeds the app's configured duration" },
  TOO_MANY_LEASES: { code: -32008, message: "the app has max_leases live leases for this address family; nothing was opened" },
  METHOD_NOT_ALLOWED: { code: -32009, message: "method not allowed on this socket" },
} as const;
export type HelperErrorName = keyof typeof HELPER_ERRORS;

/** The exit status for `err` per `catalogue`, or undefined when its code is not catalogued (a bug). */
export function exitStatusOf(err: unknown, catalogue: Readonly<Record<string, ExitError>>): number | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" && Object.hasOwn(catalogue, code) ? catalogue[code]!.exit : undefined;
}

/** Ends a failed process: a catalogued error prints its message alone; anything else is a bug, one line, no stack trace. */
export function exitOnError(program: string, catalogue: Readonly<Record<string, ExitError>>, err: unknown): never {
  const status = exitStatusOf(err, catalogue);
  process.stderr.write(`${program}: ${status === undefined ? "unexpected error: " : ""}${(err as Error)?.message ?? String(err)}\n`);
  process.exit(status ?? 1);
}
