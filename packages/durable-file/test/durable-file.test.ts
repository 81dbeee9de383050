import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { makeDirs, writeFileDurably } from "../src/index.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "kp-durable-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("writeFileDurably", () => {
  it("replaces the file whole, mode 0600, and leaves no temporary file", () => {
    const file = join(dir, "state.json");
    writeFileSync(file, "old", { mode: 0o644 });
    writeFileDurably(file, '{"new":true}');
    expect(readFileSync(file, "utf8")).toBe('{"new":true}');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(["state.json"]);
  });

  it("on failure keeps the old content and removes its temporary file", () => {
    const file = join(dir, "state.json");
    writeFileSync(file, "old");
    // renaming onto a non-empty directory fails after the temporary file was written
    const target = join(dir, "a-directory");
    makeDirs(join(target, "inside"), 0o700);
    expect(() => writeFileDurably(target, "new")).toThrow();
    expect(readFileSync(file, "utf8")).toBe("old");
    expect(readdirSync(dir).sort()).toEqual(["a-directory", "state.json"]);
  });
});

describe("makeDirs", () => {
  it("creates every missing level with the mode and accepts existing ones", () => {
    const deep = join(dir, "a", "b", "c");
    makeDirs(deep, 0o700);
    makeDirs(deep, 0o700);
    expect(statSync(deep).isDirectory()).toBe(true);
    expect(statSync(join(dir, "a")).mode & 0o777).toBe(0o700);
  });
});
