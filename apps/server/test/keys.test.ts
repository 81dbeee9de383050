import { describe, expect, it } from "vitest";
import { parseIpAddress, type IpAddress } from "@knockport/protocol";
import { KeyChecker } from "../src/keys.js";
import { Step1Memory } from "../src/step1-memory.js";
import { KEYS, makeConfig } from "./fixtures.js";

function ip(text: string): IpAddress {
  const parsed = parseIpAddress(text);
  if (!parsed) throw new Error(`bad test address ${text}`);
  return parsed;
}

describe("KeyChecker", () => {
  const keys = new KeyChecker(makeConfig());

  it("returns the index of the matching step-1 key", () => {
    expect(keys.matchStep1("openvpn", KEYS.openvpnHttp[0])).toBe(0);
    expect(keys.matchStep1("openvpn", KEYS.openvpnHttp[1])).toBe(1);
    expect(keys.matchStep1("ssh", KEYS.sshHttp[0])).toBe(0);
  });

  it("returns -1 for a wrong key, another app's key, a step-2 key, a prefix and an unknown app", () => {
    expect(keys.matchStep1("openvpn", "not-a-key-at-all")).toBe(-1);
    expect(keys.matchStep1("openvpn", KEYS.sshHttp[0])).toBe(-1);
    expect(keys.matchStep1("openvpn", KEYS.openvpnHttps[0])).toBe(-1);
    expect(keys.matchStep1("openvpn", KEYS.openvpnHttp[0].slice(0, -1))).toBe(-1);
    expect(keys.matchStep1("openvpn", `${KEYS.openvpnHttp[0]} `)).toBe(-1);
    expect(keys.matchStep1("nosuchapp", KEYS.openvpnHttp[0])).toBe(-1);
    expect(keys.matchStep1("", KEYS.openvpnHttp[0])).toBe(-1);
  });

  it("accepts at step 2 only the HTTPS key paired with the step-1 key index", () => {
    expect(keys.matchStep2("openvpn", 0, KEYS.openvpnHttps[0])).toBe(true);
    expect(keys.matchStep2("openvpn", 1, KEYS.openvpnHttps[1])).toBe(true);
    expect(keys.matchStep2("openvpn", 0, KEYS.openvpnHttps[1])).toBe(false);
    expect(keys.matchStep2("openvpn", 1, KEYS.openvpnHttps[0])).toBe(false);
  });

  it("refuses at step 2 step-1 keys, other apps' keys, out-of-range indexes and unknown apps", () => {
    expect(keys.matchStep2("openvpn", 0, KEYS.openvpnHttp[0])).toBe(false);
    expect(keys.matchStep2("openvpn", 0, KEYS.sshHttps[0])).toBe(false);
    expect(keys.matchStep2("ssh", 0, KEYS.openvpnHttps[0])).toBe(false);
    expect(keys.matchStep2("openvpn", 2, KEYS.openvpnHttps[0])).toBe(false);
    expect(keys.matchStep2("openvpn", -1, KEYS.openvpnHttps[0])).toBe(false);
    expect(keys.matchStep2("nosuchapp", 0, KEYS.openvpnHttps[0])).toBe(false);
  });
});

describe("Step1Memory", () => {
  const A = ip("198.51.100.7");
  const B = ip("203.0.113.9");
  const C = ip("2001:db8::1");

  it("remembers the key index per app and address until the duration ends", () => {
    let t = 1_000_000;
    const memory = new Step1Memory(100, () => t);
    memory.remember("openvpn", A, 1, 5);
    expect(memory.lookup("openvpn", A)).toBe(1);
    expect(memory.lookup("ssh", A)).toBeUndefined();
    expect(memory.lookup("openvpn", B)).toBeUndefined();
    t += 4_999;
    expect(memory.lookup("openvpn", A)).toBe(1);
    t += 1;
    expect(memory.lookup("openvpn", A)).toBeUndefined();
    // an expired entry found by lookup is removed
    expect(memory.size).toBe(0);
  });

  it("keeps apps apart for one address and replaces an entry on a new step 1", () => {
    let t = 0;
    const memory = new Step1Memory(100, () => t);
    memory.remember("openvpn", A, 0, 5);
    memory.remember("ssh", A, 0, 60);
    t += 2_000;
    memory.remember("openvpn", A, 1, 5); // re-knock with the other key: new index, new deadline
    expect(memory.size).toBe(2);
    t += 4_000;
    expect(memory.lookup("openvpn", A)).toBe(1);
    expect(memory.lookup("ssh", A)).toBe(0);
  });

  it("stays within its cap, dropping expired entries before live ones", () => {
    let t = 0;
    const memory = new Step1Memory(3, () => t);
    memory.remember("openvpn", A, 0, 1);
    memory.remember("openvpn", B, 0, 100);
    memory.remember("openvpn", C, 0, 100);
    t += 2_000; // A expired
    memory.remember("ssh", A, 0, 100);
    expect(memory.size).toBe(3);
    expect(memory.lookup("openvpn", B)).toBe(0);
    expect(memory.lookup("openvpn", C)).toBe(0);
    expect(memory.lookup("ssh", A)).toBe(0);
  });

  it("drops the oldest live entry when the cap is reached and nothing has expired", () => {
    const t = 0;
    const memory = new Step1Memory(3, () => t);
    memory.remember("openvpn", A, 0, 100);
    memory.remember("openvpn", B, 0, 100);
    memory.remember("openvpn", C, 0, 100);
    memory.remember("ssh", A, 0, 100);
    expect(memory.size).toBe(3);
    expect(memory.lookup("openvpn", A)).toBeUndefined();
    expect(memory.lookup("openvpn", B)).toBe(0);
    expect(memory.lookup("openvpn", C)).toBe(0);
    expect(memory.lookup("ssh", A)).toBe(0);
  });

  it("counts a refreshed entry as the newest", () => {
    const t = 0;
    const memory = new Step1Memory(2, () => t);
    memory.remember("openvpn", A, 0, 100);
    memory.remember("openvpn", B, 0, 100);
    memory.remember("openvpn", A, 1, 100); // A is now newer than B
    memory.remember("openvpn", C, 0, 100);
    expect(memory.lookup("openvpn", B)).toBeUndefined();
    expect(memory.lookup("openvpn", A)).toBe(1);
    expect(memory.lookup("openvpn", C)).toBe(0);
  });
});
