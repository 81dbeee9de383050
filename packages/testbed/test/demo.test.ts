import { chmodSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { closedToOthers, runDemo } from "../src/demo.js";

describe("demo: a clone the server's user cannot reach", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const clone = (mode: number): { home: string; repo: string } => {
    const base = mkdtempSync(join(tmpdir(), "kp-demo-"));
    dirs.push(base);
    chmodSync(base, 0o755);
    const home = join(base, "root");
    const repo = join(home, "knockport");
    mkdirSync(repo, { recursive: true, mode: 0o755 });
    chmodSync(home, mode);
    return { home, repo };
  };

  it("names the first directory others may not enter, like /root (0700)", () => {
    const { home, repo } = clone(0o700);
    expect(closedToOthers(repo)).toBe(home);
    expect(closedToOthers(join(repo, "."))).toBe(home);
    chmodSync(home, 0o711);
    expect(closedToOthers(repo)).toBeUndefined();
  });

  it.skipIf(process.getuid?.() !== 0)("refuses before it builds anything, saying why (as root)", async () => {
    const { home, repo } = clone(0o700);
    const lines: string[] = [];
    expect(await runDemo({ repoRoot: repo, log: (l) => lines.push(l) })).toBe(2);
    expect(lines.join("\n")).toContain(`demo: the server runs as nobody, which cannot enter ${home} (mode 700)`);
  });
});
