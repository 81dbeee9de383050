import { existsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { NftSession, NftSessionError } from "../src/runtime/session.js";

const NFT = "/usr/sbin/nft";
const UNSHARE = "/usr/bin/unshare";
const canRun = process.getuid?.() === 0 && existsSync(NFT) && existsSync(UNSHARE);
const why = canRun ? "" : " (skipped: needs root, nft and unshare)";

/** Each session's nft runs in a private network namespace of its own: nothing on this host changes. */
function privateSession(timeoutMs = 5000): NftSession {
  return new NftSession({ command: UNSHARE, args: ["--net", NFT, "-i"], table: "inet knockport", timeoutMs });
}

/** The table and sync set the installed ruleset brings; the session itself never creates them. */
const SETUP = ["add table inet knockport", "add set inet knockport kp_sync { type mark; flags timeout; }"];

let session: NftSession | undefined;
afterEach(() => session?.close());

describe.skipIf(!canRun)(`long-lived nft session on the real kernel${why}`, () => {
  it("applies transactions and reports each one's own failure without disturbing the next", async () => {
    session = privateSession();
    await session.apply([...SETUP, "add set inet knockport s { type ipv4_addr; flags timeout; }"]);
    await session.apply(["add element inet knockport s { 198.51.100.7 timeout 60s }"]);
    const refused = await session.apply(["add element inet knockport missing { 198.51.100.8 timeout 60s }"]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(NftSessionError);
    expect((refused as NftSessionError).message).toMatch(/refused/);
    // a failed transaction changed nothing, and the session goes on
    await session.apply(["add element inet knockport s { 198.51.100.9 timeout 60s }"]);
  });

  it("a failing command aborts its whole transaction (nothing half-applied)", async () => {
    session = privateSession();
    await session.apply([...SETUP, "add set inet knockport s { type ipv4_addr; flags timeout; }"]);
    await expect(
      session.apply(["add element inet knockport s { 198.51.100.1 timeout 60s }", "add element inet knockport nope { 1.2.3.4 }"]),
    ).rejects.toBeInstanceOf(NftSessionError);
    // probe through the session itself: deleting the element fails iff it is absent
    await expect(session.apply(["delete element inet knockport s { 198.51.100.1 }"])).rejects.toBeInstanceOf(NftSessionError);
  });

  it("keeps order and outcome straight for 300 pipelined transactions", async () => {
    session = privateSession();
    await session.apply([...SETUP, "add set inet knockport s { type ipv4_addr; flags timeout; }"]);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 300 }, (_, i) =>
        session!.apply([
          i % 7 === 3
            ? `add element inet knockport missing { 10.0.${i >> 8}.${i & 255} }`
            : `add element inet knockport s { 10.0.${i >> 8}.${i & 255} timeout 60s }`,
        ]),
      ),
    );
    const failed = outcomes.flatMap((o, i) => (o.status === "rejected" ? [i] : []));
    expect(failed).toEqual(Array.from({ length: 300 }, (_, i) => i).filter((i) => i % 7 === 3));
  });

  it("rejects multi-line input instead of letting it split into separate transactions", async () => {
    session = privateSession();
    await expect(session.apply(["add table inet knockport\nflush ruleset"])).rejects.toBeInstanceOf(NftSessionError);
  });

  it("fails waiting transactions when nft dies, then starts a new process", async () => {
    session = privateSession();
    await session.apply([...SETUP, "add set inet knockport s { type ipv4_addr; flags timeout; }"]);
    const pending = session.apply(["add element inet knockport s { 198.51.100.7 timeout 60s }"]);
    session.close();
    await expect(pending).rejects.toBeInstanceOf(NftSessionError);
    // the new process has a new private namespace: the table is gone there, so create it again
    await session.apply([...SETUP, "add set inet knockport s { type ipv4_addr; flags timeout; }"]);
  });
});

describe.skipIf(!canRun)(`nft session after a reload from outside${why}`, () => {
  const ns = `kp-unit-session-${process.pid}`;
  const inNs = (...args: string[]): { status: number | null; stdout: string; stderr: string } =>
    spawnSync("/usr/sbin/ip", ["netns", "exec", ns, NFT, ...args], { encoding: "utf8" });
  beforeAll(() => {
    expect(spawnSync("/usr/sbin/ip", ["netns", "add", ns]).status).toBe(0);
  });
  afterAll(() => {
    spawnSync("/usr/sbin/ip", ["netns", "delete", ns]);
  });

  it("never re-creates the table: once it is gone every change fails, and no (empty) table is left behind", async () => {
    session = new NftSession({ command: "/usr/sbin/ip", args: ["netns", "exec", ns, NFT, "-i"], table: "inet knockport", timeoutMs: 5000 });
    await session.apply([...SETUP, "add set inet knockport s { type ipv4_addr; flags timeout; }"]);
    await session.apply(["add element inet knockport s { 198.51.100.7 timeout 60s }"]);
    expect(inNs("flush", "ruleset").status).toBe(0);
    await expect(session.apply(["add element inet knockport s { 198.51.100.8 timeout 60s }"])).rejects.toBeInstanceOf(NftSessionError);
    await expect(session.apply([])).rejects.toBeInstanceOf(NftSessionError);
    expect(inNs("list", "tables").stdout, "the session created nothing").toBe("");
    // The sync set alone gone: refused as well, the table is not completed behind the installer's back.
    expect(spawnSync("/usr/sbin/ip", ["netns", "exec", ns, NFT, "add table inet knockport; add set inet knockport s { type ipv4_addr; flags timeout; }"]).status).toBe(0);
    await expect(session.apply(["add element inet knockport s { 198.51.100.9 timeout 60s }"])).rejects.toBeInstanceOf(NftSessionError);
    expect(inNs("list", "sets").stdout).not.toContain("kp_sync");
    // Re-installed (table and sync set): the same session works again.
    expect(spawnSync("/usr/sbin/ip", ["netns", "exec", ns, NFT, "add set inet knockport kp_sync { type mark; flags timeout; }"]).status).toBe(0);
    await session.apply(["add element inet knockport s { 198.51.100.9 timeout 60s }"]);
    expect(inNs("list", "set", "inet", "knockport", "s").stdout).toContain("198.51.100.9");
  });
});

it.skipIf(!canRun)("unshare --net is really private here (guards the tests above)", () => {
  const r = spawnSync(UNSHARE, ["--net", "ip", "-o", "link"], { encoding: "utf8" });
  expect(r.status).toBe(0);
  expect(r.stdout.trim().split("\n")).toHaveLength(1); // only lo
});
