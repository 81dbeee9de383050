import { describe, expect, it } from "vitest";
import type { IpAddress } from "@knockport/protocol";
import { nftPlacement } from "@knockport/firewall";
import { renderIptablesDryRun, renderIptablesRuleset } from "@knockport/backend-iptables/render";
import { renderNftRuleset } from "@knockport/backend-nftables/render";
import { renderVyosChains } from "@knockport/backend-vyos/render";
import { expectGolden } from "../../firewall/test/golden.js";
import { makeConfig, step1Target } from "../../firewall/test/fixtures.js";

// WAF mode: nginx listens on the public ports 80/443 and proxies to KnockPort's own 8080/8443.
const wafConfig = () => makeConfig({ global: { waf_http_port: 80, waf_https_port: 443 } });
const plainConfig = () => makeConfig();

/** The rule lines of a ruleset, comments stripped, for "which ports does a rule name" checks. */
const ruleLines = (text: string): string[] => text.split("\n").filter((l) => /\b(accept|drop|notrack|DROP|ACCEPT)\b/.test(l) && !l.includes("policy"));

describe("WAF mode rendering", () => {
  it("nftables: matches the golden ruleset", () => {
    expectGolden("ruleset-waf.nft", renderNftRuleset(wafConfig()));
  });

  it("nftables: stealth and HTTPS-set rules move to nginx's ports; KnockPort's own ports are dropped on interface_ext first", () => {
    const text = renderNftRuleset(wafConfig());
    const rules = ruleLines(text);
    // first in the input chain (the guard before DNAT, a chain of its own, guards only the apps' ports)
    expect(rules.find((l) => l.includes(" counter ") && !l.includes("before any DNAT"))).toBe(
      `\t\tiifname "eth0" tcp dport { 8080, 8443 } counter drop comment "WAF mode: KnockPort's own ports 8080 and 8443 are reached only through nginx"`,
    );
    expect(text).toContain(`iifname "eth0" tcp dport 80 notrack`);
    expect(text).toContain(`oifname "eth0" tcp sport 80 notrack`);
    expect(text).toContain(`iifname "eth0" tcp dport 80 meta length <= 500 @ih,0,128`);
    expect(text).toContain(`iifname "eth0" tcp dport 443 ip saddr @https_v4 counter accept`);
    expect(text).toContain(`oifname "eth0" tcp sport 80 tcp flags & (fin | syn | rst | ack) == syn | ack counter accept`);
    // KnockPort's own ports appear in no accept, no notrack, no set rule
    for (const r of rules) if (!r.includes("WAF mode")) expect(r).not.toMatch(/port (8080|8443)\b/);
  });

  it("nftables with custom chains (--nftables-*): the same WAF rules, in KnockPort's chain inside the admin's table", () => {
    const text = renderNftRuleset(wafConfig(), { placement: nftPlacement({ table: "filter", input: "input", forward: "forward", output: "output" }) });
    expect(text).toContain(`iifname "eth0" tcp dport { 8080, 8443 } counter drop comment "WAF mode:`);
    expect(text).toContain(`iifname "eth0" tcp dport 80 notrack`);
    expect(text).not.toMatch(/tcp dport 8080 notrack|tcp dport 8443 ip saddr/);
  });

  it("nftables: without WAF ports nothing changes (no WAF rule, stealth on KnockPort's own port)", () => {
    const text = renderNftRuleset(plainConfig());
    expect(text).not.toContain("WAF");
    expect(text).toContain(`iifname "eth0" tcp dport 8080 notrack`);
  });

  it("nftables: the HTTPS timed set still takes step-1 grants, now guarding nginx's HTTPS port", () => {
    const c = wafConfig();
    const text = renderNftRuleset(c, { elements: [step1Target(c, "openvpn", "203.0.113.9" as IpAddress)] });
    expect(text).toContain("may reach HTTPS knock port 443");
    expect(text).toMatch(/add element inet knockport https_v4 \{ 203\.0\.113\.9 timeout 5s \}/);
  });

  it("iptables (nft and legacy share this text): matches the golden files", () => {
    const r = renderIptablesRuleset(wafConfig());
    expectGolden("iptables-waf-v4.rules", r.v4);
    expectGolden("iptables-waf-v6.rules", r.v6);
    expectGolden("iptables-waf-dry-run.txt", renderIptablesDryRun(wafConfig()));
  });

  it("iptables: the own-port drops come before every accept, per family", () => {
    for (const text of Object.values({ v4: renderIptablesRuleset(wafConfig()).v4, v6: renderIptablesRuleset(wafConfig()).v6 })) {
      const input = text.split("\n").filter((l) => l.startsWith("-A KNOCKPORT-INPUT"));
      expect(input.slice(0, 2)).toEqual([
        `-A KNOCKPORT-INPUT -i eth0 -p tcp --dport 8080 -m comment --comment "WAF mode: KnockPort's own port 8080 is reached only through nginx" -j DROP`,
        `-A KNOCKPORT-INPUT -i eth0 -p tcp --dport 8443 -m comment --comment "WAF mode: KnockPort's own port 8443 is reached only through nginx" -j DROP`,
      ]);
      expect(text).toContain("-A KNOCKPORT-PREROUTING -i eth0 -p tcp --dport 80 ");
      expect(text).toContain("-A KNOCKPORT-INPUT -i eth0 -p tcp --dport 443 -m set --match-set kp-https-");
      expect(text).toContain("-A KNOCKPORT-OUTPUT -o eth0 -p tcp --sport 80 --tcp-flags FIN,SYN,RST,ACK SYN,ACK");
      for (const r of ruleLines(text)) if (!r.includes("WAF mode")) expect(r).not.toMatch(/port (8080|8443)\b/);
    }
  });

  it("vyos: matches the golden chains; VyOS accepts nginx's ports, and KnockPort's own only from lo (nginx's upstream)", () => {
    const text = renderVyosChains(wafConfig());
    expectGolden("vyos-waf-chains.nft", text);
    expect(text).toContain(`add rule ip vyos_filter NAME_IN-KnockPort iifname "eth0" tcp dport { 22, 80, 443 } accept`);
    expect(text).toContain(`add rule ip6 vyos_filter NAME6_IN-KnockPort iifname "lo" tcp dport { 8080, 8443 } accept`);
    expect(text.split("\n").filter((l) => /\b(8080|8443)\b/.test(l) && !l.includes('iifname "lo"'))).toEqual([]);
    expect(renderVyosChains(plainConfig())).not.toContain('iifname "lo"');
  });
});
