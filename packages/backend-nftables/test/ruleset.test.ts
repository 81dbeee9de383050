import { describe, expect, it } from "vitest";
import type { IpAddress } from "@knockport/protocol";
import { NFT_TABLE_FAMILY, NFT_TABLE_NAME, rulesetSetNames } from "@knockport/firewall";
import { nftLayout, renderNftRemoveTable, renderNftRuleset } from "@knockport/backend-nftables/render";
import { expectGolden } from "../../firewall/test/golden.js";
import { appEntry, makeConfig, PATH_40, step2Target } from "../../firewall/test/fixtures.js";

const app = appEntry;

describe("renderNftRuleset", () => {
  it("matches the golden ruleset (tcp + udp app, 40-character path)", () => {
    const config = makeConfig();
    expect(config.global.httpPostPath).toBe(PATH_40);
    expect(PATH_40).toHaveLength(40);
    expectGolden("ruleset.nft", renderNftRuleset(config));
  });

  it("matches the golden ruleset with live leases re-added in the same file", () => {
    const config = makeConfig();
    const text = renderNftRuleset(config, {
      elements: [
        step2Target(config, "openvpn", "198.51.100.7" as IpAddress),
        { ...step2Target(config, "ssh-admin", "2001:db8:1::7" as IpAddress), timeoutSeconds: 1234 },
        { set: "https_v4", ip: "203.0.113.9" as IpAddress, timeoutSeconds: 3 },
      ],
    });
    expectGolden("ruleset-with-leases.nft", text);
  });

  it("is deterministic and starts with the atomic replace idiom", () => {
    const a = renderNftRuleset(makeConfig());
    expect(renderNftRuleset(makeConfig())).toBe(a);
    const commands = a.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
    expect(commands.slice(0, 3)).toEqual([
      `table ${NFT_TABLE_FAMILY} ${NFT_TABLE_NAME} {}`,
      "delete table inet knockport",
      "table inet knockport {",
    ]);
  });

  it("puts a comment on every rule and a counter on every accept/drop", () => {
    const text = renderNftRuleset(makeConfig());
    const rules = text.split("\n").filter((l) => /\b(accept|drop|notrack)\b/.test(l) && !l.includes("policy"));
    // + 2: the HTTPS connection limit (one drop per family)
    // + 2 * 2: the guard before DNAT (one drop per family and app)
    expect(rules.length).toBe(4 + 3 + 2 + 2 * 3 + 2 + 2 + 2 * 2);
    for (const r of rules) {
      expect(r).toMatch(/ comment "[^"]+"$/);
      if (!r.includes("notrack")) expect(r).toMatch(/ counter (accept|drop) comment /);
    }
  });

  it("guards the knock ports on every external interface and each service on its own", () => {
    const config = makeConfig({
      apps: { vpn: app(1194, { protocol: "udp", interface_ext: "wg-ext0" }), ssh: app(22) },
    });
    const text = renderNftRuleset(config);
    expect(text).toContain(`iifname { "eth0", "wg-ext0" } tcp dport 8080 notrack`);
    expect(text).toContain(`oifname { "eth0", "wg-ext0" } tcp sport 8080 notrack`);
    expect(text).toContain(`iifname "wg-ext0" udp dport 1194 ip saddr @svc_vpn_v4 counter accept`);
    expect(text).toContain(`iifname "eth0" tcp dport 22 counter drop`);
  });

  it("guards every app's public port before any DNAT (local, forwarded by us, forwarded by Docker alike), on the app's own interface", () => {
    const config = makeConfig({
      apps: {
        web: app(9100),
        vpn: app(1194, { protocol: "udp", interface_ext: "wg-ext0" }),
        fwd: app(3389, { destination: "192.0.2.10:13389", interface_int: "lan0" }),
      },
    });
    const text = renderNftRuleset(config);
    const guard = /\tchain guard_prerouting \{\n([^}]*)\t\}/.exec(text)?.[1] ?? "";
    // after conntrack (-200, for ct direction), before dstnat (-100) and our own DNAT (dstnat - 10)
    expect(guard).toContain("type filter hook prerouting priority dstnat - 20; policy accept;");
    const rules = guard.split("\n").filter((l) => l.includes(" drop "));
    expect(rules.map((r) => r.trim().replace(/ counter drop comment .*$/, ""))).toEqual([
      `iifname "eth0" tcp dport 9100 ct direction original ip saddr != @svc_web_v4`,
      `iifname "eth0" tcp dport 9100 ct direction original ip6 saddr != @svc_web_v6`,
      `iifname "wg-ext0" udp dport 1194 ct direction original ip saddr != @svc_vpn_v4`,
      `iifname "wg-ext0" udp dport 1194 ct direction original ip6 saddr != @svc_vpn_v6`,
      `iifname "eth0" tcp dport 3389 ct direction original ip saddr != @svc_fwd_v4`,
      `iifname "eth0" tcp dport 3389 ct direction original ip6 saddr != @svc_fwd_v6`,
    ]);
    // only negated lookups: a lease's element counter counts its packets once, where they are accepted
    expect(guard).not.toMatch(/saddr @/);
    expect(guard.split("\n").filter((l) => l.includes("accept") && !l.includes("policy accept"))).toEqual([]);
  });

  it("matches the golden ruleset with forwarded apps (IPv4 and IPv6, same and other port, masquerade on and off)", () => {
    const config = makeConfig({
      apps: {
        local1: app(22),
        fwd1: app(3389, { destination: "192.0.2.10:13389", interface_int: "lan0" }),
        fwd2: app(5900, { destination: "[2001:db8::5]", protocol: "udp", masquerade: false, interface_ext: "wan1", interface_int: "lan1" }),
      },
    });
    const text = renderNftRuleset(config);
    expectGolden("ruleset-forward.nft", text);
    expect(rulesetSetNames(config)).toEqual(["https_v4", "https_v6", "svc_local1_v4", "svc_local1_v6", "svc_fwd1_v4", "svc_fwd1_v6", "svc_fwd2_v4", "svc_fwd2_v6"]);
    expect(step2Target(config, "fwd1", "198.51.100.7" as IpAddress).set).toBe("svc_fwd1_v4");
    // DNAT only for set members, forward accept on the translated destination, masquerade only for fwd1.
    expect(text).toContain(`iifname "eth0" ip saddr @svc_fwd1_v4 tcp dport 3389 counter dnat ip to 192.0.2.10:13389`);
    expect(text).toContain(`iifname "eth0" oifname "lan0" ip daddr 192.0.2.10 tcp dport 13389 ip saddr @svc_fwd1_v4 ct status dnat counter accept`);
    expect(text).toContain(`iifname "wan1" ip6 saddr @svc_fwd2_v6 udp dport 5900 counter dnat ip6 to [2001:db8::5]:5900`);
    expect(text).toContain(`oifname "lan0" ip daddr 192.0.2.10 tcp dport 13389 ip saddr @svc_fwd1_v4 ct status dnat counter masquerade`);
    expect(text).not.toMatch(/oifname "lan1"[^\n]*masquerade/);
    // Nobody reaches a local listener on a forwarded app's public port.
    expect(text).toContain(`iifname "eth0" tcp dport 3389 counter drop`);
    expect(text).not.toContain("@svc_fwd1_v4 counter accept");
  });

  it("limits new HTTPS connections per knocked address with a meter per family, before the accepts; none when the limit is 0", () => {
    const text = renderNftRuleset(makeConfig({ global: { https_connection_limit_per_minute: 7, https_connection_limit_burst: 3 } }));
    const lines = text.split("\n").map((l) => l.trim());
    const v4Limit = lines.findIndex((l) => l.includes("update @https_meter_v4 { ip saddr limit rate over 7/minute burst 3 packets } counter drop"));
    const v6Limit = lines.findIndex((l) => l.includes("update @https_meter_v6 { ip6 saddr limit rate over 7/minute burst 3 packets } counter drop"));
    const v4Accept = lines.findIndex((l) => l.includes("tcp dport 8443 ip saddr @https_v4 counter accept"));
    expect(v4Limit).toBeGreaterThan(-1);
    expect(v6Limit).toBeGreaterThan(v4Limit);
    expect(v4Accept).toBeGreaterThan(v6Limit);
    // only new connections of addresses that passed step 1 are metered
    expect(lines[v4Limit]).toMatch(/tcp dport 8443 ct state new ip saddr @https_v4 update/);
    expect(text).toContain("set https_meter_v6 {\n\t\ttype ipv6_addr\n\t\tsize 65535\n\t\tflags dynamic,timeout\n\t\ttimeout 1m\n");
    const off = renderNftRuleset(makeConfig({ global: { https_connection_limit_per_minute: 0 } }));
    expect(off).not.toMatch(/meter|limit rate/);
    expect(nftLayout(makeConfig({ global: { https_connection_limit_per_minute: 0 } })).sets).not.toContain("https_meter_v4");
    // meters hold no leases: lease elements may not be re-added to them
    expect(rulesetSetNames(makeConfig())).not.toContain("https_meter_v4");
  });

  it("renders no NAT or forward chain without forwarded apps", () => {
    const text = renderNftRuleset(makeConfig());
    expect(text).not.toMatch(/nat_prerouting|hook forward|masquerade/);
  });

  it("refuses leases for sets it does not define", () => {
    const config = makeConfig();
    expect(() =>
      renderNftRuleset(config, { elements: [{ set: "svc_gone_v4", ip: "198.51.100.7" as IpAddress, timeoutSeconds: 5 }] }),
    ).toThrow(expect.objectContaining({ code: "UNKNOWN_SET" }));
    expect(rulesetSetNames(config)).toEqual([
      "https_v4",
      "https_v6",
      "svc_openvpn_v4",
      "svc_openvpn_v6",
      "svc_ssh-admin_v4",
      "svc_ssh-admin_v6",
    ]);
  });

  it("removes the table idempotently", () => {
    expect(renderNftRemoveTable()).toBe("table inet knockport {}\ndelete table inet knockport\n");
  });
});
