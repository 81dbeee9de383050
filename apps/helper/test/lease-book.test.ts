import { describe, expect, it } from "vitest";
import type { IpAddress } from "@knockport/protocol";
import { LeaseBook } from "../src/leases.js";

const T0 = Date.UTC(2030, 0, 1);
const ip = (i: number): IpAddress => `198.18.${Math.floor(i / 250)}.${(i % 250) + 1}` as IpAddress;

describe("LeaseBook", () => {
  it("latestStep1Deadline follows puts, deletes and expiries of the address's step-1 leases only", () => {
    const book = new LeaseBook();
    book.put({ app: "ssh", ip: ip(1), step: 1, expiresAtMs: T0 + 30_000 });
    book.put({ app: "vpn", ip: ip(1), step: 1, expiresAtMs: T0 + 10_000 });
    book.put({ app: "ssh", ip: ip(1), step: 2, expiresAtMs: T0 + 99_000 });
    book.put({ app: "ssh", ip: ip(2), step: 1, expiresAtMs: T0 + 50_000 });
    expect(book.latestStep1Deadline(ip(1), T0)).toBe(T0 + 30_000);
    book.delete(1, "ssh", ip(1));
    expect(book.latestStep1Deadline(ip(1), T0)).toBe(T0 + 10_000);
    expect(book.latestStep1Deadline(ip(1), T0 + 10_000), "an ended lease does not count").toBeUndefined();
    book.takeExpired(T0 + 10_000);
    expect(book.latestStep1Deadline(ip(1), T0)).toBeUndefined();
    expect(book.latestStep1Deadline(ip(2), T0)).toBe(T0 + 50_000);
    expect(book.hasExpired(T0 + 50_000)).toBe(true);
    expect(book.hasExpired(T0 + 49_999)).toBe(false);
  });
});
