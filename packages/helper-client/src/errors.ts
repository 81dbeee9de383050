import type { HelperErrorName } from "@knockport/protocol";

export type HelperCallErrorCode =
  | "HELPER_UNREACHABLE" // no socket, refused, or the connection dropped mid-call
  | "HELPER_TIMEOUT"
  | "HELPER_PROTOCOL" // the helper answered something that is not a valid response
  | "HELPER_REJECTED"; // the helper answered a JSON-RPC error

export class HelperCallError extends Error {
  constructor(
    readonly code: HelperCallErrorCode,
    message: string,
    /** Set for HELPER_REJECTED: the named error from the method table, if the code maps to one. */
    readonly helperError?: HelperErrorName,
    readonly rpcCode?: number,
    /**
     * False only when the request was never written to the helper (no connection): then, like
     * HELPER_REJECTED, nothing was done. A timeout or a dropped connection after sending leaves it
     * unknown whether the helper acted.
     */
    readonly requestSent: boolean = true,
  ) {
    super(message);
    this.name = "HelperCallError";
  }
}
