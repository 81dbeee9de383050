// The --keep loop with a fake clock and fake knocks: when it knocks again, address changes (local ones and,
// behind a NAT, public ones only the server sees), backoff, stop and revoke.
import { describe, expect, it } from "vitest";
import { UsageError } from "@knockport/config";
import { backoffMs, keepOpen, nextKnockDelay, type KeepDeps } from "../src/knock-keep.js";
import { KnockFailure, parseExpires, parseSeenAddress, resolveKnockSettings, type KnockOutcome } from "../src/knock.js";

const T0 = 1_900_000_000_000;

/** A fake world: `script` answers each knock (a lease length in ms, or an error); time moves only in sleep(). */
interface WorldOptions {
  stopAfterKnocks?: number;
  addressAt?: (t: number) => string | undefined;
  revoke?: () => Promise<void>;
  /** The step-2 answer's address= at time t (default: this machine's own address, no NAT). */
  seenAt?: (t: number) => string | undefined;
  /** Whether the service answers a probe at time t (a probe every 10 s when given). */
  answersAt?: (t: number) => boolean;
}

function world(script: Array<number | Error>, opts: WorldOptions = {}) {
  let t = T0;
  const knocks: number[] = [];
  const lines: string[] = [];
  const probes: number[] = [];
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
      return { address: "198.51.100.1", expiresAtMs: t + next, seenAddress: opts.seenAt ? opts.seenAt(t) : "192.0.2.10" };
    },
    ...(opts.revoke ? { revoke: opts.revoke } : {}),
    ...(opts.answersAt
      ? {
          probe: {
            what: "tcp/22",
            everyMs: 10_000,
            answers: async () => {
              probes.push(t - T0);
              const answered = opts.answersAt?.(t) ?? true;
              t += 5; // a probe takes a moment
              return answered;
            },
          },
        }
      : {}),
  };
  return { deps, knocks, lines, probes, controller };
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

  it("behind a NAT: tries the service every 10 s and knocks at once when it stops answering (a new public address), then probes again", async () => {
    const w = world([60_000, 60_000, 60_000], {
      seenAt: (t) => (t - T0 < 20_000 ? "203.0.113.5" : "203.0.113.6"),
      answersAt: (t) => !(t - T0 >= 20_000 && t - T0 < 21_000),
    });
    await keepOpen(w.deps);
    expect(w.knocks).toEqual([0, 20_010, 65_010]);
    expect(w.probes.slice(0, 3)).toEqual([10_000, 20_005, 30_010]);
    expect(w.lines.filter((l) => /sees|did not answer/.test(l))).toEqual([
      "keep: the server sees this machine as 203.0.113.5, its own address towards the server is 192.0.2.10: a NAT in between; tcp/22 is tried every 10 s to notice a new public address",
      "keep: tcp/22 did not answer within 2 s (the lease is gone or the server sees another address now); knocking now",
      "keep: the server now sees this machine as 203.0.113.6 (was 203.0.113.5)",
    ]);
  });

  it("no probe when the server sees this machine's own address; one when it does not say (an older server); none while backing off", async () => {
    const direct = world([60_000, 60_000], { answersAt: () => false });
    await keepOpen(direct.deps);
    expect({ knocks: direct.knocks, probes: direct.probes }).toEqual({ knocks: [0, 45_000], probes: [] });

    const older = world([60_000, 60_000], { seenAt: () => undefined, answersAt: (t) => t - T0 < 15_000 });
    await keepOpen(older.deps);
    expect({ knocks: older.knocks, probes: older.probes }).toEqual({ knocks: [0, 20_010], probes: [10_000, 20_005] });

    const fail = new KnockFailure(8, "check: tcp/22 on 198.51.100.1 is closed");
    const failing = world([60_000, fail, fail, 60_000], { seenAt: () => "203.0.113.5", answersAt: (t) => t - T0 >= 16_000 });
    await keepOpen(failing.deps);
    expect(failing.knocks, "a failed re-knock backs off (2 s, 4 s) without probing").toEqual([0, 10_005, 12_005, 16_005]);
    expect(failing.probes).toEqual([10_000]);
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
    expect(parseExpires("OK\nexpires=1893456030\naddress=203.0.113.5\n")).toBe(1_893_456_030_000);
  });

  it("reads address= (the address the server saw), IPv4 or IPv6; nothing else passes for one", () => {
    expect(parseSeenAddress("OK\nexpires=1893456030\naddress=203.0.113.5\n")).toBe("203.0.113.5");
    expect(parseSeenAddress("OK\nexpires=1893456030\naddress=2001:db8::7\n")).toBe("2001:db8::7");
    expect(parseSeenAddress("OK\nexpires=1893456030\n")).toBeUndefined();
    expect(parseSeenAddress("OK\naddress=999.1.1.1\n")).toBeUndefined();
    expect(parseSeenAddress("address=203.0.113.5\nOK\n")).toBeUndefined();
  });

  it("--probe-interval: seconds 2-3600 or 0, default 10", () => {
    expect(resolveKnockSettings({ argv: [...base, "--keep"], env })).toMatchObject({ probeIntervalMs: 10_000 });
    expect(resolveKnockSettings({ argv: [...base, "--keep", "--probe-interval", "0"], env })).toMatchObject({ probeIntervalMs: 0 });
    expect(resolveKnockSettings({ argv: [...base, "--keep", "--probe-interval", "30"], env })).toMatchObject({ probeIntervalMs: 30_000 });
    for (const bad of ["1", "3601", "ten", "2.5", ""]) {
      expect(() => resolveKnockSettings({ argv: [...base, "--probe-interval", bad], env }), bad).toThrow(/--probe-interval: must be seconds 2-3600, or 0/);
    }
  });
});
