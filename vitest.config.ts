import { defineConfig } from "vitest/config";

// Unit tests: fast, no root, no kernel. Workspace packages resolve to their TypeScript sources.
export default defineConfig({
  resolve: { conditions: ["source"] },
  test: {
    include: ["packages/*/test/**/*.test.ts", "apps/*/test/**/*.test.ts", "deploy/test/**/*.test.ts", "test/docs/**/*.test.ts", "test/lint/**/*.test.ts"],
    environment: "node",
    testTimeout: 20_000,
  },
});
