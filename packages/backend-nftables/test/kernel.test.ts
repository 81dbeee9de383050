import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { IpAddress } from "@knockport/protocol";
import { renderNftRemoveTable, renderNftRuleset, renderNftGrant, renderNftRevoke } from "@knockport/backend-nftables/render";
import { makeConfig, step2Target } from "../../firewall/test/fixtures.js";

// Loads the generated text into a real kernel, in a throwaway network namespace (`unshare --net`), so
// nothing on the host changes. No packets are sent. Needs root; skipped otherwise.
const NFT = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"].find((p) => existsSync(p));
const UNSHARE = ["/usr/bin/unshare", "/bin/unshare"].find((p) => existsSync(p));
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const skipReason = !NFT ? "nft binary not found" : !UNSHARE ? "unshare not found" : !isRoot ? "not root" : "";
if (skipReason) console.warn(`[firewall] skipping kernel set-semantics test: ${skipReason}`);

interface Elem {
  val: string;
  timeout: number;
  expires: number;
  counter?: { packets: number; bytes: number };
}

/** Run `steps` (file contents for `nft -f`, or "LIST <set>", or "SLEEP <s>") in a fresh netns; collect listings. */
function runInNetns(steps: readonly string[]): { status: number | null; stderr: string; lists: Elem[][] } {
  const dir = mkdtempSync(join(tmpdir(), "kpfw-"));
  try {
    const lines = ["set -e"];
    steps.forEach((step, i) => {
      if (step.startsWith("LIST ")) lines.push(`echo "@@"; ${NFT} -j list set inet knockport ${step.slice(5)}`);
      else if (step.startsWith("SLEEP ")) lines.push(`sleep ${step.slice(6)}`);
      else {
        writeFileSync(join(dir, `${i}.nft`), step);
        lines.push(`${NFT} -f ${join(dir, `${i}.nft`)}`);
      }
    });
    const r = spawnSync(UNSHARE as string, ["--net", "--", "sh", "-c", lines.join("\n")], { encoding: "utf8", timeout: 15_000 });
    const lists = r.stdout
      .split("@@\n")
      .slice(1)
      .map((json) => {
        const doc = JSON.parse(json) as { nftables: Array<{ set?: { elem?: Array<{ elem: Elem }> } }> };
        return (doc.nftables.find((o) => o.set)?.set?.elem ?? []).map((e) => e.elem);
      });
    return { status: r.status, stderr: r.stderr, lists };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(skipReason !== "")(`kernel semantics of the generated batches (${skipReason || "unshare --net"})`, () => {
  it("grant refreshes without duplicates, revoke is idempotent, elements expire, reload re-adds leases", () => {
    const config = makeConfig();
    const ip = "198.51.100.7" as IpAddress;
    const target = step2Target(config, "ssh-admin", ip);
    const set = target.set;
    const r = runInNetns([
      renderNftRuleset(config),
      renderNftGrant({ ...target, timeoutSeconds: 100 }),
      `LIST ${set}`,
      renderNftGrant({ ...target, timeoutSeconds: 300 }), // longer: refreshed
      `LIST ${set}`,
      renderNftGrant({ ...target, timeoutSeconds: 50 }), // shorter: replaced, not max()
      `LIST ${set}`,
      renderNftRevoke(target),
      renderNftRevoke(target), // absent: still succeeds
      `LIST ${set}`,
      renderNftGrant({ ...target, timeoutSeconds: 1 }),
      "SLEEP 1.3",
      `LIST ${set}`, // the kernel expired it
      renderNftGrant({ ...target, timeoutSeconds: 40 }), // re-grant after expiry
      renderNftRuleset(config, { elements: [{ ...target, timeoutSeconds: 77 }] }), // reload wipes, lease re-added
      `LIST ${set}`,
      renderNftRemoveTable(),
      renderNftRemoveTable(), // idempotent
    ]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const [g100, g300, g50, revoked, expired, reloaded] = r.lists;
    expect(g100).toEqual([{ val: ip, timeout: 100, expires: expect.any(Number), counter: { packets: 0, bytes: 0 } }]);
    expect(g300).toEqual([{ val: ip, timeout: 300, expires: expect.any(Number), counter: { packets: 0, bytes: 0 } }]);
    expect(g300?.[0]?.expires).toBeGreaterThanOrEqual(298);
    expect(g50).toEqual([{ val: ip, timeout: 50, expires: expect.any(Number), counter: { packets: 0, bytes: 0 } }]);
    expect(revoked).toEqual([]);
    expect(expired).toEqual([]);
    expect(reloaded).toEqual([{ val: ip, timeout: 77, expires: expect.any(Number), counter: { packets: 0, bytes: 0 } }]);
  });
});
