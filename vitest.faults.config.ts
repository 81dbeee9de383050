import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const pkg = (name: string): string => fileURLToPath(new URL(`./packages/${name}/src/index.ts`, import.meta.url));

// Fault and hostile-input tests (test/faults): property-based fuzzing of the server and the helper
// socket, rate limit, slow-loris. Slower than the unit suite (about 30 s), so run
// separately: pnpm test:faults. One file at a time so timing and fd/memory figures do not interfere.
// The suite imports the apps' sources by relative path; the aliases make the workspace packages
// resolve to the same source modules (one HelperError class, not one from src and one from dist).
export default defineConfig({
  resolve: {
    conditions: ["source"],
    alias: {
      "@knockport/protocol": pkg("protocol"),
      "@knockport/config": pkg("config"),
      "@knockport/firewall": pkg("firewall"),
      "@knockport/helper-client": pkg("helper-client"),
    },
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
