import { existsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { NftSession, NftSessionError } from "../src/nft-session.js";

const NFT = "/usr/sbin/nft";
const UNSHARE = "/usr/bin/unshare";
const canRun = process.getuid?.() === 0 && existsSync(NFT) && existsSync(UNSHARE);
const why = canRun ? "" : " (skipped: needs root, nft and unshare)";

/** Each session's nft runs in a private network namespace of its own: nothing on this host changes. */
function privateSession(timeoutMs = 5000): NftSession {
  return new NftSession({ command: UNSHARE, args: ["--net", NFT, "-i"], table: "inet knockport", timeoutMs });
}

let session: NftSession | undefined;
afterEach(() => session?.close());

describe.skipIf(!canRun)(`long-lived nft session on the real kernel${why}`, () => {
  it("applies transactions and reports each one's own failure without disturbing the next", async () => {
    session = privateSession();
    await session.apply(["add set inet knockport s { type ipv4_addr; flags timeout; }"]);
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
    await session.apply(["add set inet knockport s { type ipv4_addr; flags timeout; }"]);
    await expect(
      session.apply(["add element inet knockport s { 198.51.100.1 timeout 60s }", "add element inet knockport nope { 1.2.3.4 }"]),
    ).rejects.toBeInstanceOf(NftSessionError);
    // probe through the session itself: deleting the element fails iff it is absent
    await expect(session.apply(["delete element inet knockport s { 198.51.100.1 }"])).rejects.toBeInstanceOf(NftSessionError);
  });

  it("keeps order and outcome straight for 300 pipelined transactions", async () => {
    session = privateSession();
    await session.apply(["add set inet knockport s { type ipv4_addr; flags timeout; }"]);
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
    await session.apply(["add set inet knockport s { type ipv4_addr; flags timeout; }"]);
    const pending = session.apply(["add element inet knockport s { 198.51.100.7 timeout 60s }"]);
    session.close();
    await expect(pending).rejects.toBeInstanceOf(NftSessionError);
    // the new process has a new private namespace: the set is gone there, so create it again
    await session.apply(["add set inet knockport s { type ipv4_addr; flags timeout; }"]);
  });
});

it.skipIf(!canRun)("unshare --net is really private here (guards the tests above)", () => {
  const r = spawnSync(UNSHARE, ["--net", "ip", "-o", "link"], { encoding: "utf8" });
  expect(r.status).toBe(0);
  expect(r.stdout.trim().split("\n")).toHaveLength(1); // only lo
});
