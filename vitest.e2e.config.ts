import { defineConfig } from "vitest/config";

// End-to-end tests: real network namespaces, real nftables, the real helper and server from bin/.
// They need root and run one file at a time so namespaces and timings do not interfere.
export default defineConfig({
  resolve: { conditions: ["source"] },
  test: {
    include: ["test/e2e/**/*.test.ts"],
    environment: "node",
    pool: "forks",
    poolOptions: { forks: { singleFork: true } },
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
