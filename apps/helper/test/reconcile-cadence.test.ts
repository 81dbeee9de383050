import { describe, expect, it } from "vitest";
import { MAX_WALK_INTERVAL_MS, nextWalkDelayMs } from "../src/self-heal.js";

describe("nextWalkDelayMs", () => {
  it("walks on every tick up to 2,000 elements, one tick more per 2,000 beyond, at most every 30 s", () => {
    expect(nextWalkDelayMs(0, 2000)).toBe(2000);
    expect(nextWalkDelayMs(2000, 2000), "a small table: every tick (strays go within 2 s)").toBe(2000);
    expect(nextWalkDelayMs(2001, 2000)).toBe(4000);
    expect(nextWalkDelayMs(10_000, 2000)).toBe(10_000);
    expect(nextWalkDelayMs(1_000_000, 2000)).toBe(MAX_WALK_INTERVAL_MS);
  });
});
