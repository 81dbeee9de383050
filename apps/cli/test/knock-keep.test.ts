// The --keep loop with a fake clock and fake knocks: when it knocks again, address changes, backoff, stop and revoke.
import { describe, expect, it } from "vitest";
import { UsageError } from "@knockport/config";
import { backoffMs, keepOpen, nextKnockDelay, type KeepDeps } from "../src/knock-keep.js";
import { KnockFailure, parseExpires, resolveKnockSettings, type KnockOutcome } from "../src/knock.js";

const T0 = 1_900_000_000_000;

/** A fake world: `script` answers each knock (a lease length in ms, or an error); time moves only in sleep(). */
function world(script: Array<number | Error>, opts: { stopAfterKnocks?: number; addressAt?: (t: number) => string | undefined; revoke?: () => Promise<void> } = {}) {
  let t = T0;
  const knocks: number[] = [];
  const lines: string[] = [];
  const controller = new AbortController();
  const deps: KeepDeps = {
    signal: controller.signal,
    log: (l) => lines.push(l),
    warn: (l) => lines.push(l),
    now: () => t,
    sleep: async (ms) => {
      t += ms;
    },
    pollMs: 1000,
    localAddress: async () => (opts.addressAt ? opts.addressAt(t) : "192.0.2.10"),
    knock: async (): Promise<KnockOutcome> => {
      knocks.push(t - T0);
      if (knocks.length >= (opts.stopAfterKnocks ?? script.length)) controller.abort();
      const next = script[knocks.length - 1] ?? new Error("script ran out");
      if (next instanceof Error) throw next;
      return { address: "198.51.100.1", expiresAtMs: t + next };
    },
    ...(opts.revoke ? { revoke: opts.revoke } : {}),
  };
  return { deps, knocks, lines, controller };
}

describe("knock --keep", () => {
  it("knocks again at 75% of the lease, lease after lease", async () => {
    const w = world([60_000, 60_000, 40_000, 60_000]);
    expect(await keepOpen(w.deps)).toBe(0);
    expect(w.knocks).toEqual([0, 45_000, 90_000, 120_000]);
    expect(nextKnockDelay(T0 + 10_000, T0)).toBe(7_500);
    expect(nextKnockDelay(T0 + 500, T0), "never sooner than 1 s").toBe(1_000);
  });

  it("knocks at once (within a poll) when its address towards the server changes", async () => {
    const w = world([60_000, 60_000, 60_000], { addressAt: (t) => (t - T0 < 10_000 ? "192.0.2.10" : "192.0.2.77") });
    await keepOpen(w.deps);
    expect(w.knocks).toEqual([0, 10_000, 55_000]);
    expect(w.lines.filter((l) => l.includes("changed"))).toEqual(["keep: this machine's address towards the server changed (192.0.2.10 -> 192.0.2.77); knocking now"]);
  });

  it("waits 2 s, 4 s, 8 s ... (at most 120 s) after failures in a row, and starts over after a success", async () => {
    const fail = new KnockFailure(4, "step 2: the HTTPS port stayed closed");
    const w = world([fail, fail, fail, 60_000, fail, 60_000]);
    await keepOpen(w.deps);
    expect(w.knocks).toEqual([0, 2_000, 6_000, 14_000, 59_000, 61_000]);
    expect([1, 2, 3, 7, 8, 30].map(backoffMs)).toEqual([2_000, 4_000, 8_000, 120_000, 120_000, 120_000]);
    expect(w.lines.some((l) => l.startsWith("keep: knock failed (step 2: the HTTPS port stayed closed); next try in 2 s"))).toBe(true);
  });

  it("a usage error is not retried", async () => {
    const w = world([new UsageError("--ca x: cannot read")]);
    await expect(keepOpen(w.deps)).rejects.toThrow(UsageError);
  });

  it("stops when aborted, mid-wait, and revokes once; a failed revoke gives its exit code", async () => {
    let revokes = 0;
    const w = world([60_000, 60_000, 60_000], { stopAfterKnocks: 99, revoke: async () => void (revokes += 1) });
    const sleep = w.deps.sleep!;
    w.deps.sleep = async (ms, signal) => {
      if (w.knocks.length === 2) w.controller.abort();
      await sleep(ms, signal);
    };
    expect(await keepOpen(w.deps)).toBe(0);
    expect(revokes).toBe(1);
    const failing = world([60_000], { revoke: async () => Promise.reject(new KnockFailure(5, "step 2: refused")) });
    expect(await keepOpen(failing.deps)).toBe(5);
    expect(failing.lines.at(-1)).toMatch(/could not close the lease on exit \(step 2: refused\)/);
  });
});

describe("knock settings and answers for --keep / --revoke", () => {
  const base = ["--host", "198.51.100.1", "--app", "ssh", "--http-path", "/k1", "--https-path", "/k2"];
  const env = { KNOCKPORT_HTTP_KEY: "ssh-http-key-0000", KNOCKPORT_HTTPS_KEY: "ssh-https-key-0000" };
  it("--keep refuses a 2FA code (each works once)", () => {
    expect(() => resolveKnockSettings({ argv: [...base, "--keep", "--token", "123456"], env })).toThrow(/--keep cannot re-knock with a 2FA key/);
    expect(() => resolveKnockSettings({ argv: [...base, "--keep", "--totp-prompt"], env })).toThrow(/--keep cannot re-knock/);
    expect(resolveKnockSettings({ argv: [...base, "--keep", "--revoke"], env })).toMatchObject({ keep: true, revoke: true });
  });

  it("reads expires= after the OK line; an older server's plain OK has none", () => {
    expect(parseExpires("OK\nexpires=1893456030\n")).toBe(1_893_456_030_000);
    expect(parseExpires("OK\n")).toBeUndefined();
    expect(parseExpires("expires=1893456030\nOK\n")).toBeUndefined();
    expect(parseExpires("Forbidden\n")).toBeUndefined();
  });
});
