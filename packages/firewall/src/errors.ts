export type FirewallErrorCode =
  /** A value about to be written into a rule failed its (second) validation. A bug, never user input. */
  | "INVALID_VALUE"
  /** A grant names an app the config does not have. */
  | "UNKNOWN_APP"
  /** An element targets a set the ruleset does not define. */
  | "UNKNOWN_SET";

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

/** Defence in depth: a value failed the check repeated right before it is interpolated into nft text. */
export class InvalidValueError extends FirewallError {
  constructor(
    /** What the value is, e.g. "interface name"; the value itself is not echoed when it may be secret. */
    readonly what: string,
    detail: string,
  ) {
    super("INVALID_VALUE", `refusing to build a firewall rule: ${what} ${detail}`);
    this.name = "InvalidValueError";
  }
}
