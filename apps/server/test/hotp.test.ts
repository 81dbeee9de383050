import { describe, expect, it } from "vitest";
import { HOTP, Secret } from "otpauth";
import { base32Decode, hotp } from "../src/hotp.js";

// RFC 4226 appendix D: secret "12345678901234567890" (ASCII), counters 0-9
const RFC4226 = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
const RFC_SECRET_BASE32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

describe("hotp (RFC 4226, HMAC-SHA1, 6 digits)", () => {
  it("gives the RFC's test values", () => {
    const secret = base32Decode(RFC_SECRET_BASE32);
    expect(secret.toString("ascii")).toBe("12345678901234567890");
    expect(RFC4226.map((_, counter) => hotp(secret, counter))).toEqual(RFC4226);
  });

  it("agrees with otpauth for random secrets of any length and counters around now", () => {
    for (let i = 0; i < 200; i += 1) {
      const secret = new Secret({ size: 10 + (i % 23) });
      const counter = Math.floor(Date.now() / 30_000) + i - 100;
      const expected = new HOTP({ secret, digits: 6, algorithm: "SHA1" }).generate({ counter });
      expect(hotp(base32Decode(secret.base32), counter)).toBe(expected);
    }
  });

  it("decodes base32 as RFC 4648 (leftover bits dropped) and refuses other characters", () => {
    expect(base32Decode("MZXW6YTBOI").toString("ascii")).toBe("foobar");
    expect(base32Decode("MZXW6YTBOJ").toString("ascii")).toBe("foobar");
    expect(() => base32Decode("MZXW6YTB0I")).toThrow(/base32/);
  });
});
