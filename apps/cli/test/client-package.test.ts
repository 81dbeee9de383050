// The client package as it ships: scripts/package-client.sh bundles knock-main.ts into one CommonJS
// file; unpacked anywhere, that file must start with nothing but Node (no workspace, no node_modules).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;
/** A PATH with node and nothing of the workspace. */
const PATH = `${dirname(process.execPath)}:/usr/bin:/bin`;
let unpacked: string;

beforeAll(() => {
  const pack = spawnSync("bash", [join(REPO_ROOT, "scripts/package-client.sh")], { cwd: REPO_ROOT, encoding: "utf8", timeout: 120_000 });
  expect(pack.status, pack.stderr).toBe(0);
  unpacked = mkdtempSync(join(tmpdir(), "knockport-client-unit-"));
  const tar = spawnSync("tar", ["-xzf", join(REPO_ROOT, "dist", `knockport-client-${VERSION}.tgz`), "-C", unpacked], { encoding: "utf8" });
  expect(tar.status, tar.stderr).toBe(0);
}, 120_000);

afterAll(() => {
  if (unpacked) rmSync(unpacked, { recursive: true, force: true });
});

it("the bundled knockport-knock prints its usage from an empty directory", () => {
  const r = spawnSync(process.execPath, [join(unpacked, "package", "bin", "knockport-knock.cjs"), "--help"], { cwd: unpacked, encoding: "utf8", env: { PATH }, timeout: 10_000 });
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/^Usage: knockport-knock --host HOST/);
});

it("the bundled knockport-knock rejects bad input with a one-line error and exit code, not a stack trace", () => {
  const r = spawnSync(process.execPath, [join(unpacked, "package", "bin", "knockport-knock.cjs"), "--host"], { cwd: unpacked, encoding: "utf8", env: { PATH }, timeout: 10_000 });
  expect(r.status).not.toBe(0);
  expect(r.status).not.toBe(null);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stderr.trim().length).toBeGreaterThan(0);
});
