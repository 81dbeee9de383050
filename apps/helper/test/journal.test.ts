import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { IpAddress } from "@knockport/protocol";
import { LeaseBook, LeaseJournal, type Lease } from "../src/leases.js";

const T0 = Date.UTC(2030, 0, 1);
const ip = (i: number): IpAddress => `198.18.${Math.floor(i / 250)}.${(i % 250) + 1}` as IpAddress;
const lease = (i: number, expiresAtMs = T0 + 3600_000, step: 1 | 2 = 2): Lease => ({ app: "ssh", ip: ip(i), step, expiresAtMs });
const byKey = (leases: readonly Lease[]): Record<string, number> =>
  Object.fromEntries(leases.map((l) => [`${l.step}|${l.app}|${l.ip}`, l.expiresAtMs]));

describe("LeaseJournal: snapshot plus change log", () => {
  let dir: string;
  let journal: LeaseJournal;
  let book: LeaseBook;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "kp-journal-"));
    journal = new LeaseJournal(join(dir, "state"));
    journal.prepare();
    book = new LeaseBook();
    for (let i = 0; i < 200; i += 1) book.put(lease(i));
    journal.commit(book); // first commit: a snapshot
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("a commit with a large book appends only the changed leases; a restart sees the snapshot plus the log", () => {
    const snapshot = readFileSync(journal.file, "utf8");
    expect(existsSync(journal.logFile)).toBe(false);
    book.put(lease(7, T0 + 10)); // refreshed
    book.delete(2, "ssh", ip(8)); // closed
    book.put(lease(500)); // new
    journal.commit(book);
    expect(readFileSync(journal.file, "utf8"), "the snapshot is not rewritten").toBe(snapshot);
    const log = readFileSync(journal.logFile, "utf8").trimEnd().split("\n");
    expect(log).toHaveLength(4); // header + 3 records
    const restored = new LeaseJournal(journal.dir).load();
    expect(restored.problem).toBeUndefined();
    expect(byKey(restored.leases)).toEqual(byKey(book.all()));
    expect(restored.leases).toHaveLength(200);
  });

  it("a torn last line (crash mid-append) is dropped; a malformed line before the end stops the replay with a problem", () => {
    book.put(lease(7, T0 + 10));
    journal.commit(book);
    const acknowledged = byKey(book.all());
    writeFileSync(journal.logFile, `${readFileSync(journal.logFile, "utf8")}{"put":{"app":"ssh","ip":"198.18`, { flag: "w" });
    const torn = new LeaseJournal(journal.dir).load();
    expect(torn.problem).toBeUndefined();
    expect(byKey(torn.leases)).toEqual(acknowledged);

    const lines = readFileSync(journal.logFile, "utf8").split("\n");
    writeFileSync(journal.logFile, [lines[0], "not json", lines[1], ""].join("\n"));
    const broken = new LeaseJournal(journal.dir).load();
    expect(broken.problem).toMatch(/leases\.log from line 2 on \(malformed\)/);
    expect(broken.leases).toHaveLength(200);
  });

  it("a log left over from an older snapshot (crash between the new snapshot and the log's removal) is ignored", () => {
    book.delete(2, "ssh", ip(3));
    journal.commit(book);
    const oldLog = readFileSync(journal.logFile, "utf8");
    book.put(lease(3)); // back again, then a new snapshot
    journal.save(book.all());
    book.takeChanged();
    writeFileSync(journal.logFile, oldLog); // as if the removal had not reached the disk
    const restored = new LeaseJournal(journal.dir).load();
    expect(byKey(restored.leases)[`2|ssh|${ip(3)}`], "the old log's delete must not apply to the newer snapshot").toBe(T0 + 3600_000);
    expect(restored.leases).toHaveLength(200);
  });

  it("once the log would outgrow the snapshot, the whole book becomes the new snapshot and the log starts over", () => {
    const snapshotBytes = statSync(journal.file).size;
    let compacted = false;
    for (let round = 1; round <= 400 && !compacted; round += 1) {
      book.put(lease(round % 200, T0 + round));
      journal.commit(book);
      compacted = !existsSync(journal.logFile);
      if (!compacted) expect(statSync(journal.logFile).size).toBeLessThanOrEqual(snapshotBytes);
    }
    expect(compacted, "a snapshot replaced the log within 400 commits").toBe(true);
    expect(byKey(new LeaseJournal(journal.dir).load().leases)).toEqual(byKey(book.all()));
  });

  it("after a failed append the next commit writes a snapshot (the log's tail is unknown)", () => {
    mkdirSync(journal.logFile); // opening it for writing fails (EISDIR)
    book.put(lease(9, T0 + 5));
    expect(() => journal.commit(book)).toThrow(/cannot write .*leases\.log \(EISDIR\)/);
    rmSync(journal.logFile, { recursive: true });
    book.put(lease(10, T0 + 6));
    journal.commit(book);
    expect(existsSync(journal.logFile), "a snapshot, not an append").toBe(false);
    expect(byKey(new LeaseJournal(journal.dir).load().leases)).toEqual(byKey(book.all()));
  });

  it("a snapshot without a log id (older helper, or written by hand) takes no log", () => {
    book.delete(2, "ssh", ip(1));
    journal.commit(book);
    writeFileSync(journal.file, JSON.stringify({ version: 1, leases: [lease(1)] }));
    expect(new LeaseJournal(journal.dir).load().leases).toEqual([lease(1)]);
  });
});

describe("LeaseBook", () => {
  it("latestStep1Deadline follows puts, deletes and expiries of the address's step-1 leases only", () => {
    const book = new LeaseBook();
    book.put({ app: "ssh", ip: ip(1), step: 1, expiresAtMs: T0 + 30_000 });
    book.put({ app: "vpn", ip: ip(1), step: 1, expiresAtMs: T0 + 10_000 });
    book.put({ app: "ssh", ip: ip(1), step: 2, expiresAtMs: T0 + 99_000 });
    book.put({ app: "ssh", ip: ip(2), step: 1, expiresAtMs: T0 + 50_000 });
    expect(book.latestStep1Deadline(ip(1), T0)).toBe(T0 + 30_000);
    book.delete(1, "ssh", ip(1));
    expect(book.latestStep1Deadline(ip(1), T0)).toBe(T0 + 10_000);
    expect(book.latestStep1Deadline(ip(1), T0 + 10_000), "an ended lease does not count").toBeUndefined();
    book.takeExpired(T0 + 10_000);
    expect(book.latestStep1Deadline(ip(1), T0)).toBeUndefined();
    expect(book.latestStep1Deadline(ip(2), T0)).toBe(T0 + 50_000);
    expect(book.hasExpired(T0 + 50_000)).toBe(true);
    expect(book.hasExpired(T0 + 49_999)).toBe(false);
  });
});
