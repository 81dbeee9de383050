/**
 * The installed package carries no test bed: no production source of the apps imports
 * @knockport/testbed, and no app or package it depends on at run time lists it as a dependency.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const RUNTIME_DIRS = ["apps/cli", "apps/helper", "apps/server", ...readdirSync(join(REPO, "packages")).filter((p) => p !== "testbed").map((p) => `packages/${p}`)];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => join(e.parentPath, e.name));
}

describe("production code and the test bed", () => {
  it.each(RUNTIME_DIRS)("%s: no production dependency on @knockport/testbed", (dir) => {
    const pkg = JSON.parse(readFileSync(join(REPO, dir, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
    expect(Object.keys(pkg.dependencies ?? {})).not.toContain("@knockport/testbed");
  });

  it.each(RUNTIME_DIRS)("%s: no source file imports @knockport/testbed", (dir) => {
    const offenders = sourceFiles(join(REPO, dir, "src")).filter((f) => readFileSync(f, "utf8").includes("@knockport/testbed"));
    expect(offenders).toEqual([]);
  });
});
