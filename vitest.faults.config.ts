import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const src = (file: string): string => fileURLToPath(new URL(`./packages/${file}`, import.meta.url));
/** An exact-name alias: a prefix alias would also rewrite "@knockport/firewall/run" into ".../index.ts/run". */
const exact = (name: string, file: string) => ({ find: new RegExp(`^${name.replace("/", "\\/")}$`), replacement: src(file) });

// Fault and hostile-input tests (test/faults): property-based fuzzing of the server and the helper
// socket, rate limit, slow-loris. Slower than the unit suite (about 30 s), so run
// separately: pnpm test:faults. One file at a time so timing and fd/memory figures do not interfere.
// The suite imports the apps' sources by relative path; the aliases make the workspace packages
// resolve to the same source modules (one HelperError class, not one from src and one from dist).
export default defineConfig({
  resolve: {
    conditions: ["source"],
    alias: [
      exact("@knockport/protocol", "protocol/src/index.ts"),
      exact("@knockport/protocol/client", "protocol/src/client.ts"),
      exact("@knockport/config", "config/src/index.ts"),
      exact("@knockport/firewall", "firewall/src/index.ts"),
      exact("@knockport/firewall/run", "firewall/src/run.ts"),
      exact("@knockport/helper-client", "helper-client/src/index.ts"),
    ],
  },
  test: {
    include: ["test/faults/**/*.test.ts"],
    environment: "node",
    pool: "forks",
    poolOptions: { forks: { singleFork: true, execArgv: ["--expose-gc"] } },
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 30_000,
  },
});
