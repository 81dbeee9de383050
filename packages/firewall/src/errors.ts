/** INVALID_VALUE: a set element (address, lease time, set) failed its check right before interpolation; UNKNOWN_APP, UNKNOWN_SET. */
export type FirewallErrorCode = "INVALID_VALUE" | "UNKNOWN_APP" | "UNKNOWN_SET";

/** Every error this package throws; `code` is stable, `message` is for people. */
export class FirewallError extends Error {
  constructor(
    readonly code: FirewallErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "FirewallError";
  }
}

export class InvalidValueError extends FirewallError {
  constructor(
    /** What the value is ("interface name"); the value itself is not echoed when it may be secret. */
    readonly what: string,
    detail: string,
  ) {
    super("INVALID_VALUE", `refusing to build a firewall rule: ${what} ${detail}`);
    this.name = "InvalidValueError";
  }
}
