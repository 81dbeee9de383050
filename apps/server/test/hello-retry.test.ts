import { afterEach, describe, expect, it, vi } from "vitest";
import { HelperCallError } from "@knockport/helper-client";
import type { HelloResult } from "@knockport/protocol";
import { StartupError, helloWithRetry } from "../src/startup-checks.js";

const HELLO = { firewallType: "nftables" } as unknown as HelloResult;
const unreachable = (): HelperCallError => new HelperCallError("HELPER_UNREACHABLE", "connect ENOENT helper.sock", undefined, undefined, false);

/** A helper whose socket appears `upAfterMs` after the server started asking (systemd starts both at once). */
function helperUpAfter(upAfterMs: number): { call: (method: "hello") => Promise<HelloResult>; calls: number } {
  const start = Date.now();
  const fake = {
    calls: 0,
    call: async (): Promise<HelloResult> => {
      fake.calls += 1;
      if (Date.now() - start < upAfterMs) throw unreachable();
      return HELLO;
    },
  };
  return fake;
}

describe("helloWithRetry", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("answers within 50 ms of the helper coming up, not after a fixed half-second wait", async () => {
    vi.useFakeTimers();
    const helper = helperUpAfter(100);
    const warn = vi.fn();
    let answered: HelloResult | undefined;
    void helloWithRetry(helper as never, { warn } as never).then((h) => (answered = h));
    await vi.advanceTimersByTimeAsync(150);
    expect(answered).toBe(HELLO);
    expect(warn).toHaveBeenCalledTimes(1);
  });

  it("keeps trying for about 10 s, then fails with what the last attempt said", async () => {
    vi.useFakeTimers();
    const helper = helperUpAfter(Number.POSITIVE_INFINITY);
    const hello = helloWithRetry(helper as never, { warn: vi.fn() } as never);
    const failed = expect(hello).rejects.toThrow(/cannot talk to knockport-helper: connect ENOENT helper\.sock; start the helper first/);
    await vi.advanceTimersByTimeAsync(9_500);
    expect(helper.calls).toBeGreaterThan(5);
    await vi.advanceTimersByTimeAsync(1_500);
    await failed;
    await expect(hello).rejects.toBeInstanceOf(StartupError);
    // bounded: every 25 ms for 2 s, then every 500 ms
    expect(helper.calls).toBeLessThan(100);
  });
});
