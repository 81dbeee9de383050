/** The rest of the error catalogue (errors.ts has the root helper's part): the server's, the CLI's and the hooks runner's. */
import { HELPER_ERRORS, ROOT_ERRORS, type ExitError } from "./errors.js";

export { HELPER_ERRORS, ROOT_ERRORS, exitOnError, exitStatusOf, type ExitError, type HelperErrorName } from "./errors.js";

export const SERVER_ERRORS = {
  STARTUP: { exit: 1, message: "cannot listen on port <n>: <errno> | --state-dir <dir>: … | the helper's config differs: …" },
  CLUSTER_CONFIG: { exit: 1, message: "global.cluster.password_file|tls.ca_file <file>: <problem> (reported as STARTUP)" },
  TOKEN_STORE_UNAVAILABLE: { exit: 1, message: "<file>: cannot use it as user <user> (<errno>) (at start-up: STARTUP)" },
  TOKEN_STORE_WRITE_FAILED: { exit: 1, message: "<file>: cannot write it (<errno>); the 2FA knock is refused" },
  TOKEN_STORE_FULL: { exit: 1, message: "<file>: more than <n> entries; the 2FA knock is refused" },
} as const satisfies Record<string, ExitError>;

export const CLI_ERRORS = {
  ADMIN_FAILED: { exit: 1, message: "--app|--ip|--duration <value>: <why the helper refused>" },
  HELPER_UNREACHABLE: { exit: 1, message: "cannot reach the helper at <socket> (<errno>)" },
  HELPER_TIMEOUT: { exit: 1, message: "the helper did not answer <method> in time" },
  HELPER_PROTOCOL: { exit: 1, message: "the helper answered something that is not a valid response" },
  HELPER_REJECTED: { exit: 1, message: "helper refused <method>: <helper error message>" },
  KNOCK_STEP1_UNREACHABLE: { exit: 3, message: "step 1: cannot connect to <address> port <port> (<errno>)" },
  KNOCK_STEP2_UNREACHABLE: { exit: 4, message: "step 2: cannot connect … | step 1: refused (403): wrong app, key or 2FA token" },
  KNOCK_STEP2_REFUSED: { exit: 5, message: "step 2: refused (403) …" },
  KNOCK_TLS: { exit: 6, message: "step 2: the certificate is not trusted (<reason>)" },
  KNOCK_OTHER_ANSWER: { exit: 7, message: "step 1|2: answered <status> (<why>)" },
  KNOCK_CHECK_FAILED: { exit: 8, message: "check: <protocol>/<port> on <address> is silent|closed" },
} as const satisfies Record<string, ExitError>;

export const HOOKS_ERRORS = {
  HOOKS_RECORD_UNREADABLE: { exit: 1, message: "<record file>: not JSON | not a knockport-hooks record | malformed entry …" },
} as const satisfies Record<string, ExitError>;

/** Bugs, never bad input: printed as "unexpected error: <message>", exit 1. */
export const INTERNAL_ERRORS = {
  INVALID_VALUE: { exit: 1, message: "refusing to build a firewall rule: <what> <detail>" },
  UNKNOWN_SET: { exit: 1, message: "cannot re-add an element to set <name>: this ruleset does not define it" },
  FRAME_TOO_LARGE: { exit: 1, message: "a JSON-RPC frame exceeds <n> bytes (answered as INVALID_REQUEST)" },
  NFT_SESSION_FAILED: { exit: 1, message: "the nft session failed (reported as FIREWALL_COMMAND_FAILED)" },
  NFT_LISTING_UNREADABLE: { exit: 1, message: "nft's listing is not what KnockPort wrote (reported as FIREWALL_COMMAND_FAILED)" },
} as const satisfies Record<string, ExitError>;

/** Every code a process ends with on purpose; the CLI and server pick their exit status here. */
export const EXIT_ERRORS = { ...ROOT_ERRORS, ...SERVER_ERRORS, ...CLI_ERRORS, ...HOOKS_ERRORS } as const;
export type ExitErrorCode = keyof typeof EXIT_ERRORS;
export type ErrorCode = ExitErrorCode | keyof typeof INTERNAL_ERRORS | keyof typeof HELPER_ERRORS;
