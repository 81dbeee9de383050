import { describe, expect, it } from "vitest";
import { MAX_COMPARE_BYTES, postPathCompares, renderPostPathMatch } from "../src/index.js";

function pathOfLength(n: number): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~-/";
  let p = "/";
  for (let i = 1; i < n; i += 1) p += alphabet[(i * 7) % alphabet.length];
  return p;
}

/** Parse the rendered nft expression back into bytes, checking offsets are contiguous. */
function decode(match: string): string {
  const re = /^@ih,(\d+),(\d+) 0x([0-9a-f]+)$/;
  const parts = match.split(/ (?=@ih,)/);
  let expectedOffset = 0;
  let out = "";
  for (const p of parts) {
    const m = re.exec(p);
    expect(m, p).not.toBeNull();
    const [, off, len, hex] = m as RegExpExecArray;
    expect(Number(off)).toBe(expectedOffset);
    expect(Number(len)).toBeLessThanOrEqual(128);
    expect(Number(len) % 8).toBe(0);
    expect(hex?.length).toBe(Number(len) / 4);
    out += Buffer.from(hex ?? "", "hex").toString("latin1");
    expectedOffset += Number(len);
  }
  return out;
}

describe("step-1 payload match", () => {
  for (const n of [2, 10, 11, 40, 64]) {
    it(`covers exactly "POST <path> " for a ${n}-character path`, () => {
      const path = pathOfLength(n);
      expect(path).toHaveLength(n);
      const compares = postPathCompares(path);
      const total = 6 + n;
      expect(compares).toHaveLength(Math.ceil(total / MAX_COMPARE_BYTES));
      expect(compares.every((c) => c.lengthBits <= 128)).toBe(true);
      expect(decode(renderPostPathMatch(path))).toBe(`POST ${path} `);
    });
  }

  it("uses full 16-byte compares and a shorter last one", () => {
    // 6 + 40 = 46 bytes: 16 + 16 + 14
    expect(postPathCompares("/k-7Hq2x/Zm9vYmFy.YmF6_cXV4~LXNlY3Jl-001").map((c) => [c.offsetBits, c.lengthBits])).toEqual([
      [0, 128],
      [128, 128],
      [256, 112],
    ]);
  });

});
