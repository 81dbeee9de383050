/**
 * `knockport-knock`: the knock client on its own, the one executable of the npm package
 * knockport-client (scripts/package-client.sh bundles it into a single file with no dependencies).
 * Same flags, settings and exit codes as `knockport knock`.
 */
import { ConfigError, UsageError } from "@knockport/config";
import { KNOCK_USAGE, KnockFailure, resolveKnockSettings, runKnock } from "./knock.js";

const NAME = "knockport-knock";

async function main(argv: string[]): Promise<number> {
  const settings = resolveKnockSettings({ argv, env: process.env, warn: (l) => process.stderr.write(`${NAME}: ${l}\n`) });
  if (settings === "help") return process.stdout.write(KNOCK_USAGE.replace("Usage: knockport knock ", `Usage: ${NAME} `)), 0;
  return runKnock(settings, { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`), stdin: process.stdin });
}

main(process.argv.slice(2)).then(
  (code) => process.stdout.write("", () => process.exit(code)),
  (err: unknown) => {
    if (err instanceof ConfigError || err instanceof UsageError) {
      process.stderr.write(`${NAME}: ${err.message}\n`);
      process.exit(2);
    }
    if (err instanceof KnockFailure) {
      process.stderr.write(`${NAME}: ${err.message}\n`);
      process.exit(err.exitCode);
    }
    process.stderr.write(`${NAME}: unexpected error: ${(err as Error)?.message ?? String(err)}\n`);
    process.exit(1);
  },
);
