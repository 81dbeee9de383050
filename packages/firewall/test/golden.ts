import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";

const PACKAGES = join(dirname(fileURLToPath(import.meta.url)), "../..");

/** Each golden file lives with the backend that renders it: test/golden of that package. */
export function goldenDir(name: string): string {
  const owner = /^(ipset|iptables)/.test(name) ? "backend-iptables" : name.startsWith("vyos") ? "backend-vyos" : "backend-nftables";
  return join(PACKAGES, owner, "test/golden");
}

/** Compare `actual` with <package>/test/golden/<name> byte for byte; UPDATE_GOLDEN=1 rewrites the file instead. */
export function expectGolden(name: string, actual: string): void {
  const dir = goldenDir(name);
  const file = join(dir, name);
  if (process.env.UPDATE_GOLDEN === "1") {
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  let expected: string;
  try {
    expected = readFileSync(file, "utf8");
  } catch {
    throw new Error(`golden file ${file} is missing; run UPDATE_GOLDEN=1 npx vitest run packages/ and review it`);
  }
  expect(actual, `differs from ${file}; if the change is intended run with UPDATE_GOLDEN=1 and review the diff`).toBe(expected);
}
