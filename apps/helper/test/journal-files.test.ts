import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { IpAddress } from "@knockport/protocol";
import { LeaseBook, LeaseJournal } from "../src/leases.js";

const asRoot = process.geteuid?.() === 0;
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "kp-journal-files-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("LeaseJournal: the state dir and planted links (real filesystem)", () => {
  it("refuses a group-writable state dir with the path, the mode and the fix", () => {
    const state = join(dir, "state");
    mkdirSync(state, { mode: 0o700 });
    chmodSync(state, 0o770);
    expect(() => new LeaseJournal(state).prepare()).toThrow(new RegExp(`--state-dir ${state}: writable by its group .*mode 0770.*chmod go-w`));
  });

  it.runIf(asRoot)("refuses a state dir owned by another user (root helper, dir of nobody)", () => {
    const state = join(dir, "state");
    mkdirSync(state, { mode: 0o700 });
    chownSync(state, 65534, 65534);
    expect(() => new LeaseJournal(state).prepare()).toThrow(/owned by another user \(owner uid 65534/);
  });

  it("a link planted at leases.log is never followed: the commit fails, its target stays as it was", () => {
    const state = join(dir, "state");
    const journal = new LeaseJournal(state);
    journal.prepare();
    const book = new LeaseBook();
    for (let i = 0; i < 20; i += 1) book.put({ app: "ssh", ip: `198.18.0.${i + 1}` as IpAddress, step: 2, expiresAtMs: 2e12 });
    journal.commit(book); // snapshot
    const victim = join(dir, "victim");
    writeFileSync(victim, "keep");
    symlinkSync(victim, journal.logFile);
    book.put({ app: "ssh", ip: "198.18.1.1" as IpAddress, step: 2, expiresAtMs: 2e12 });
    expect(() => journal.commit(book)).toThrow(/leases\.log \(ELOOP\)/);
    expect(readFileSync(victim, "utf8")).toBe("keep");
    expect(existsSync(victim)).toBe(true);
  });
});
