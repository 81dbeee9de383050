import { describe, expect, it } from "vitest";
import { renderNftRuleset } from "@knockport/backend-nftables/render";
import { appEntry, makeConfig } from "../../firewall/test/fixtures.js";

/** The input chain's rules of one port, as rendered. */
const rulesOf = (text: string, match: string): string[] =>
  text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.includes(match));

describe("renderNftRuleset with interfaces missing (global.allow_missing_interfaces)", () => {
  const config = makeConfig({
    global: { interface_ext: "eth0", allow_missing_interfaces: ["ppp0"] },
    apps: {
      vpn: appEntry(1194, { protocol: "udp", interface_ext: "ppp0" }),
      ssh: appEntry(22),
      web: appEntry(8081, { destination: "192.0.2.10:80", interface_ext: "eth0", interface_int: "ppp0" }),
    },
  });

  it("drops an app's port on every interface while its interface is missing, with no accept", () => {
    const text = renderNftRuleset(config, { missingInterfaces: ["ppp0"] });
    expect(rulesOf(text, "udp dport 1194")).toEqual([
      'udp dport 1194 ct direction original counter drop comment "app vpn udp/1194: interface ppp0 is missing; dropped on every interface before any DNAT"',
      'udp dport 1194 counter drop comment "app vpn udp/1194: interface ppp0 is missing; dropped on every interface until it appears"',
    ]);
    // a forwarded app whose LAN interface is missing: no DNAT, its public port dropped everywhere
    expect(text).not.toContain("dnat");
    expect(rulesOf(text, "tcp dport 8081")).toEqual([
      'tcp dport 8081 ct direction original counter drop comment "app web tcp/8081: interface ppp0 is missing; dropped on every interface before any DNAT"',
      'tcp dport 8081 counter drop comment "app web tcp/8081: interface ppp0 is missing; dropped on every interface until it appears"',
    ]);
    // apps on present interfaces and the knock ports (eth0 is there) are unchanged
    expect(rulesOf(text, "tcp dport 22 ")).toEqual(rulesOf(renderNftRuleset(config), "tcp dport 22 "));
    expect(rulesOf(text, "tcp dport 8443")).toEqual(rulesOf(renderNftRuleset(config), "tcp dport 8443"));
  });

  it("renders the usual rules once the interface is there", () => {
    const text = renderNftRuleset(config, { missingInterfaces: [] });
    expect(rulesOf(text, "udp dport 1194 ip saddr")[0]).toMatch(/^iifname "ppp0" udp dport 1194 ip saddr @svc_vpn_v4 counter accept/);
    expect(text).toContain("dnat ip to 192.0.2.10:80");
  });

  it("guards the knock ports on every interface but lo when every knock interface is missing", () => {
    const all = makeConfig({ global: { interface_ext: "ppp0", allow_missing_interfaces: ["ppp0"] } });
    const text = renderNftRuleset(all, { missingInterfaces: ["ppp0"] });
    expect(rulesOf(text, "tcp dport 8443 counter drop")).toEqual([
      'iifname != "lo" tcp dport 8443 counter drop comment "HTTPS knock port 8443: everyone else"',
    ]);
    expect(text).not.toContain('iifname "ppp0"');
  });
});
