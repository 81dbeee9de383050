/**
 * Entry point of scripts/demo.sh (the README's quick start). It lives in the test bed, not in the
 * production CLI, so that the installed package carries no test bed.
 */
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { runDemo } from "./demo.js";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

const args = process.argv.slice(2);
if (args.includes("-h") || args.includes("--help")) {
  process.stdout.write("Usage: scripts/demo.sh   (needs root; builds and removes its own network namespaces)\n");
  process.exit(0);
}
if (args.length > 0) {
  process.stderr.write(`demo: unknown argument "${args[0]}"; see --help\n`);
  process.exit(2);
}
runDemo({ repoRoot: REPO_ROOT, log: (line) => process.stdout.write(`${line}\n`) }).then(
  (code) => process.stdout.write("", () => process.exit(code)),
  (err: unknown) => {
    process.stderr.write(`demo: unexpected error: ${(err as Error)?.message ?? String(err)}\n`);
    process.exit(1);
  },
);
