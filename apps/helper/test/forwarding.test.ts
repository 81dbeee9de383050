import { describe, expect, it } from "vitest";
import { parseConfig } from "@knockport/config";
import { ForwardingDisabledError, checkForwarding } from "../src/forwarding.js";

const app = (port: number, destination: string): Record<string, unknown> => ({
  port,
  access_key_http: [`http-key-${port}-abcdef`],
  access_key_https: [`https-key-${port}-abcdef`],
  duration: 60,
  destination,
});
const config = (apps: Record<string, unknown>) =>
  parseConfig({ global: { http_post_path: "/k-abcdefgh", https_post_path: "/k2-abcdefgh", interface_ext: "eth0" }, ...apps }, "c.yaml");
const sysctl = (v4: string, v6: string) => (file: string): string => (file.includes("ipv4") ? `${v4}\n` : `${v6}\n`);

describe("checkForwarding", () => {
  it("passes without forwarded apps, whatever the sysctls say", () => {
    expect(() => checkForwarding(config({ a: app(22, "local") }), sysctl("0", "0"))).not.toThrow();
  });

  it("checks only the families forwarded to", () => {
    const c = config({ a: app(22, "192.0.2.10"), b: app(23, "local") });
    expect(() => checkForwarding(c, sysctl("1", "0"))).not.toThrow();
    expect(() => checkForwarding(c, sysctl("0", "1"))).toThrow(ForwardingDisabledError);
  });

  it("names the apps, the sysctl and the fix", () => {
    const c = config({ a: app(22, "192.0.2.10"), b: app(23, "[2001:db8::5]:2323") });
    let caught: unknown;
    try {
      checkForwarding(c, sysctl("0", "0"));
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ForwardingDisabledError);
    const err = caught as ForwardingDisabledError;
    expect(err.code).toBe("FORWARDING_DISABLED");
    expect(err.message).toContain("a.destination (192.0.2.10): IPv4 forwarding is off (/proc/sys/net/ipv4/ip_forward is 0)");
    expect(err.message).toContain('sysctl -w net.ipv4.ip_forward=1');
    expect(err.message).toContain("b.destination (2001:db8::5): IPv6 forwarding is off");
    expect(err.message).toContain('sysctl -w net.ipv6.conf.all.forwarding=1');
  });

  it("reports an unreadable sysctl instead of crashing", () => {
    const c = config({ a: app(22, "192.0.2.10") });
    const read = (): string => {
      throw Object.assign(new Error("x"), { code: "ENOENT" });
    };
    expect(() => checkForwarding(c, read)).toThrow(/is unreadable \(ENOENT\)/);
  });
});
