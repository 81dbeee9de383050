export type FirewallErrorCode =
  /** An app uses `destination: IP[:PORT]`; this version only opens local services. */
  | "FORWARDING_UNSUPPORTED"
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

/** The config asks for something this version cannot build rules for. */
export class UnsupportedConfigError extends FirewallError {
  /** The apps that caused it, in config order. */
  readonly apps: readonly string[];
  constructor(apps: readonly string[]) {
    super(
      "FORWARDING_UNSUPPORTED",
      apps
        .map((app) => `${app}.destination: destination forwarding is not supported by this version yet; use destination: local`)
        .join("\n"),
    );
    this.name = "UnsupportedConfigError";
    this.apps = apps;
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
