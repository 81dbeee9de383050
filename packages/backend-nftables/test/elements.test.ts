import { describe, expect, it } from "vitest";
import { renderNftGrant, renderNftRevoke } from "@knockport/backend-nftables/render";
import type { IpAddress } from "@knockport/protocol";
import { HTTPS_SET_V4, HTTPS_SET_V6, httpsSetName, InvalidValueError, serviceSetName, setFamily } from "@knockport/firewall";
import { expectGolden } from "../../firewall/test/golden.js";
import { makeConfig, step1Target, step2Target } from "../../firewall/test/fixtures.js";

const V4 = "198.51.100.7" as IpAddress;
const V6 = "2001:db8:1::7" as IpAddress;

describe("grant and revoke batches", () => {
  const config = makeConfig();

  it("match the golden batches (IPv4 and IPv6)", () => {
    expectGolden("grant-step1-v4.nft", renderNftGrant(step1Target(config, "openvpn", V4)));
    expectGolden("grant-step2-v4.nft", renderNftGrant(step2Target(config, "openvpn", V4)));
    expectGolden("grant-step2-v6.nft", renderNftGrant(step2Target(config, "ssh-admin", V6)));
    expectGolden("revoke-step2-v4.nft", renderNftRevoke(step2Target(config, "openvpn", V4)));
    expectGolden("revoke-step1-v6.nft", renderNftRevoke({ set: HTTPS_SET_V6, ip: V6 }));
  });

  it("are one line (one transaction even through a long-lived `nft -i`), every add with a timeout", () => {
    for (const text of [renderNftGrant(step2Target(config, "openvpn", V6)), renderNftRevoke({ set: "https_v4", ip: V4 })]) {
      expect(text.endsWith("\n")).toBe(true);
      expect(text.slice(0, -1)).not.toContain("\n");
      for (const cmd of text.trim().split("; ")) {
        if (cmd.startsWith("add element")) expect(cmd).toMatch(/ timeout \d+s \}$/);
      }
    }
  });

  it("refuse anything not validated: bad IPs, wrong family, foreign sets, bad timeouts", () => {
    const bad: Array<() => unknown> = [
      () => renderNftGrant({ set: "https_v4", ip: "198.51.100.7 }; flush ruleset; add element inet knockport https_v4 { 1.2.3.4" as IpAddress, timeoutSeconds: 5 }),
      () => renderNftGrant({ set: "https_v4", ip: "::ffff:198.51.100.7" as IpAddress, timeoutSeconds: 5 }), // not normalised
      () => renderNftGrant({ set: "https_v4", ip: "2001:DB8::7" as IpAddress, timeoutSeconds: 5 }),
      () => renderNftGrant({ set: "https_v4", ip: V6, timeoutSeconds: 5 }),
      () => renderNftGrant({ set: "svc_openvpn_v6", ip: V4, timeoutSeconds: 5 }),
      () => renderNftGrant({ set: "filter", ip: V4, timeoutSeconds: 5 }),
      () => renderNftGrant({ set: "svc_a b_v4", ip: V4, timeoutSeconds: 5 }),
      () => renderNftGrant({ set: "https_v4", ip: V4, timeoutSeconds: 0 }),
      () => renderNftGrant({ set: "https_v4", ip: V4, timeoutSeconds: 1.5 }),
      () => renderNftGrant({ set: "https_v4", ip: V4, timeoutSeconds: 367 * 86400 }),
      () => renderNftRevoke({ set: "https_v6", ip: "224.0.0.1" as IpAddress }),
    ];
    for (const f of bad) expect(f).toThrow(InvalidValueError);
  });
});

describe("set names", () => {
  it("are the app name verbatim, deterministic and distinct", () => {
    expect(serviceSetName("ssh-admin", 4)).toBe("svc_ssh-admin_v4");
    expect(serviceSetName("ssh-admin", 4)).toBe(serviceSetName("ssh-admin", 4));
    const names = ["a", "A", "a-b", "a_b", "a_v4", "a-v4", "a_v4_v4", "0", "x".repeat(32), "ssh-admin", "ssh_admin"];
    const all = names.flatMap((n) => [serviceSetName(n, 4), serviceSetName(n, 6)]);
    all.push(httpsSetName(4), httpsSetName(6));
    expect(new Set(all).size).toBe(all.length);
    for (const n of all) expect(n.length).toBeLessThanOrEqual(39);
  });

  it("map back to their family", () => {
    expect(HTTPS_SET_V4).toBe("https_v4");
    expect(setFamily("https_v4")).toBe(4);
    expect(setFamily("svc_ssh-admin_v6")).toBe(6);
    expect(setFamily("svc__v6")).toBeUndefined();
    expect(setFamily("raw_output")).toBeUndefined();
  });

});
