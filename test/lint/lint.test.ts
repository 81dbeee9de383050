import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";

// `pnpm lint` as a unit test, so every change that passes the unit suite also passes the lint that
// scripts/test.sh (CI) runs.
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

describe("lint", () => {
  it("eslint.config.js finds no problem in the workspace", { timeout: 180_000 }, async () => {
    const eslint = new ESLint({ cwd: root });
    const results = await eslint.lintFiles(["."]);
    const problems = results.flatMap((r) =>
      r.messages.map((m) => `${relative(root, r.filePath)}:${m.line}:${m.column} ${m.ruleId ?? "parse"}: ${m.message}`),
    );
    expect(results.length).toBeGreaterThan(100);
    expect(problems).toEqual([]);
  });
});
