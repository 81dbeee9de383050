import { isIPv6 } from "node:net";
import { describe, expect, it } from "vitest";
import { ipFamily, parseIpAddress, type IpAddress } from "../src/index.js";
import { ipv6NetworkKey } from "../src/client.js";

/** Independent oracle for the RFC 5952 text form: the WHATWG URL host serializer. */
function urlCanonical(text: string): string {
  return new URL(`http://[${text}]/`).hostname.slice(1, -1);
}

/** A tiny seeded PRNG (mulberry32), so a failing random case reproduces. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

describe("parseIpAddress: IPv4", () => {
  it.each(["1.2.3.4", "192.0.2.10", "198.51.100.7", "203.0.113.255", "10.0.0.1", "127.0.0.1", "223.255.255.254", "1.0.0.0"])(
    "accepts unicast %s unchanged",
    (ip) => {
      expect(parseIpAddress(ip)).toBe(ip);
      expect(ipFamily(parseIpAddress(ip) as IpAddress)).toBe(4);
    },
  );

  it.each([
    ["0.0.0.0", "unspecified"],
    ["0.1.2.3", "0/8 this network"],
    ["0.255.255.255", "0/8 this network"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.250", "multicast"],
    ["240.0.0.1", "reserved"],
    ["255.255.255.255", "broadcast"],
  ])("rejects %s (%s)", (ip) => {
    expect(parseIpAddress(ip)).toBeUndefined();
  });

  it.each([
    "01.2.3.4", // leading zero: octal in some parsers, ambiguous
    "1.2.3.004",
    "256.1.1.1",
    "1.2.3",
    "1.2.3.4.5",
    "1.2.3.",
    ".1.2.3",
    "1..2.3",
    " 1.2.3.4",
    "1.2.3.4 ",
    "1.2.3.4\n",
    "x1.2.3.4",
    "1.2.3.4x",
    "1.2.3.4:80",
    "1.2.3.4/32",
    "1.2.3.4/24",
    "0x01.2.3.4",
    "16909060", // 1.2.3.4 as one integer, as inet_aton would take it
    "1.2.3.-4",
    "１.２.３.４", // full-width digits
    "",
  ])("rejects malformed %j", (text) => {
    expect(parseIpAddress(text)).toBeUndefined();
  });
});

describe("parseIpAddress: IPv6", () => {
  it.each([
    ["2001:DB8::1", "2001:db8::1"],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // equal runs: the first one is compressed
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"], // the longest run wins
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // a single zero group is never "::"
    ["2001:db8::0:1", "2001:db8::1"],
    ["1::", "1::"],
    ["1:0:0:0:0:0:0:0", "1::"],
    ["::1", "::1"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"],
    ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"],
    ["FE80::ABCD:EF01", "fe80::abcd:ef01"],
    ["fe80::1", "fe80::1"],
    ["2001:db8:0:0:0:0:2:1", "2001:db8::2:1"],
    ["2001:db8::1:0:0:0:1", "2001:db8:0:1::1"],
    ["::1.2.3.4", "::102:304"], // IPv4-compatible (deprecated) is not IPv4-mapped: stays IPv6
    ["64:ff9b::192.0.2.33", "64:ff9b::c000:221"],
    ["1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"],
    ["::ffff:0:1.2.3.4", "::ffff:0:102:304"], // SIIT translated, not mapped
  ])("normalises %s to %s", (input, expected) => {
    const ip = parseIpAddress(input);
    expect(ip).toBe(expected);
    expect(ipFamily(ip as IpAddress)).toBe(6);
    expect(ip).toBe(urlCanonical(input)); // independent oracle agrees
    expect(parseIpAddress(ip as string)).toBe(ip); // idempotent
  });

  it.each([
    ["::ffff:1.2.3.4", "1.2.3.4"],
    ["::FFFF:1.2.3.4", "1.2.3.4"],
    ["::ffff:0102:0304", "1.2.3.4"],
    ["::ffff:102:304", "1.2.3.4"],
    ["0:0:0:0:0:ffff:1.2.3.4", "1.2.3.4"],
    ["0000:0000:0000:0000:0000:FFFF:C000:0221", "192.0.2.33"],
    ["::ffff:198.51.100.7", "198.51.100.7"],
  ])("turns IPv4-mapped %s into %s", (input, expected) => {
    const ip = parseIpAddress(input);
    expect(ip).toBe(expected);
    expect(ipFamily(ip as IpAddress)).toBe(4);
  });

  it.each(["::ffff:0.0.0.0", "::ffff:0.1.2.3", "::ffff:224.0.0.1", "::ffff:255.255.255.255", "::ffff:e000:1", "::ffff:0:0"])(
    "applies the IPv4 rules to mapped %s",
    (input) => {
      expect(parseIpAddress(input)).toBeUndefined();
    },
  );

  it.each([
    ["::", "unspecified"],
    ["0:0:0:0:0:0:0:0", "unspecified"],
    ["ff02::1", "multicast"],
    ["FF05::1:3", "multicast"],
    ["ff00::", "multicast"],
    ["fe80::1%eth0", "scope ID"],
    ["fe80::1%1", "scope ID"],
    ["::ffff:1.2.3.4%eth0", "scope ID"],
    ["2001:db8::/32", "prefix"],
    ["2001:db8::1/128", "prefix"],
    ["[2001:db8::1]", "brackets"],
    ["[2001:db8::1]:80", "port"],
    ["2001:db8::1 ", "trailing space"],
    [" 2001:db8::1", "leading space"],
    ["2001:db8::g", "not hex"],
    ["2001:db8:::1", "triple colon"],
    ["1::2::3", "two ::"],
    ["1:2:3:4:5:6:7:8:9", "nine groups"],
    ["1:2:3:4:5:6:7", "seven groups"],
    [":1:2:3:4:5:6:7", "leading single colon"],
    ["1:2:3:4:5:6:7:", "trailing single colon"],
    ["12345::1", "five hex digits"],
    ["::ffff:1.2.3", "short IPv4 tail"],
    ["::ffff:01.2.3.4", "leading zero in IPv4 tail"],
    ["1:2:3:4:5:6:7:1.2.3.4", "IPv4 tail after 7 groups"],
    ["junk::1", "junk"],
  ])("rejects %j (%s)", (text) => {
    expect(parseIpAddress(text)).toBeUndefined();
  });

  it("agrees with the URL serializer on 20000 random spellings", () => {
    const rnd = prng(5952);
    for (let n = 0; n < 20000; n += 1) {
      const groups = Array.from({ length: 8 }, () => {
        const r = rnd(4);
        return r === 0 ? 0 : r === 1 ? rnd(16) : rnd(0x10000);
      });
      const parts = groups.map((g) => {
        let t = g.toString(16);
        if (rnd(3) === 0) t = t.padStart(4, "0");
        return rnd(2) === 0 ? t.toUpperCase() : t;
      });
      let text = parts.join(":");
      // compress a random zero run (not necessarily the longest): still a valid spelling
      const runs: [number, number][] = [];
      for (let i = 0; i < 8; i += 1) {
        if (groups[i] !== 0) continue;
        let j = i;
        while (j < 8 && groups[j] === 0) j += 1;
        runs.push([i, j]);
        i = j;
      }
      if (runs.length > 0 && rnd(2) === 0) {
        const [i, j] = runs[rnd(runs.length)] as [number, number];
        text = `${parts.slice(0, i).join(":")}::${parts.slice(j).join(":")}`;
      }
      expect(isIPv6(text), text).toBe(true);
      const got = parseIpAddress(text);
      const unspecified = groups.every((g) => g === 0);
      const multicast = ((groups[0] ?? 0) & 0xff00) === 0xff00;
      const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
      if (unspecified || multicast) {
        expect(got, text).toBeUndefined();
      } else if (mapped) {
        const g6 = groups[6] ?? 0;
        const g7 = groups[7] ?? 0;
        const v4 = [g6 >> 8, g6 & 0xff, g7 >> 8, g7 & 0xff];
        const unicast = v4[0] !== 0 && (v4[0] ?? 0) < 224;
        expect(got, text).toBe(unicast ? v4.join(".") : undefined);
      } else {
        expect(got, text).toBe(urlCanonical(text));
      }
    }
  });
});

describe("parseIpAddress: input guards", () => {
  it("rejects over-long strings without looking further", () => {
    expect(parseIpAddress(`${"0".repeat(40)}1.2.3.4`)).toBeUndefined();
    expect(parseIpAddress("1:".repeat(1000) + "1")).toBeUndefined();
    expect(parseIpAddress("1.2.3.4".padStart(46, " "))).toBeUndefined();
  });

  it("accepts the longest valid spelling (45 characters)", () => {
    const text = "0000:0000:0000:0000:0000:ffff:255.255.255.254";
    expect(text).toHaveLength(45);
    expect(parseIpAddress(text)).toBeUndefined(); // 255/8 is not unicast
    const mapped = "0000:0000:0000:0000:0000:ffff:198.151.100.254";
    expect(mapped).toHaveLength(45);
    expect(parseIpAddress(mapped)).toBe("198.151.100.254");
  });

  it.each([undefined, null, 1234, 16909060, {}, [], ["1.2.3.4"], { toString: () => "1.2.3.4" }, Symbol("x"), true])(
    "rejects the non-string %s",
    (value) => {
      expect(parseIpAddress(value as unknown as string)).toBeUndefined();
    },
  );
});

describe("ipv6NetworkKey", () => {
  it.each([
    ["2001:db8:1:2:abcd::7", 64, "2001:db8:1:2::/64"],
    ["2001:db8:1:2ff:abcd::7", 56, "2001:db8:1:200::/56"],
    ["2001:db8:ffff:1::1", 33, "2001:db8:8000::/33"],
    ["::1", 127, "::/127"],
    ["2001:db8::7", 128, "2001:db8::7"],
    ["198.51.100.7", 64, "198.51.100.7"],
  ])("%s /%i is %s", (text, bits, key) => {
    expect(ipv6NetworkKey(parseIpAddress(text) as IpAddress, bits)).toBe(key);
  });
});
