import { describe, expect, it } from "vitest";
import { MAX_WALK_INTERVAL_MS, WALK_COST_FACTOR, nextWalkDelayMs } from "../src/reconcile-cadence.js";

describe("nextWalkDelayMs", () => {
  it("walks on every tick while the walk is cheap, then keeps it under 1/WALK_COST_FACTOR of the time, at most every 30 s", () => {
    expect(nextWalkDelayMs(20, 2000), "a small table: every tick (strays go within 2 s)").toBe(2000);
    expect(nextWalkDelayMs(200, 2000)).toBe(200 * WALK_COST_FACTOR);
    expect(200 / nextWalkDelayMs(200, 2000)).toBeLessThanOrEqual(1 / WALK_COST_FACTOR);
    expect(nextWalkDelayMs(10_000, 2000)).toBe(MAX_WALK_INTERVAL_MS);
  });
});
