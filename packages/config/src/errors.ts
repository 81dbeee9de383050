export type ConfigErrorCode = "CONFIG_NOT_FOUND" | "CONFIG_UNREADABLE" | "CONFIG_YAML" | "CONFIG_INVALID";

/**
 * A configuration problem the admin must fix. `problems` holds one line per issue, each already
 * naming the file and key path, so callers print them as they are and exit 2.
 */
export class ConfigError extends Error {
  constructor(
    readonly code: ConfigErrorCode,
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(problems.join("\n"));
    this.name = "ConfigError";
  }
}
