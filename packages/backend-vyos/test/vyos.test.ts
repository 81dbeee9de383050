import { describe, expect, it } from "vitest";
import { renderVyosBootstrap, renderVyosChains, renderVyosRerender, vyosChains } from "@knockport/backend-vyos/render";
import { expectGolden } from "../../firewall/test/golden.js";
import { appEntry, makeConfig } from "../../firewall/test/fixtures.js";

const app = appEntry;

describe("vyos rendering", () => {
  it("matches the golden files (local apps: input chains only)", () => {
    expectGolden("vyos-chains.nft", renderVyosChains(makeConfig()));
    expectGolden("vyos-bootstrap.txt", renderVyosBootstrap(makeConfig()));
  });

  it("matches the golden files with forwarded apps (forward chains, per family)", () => {
    const c = makeConfig({ apps: { local1: app(22), fwd1: app(3389, { destination: "192.0.2.10:13389" }), fwd2: app(5900, { destination: "[2001:db8::5]", protocol: "udp" }) } });
    expectGolden("vyos-forward-chains.nft", renderVyosChains(c));
    expectGolden("vyos-forward-bootstrap.txt", renderVyosBootstrap(c));
    expect(vyosChains(c).map((x) => `${x.family} ${x.chain}`)).toEqual(["ip NAME_IN-KnockPort", "ip NAME_FWD-KnockPort", "ip6 NAME6_IN-KnockPort", "ip6 NAME6_FWD-KnockPort"]);
    // accepts the public ports of local apps only; forwarded apps by their translated destination
    expect(renderVyosChains(c)).toContain(`add rule ip vyos_filter NAME_IN-KnockPort iifname "eth0" tcp dport { 22, 8080, 8443 } accept`);
    expect(renderVyosChains(c)).toContain(`iifname "eth0" ip daddr 192.0.2.10 tcp dport 13389 accept`);
    expect(renderVyosChains(c)).not.toMatch(/dport 3389 accept/);
  });

  it("accepts only on interface_ext (per app where set), never on the LAN or any other interface", () => {
    const c = makeConfig({
      global: { interface_ext: "wan0", interface_int: "lan0" },
      apps: {
        ssh: app(22, { interface_ext: "wan1" }),
        vpn: app(1194, { protocol: "udp" }),
        rdp: app(3389, { destination: "192.0.2.10:13389", interface_ext: "wan1" }),
      },
    });
    const rules = renderVyosChains(c)
      .trim()
      .split("\n")
      .filter((l) => l.startsWith("add rule") && / accept /.test(l));
    expect(rules.filter((l) => l.includes("NAME_"))).toEqual([
      `add rule ip vyos_filter NAME_IN-KnockPort iifname "wan0" tcp dport { 8080, 8443 } accept comment "KnockPort: its own table already filtered these"`,
      `add rule ip vyos_filter NAME_IN-KnockPort iifname "wan0" udp dport { 1194 } accept comment "KnockPort: its own table already filtered these"`,
      `add rule ip vyos_filter NAME_IN-KnockPort iifname "wan1" tcp dport { 22, 8080, 8443 } accept comment "KnockPort: its own table already filtered these"`,
      `add rule ip vyos_filter NAME_FWD-KnockPort iifname "wan1" ip daddr 192.0.2.10 tcp dport 13389 accept comment "KnockPort: its own table already filtered these"`,
    ]);
    for (const r of rules) expect(r).toMatch(/ iifname "wan[01]" /);
    expect(renderVyosChains(c)).not.toContain("lan0");
  });

  it("every rule carries a comment, and the bootstrap sets jump rule 9999 and never saves", () => {
    for (const line of renderVyosChains(makeConfig()).trim().split("\n").filter((l) => l.startsWith("add rule"))) expect(line).toMatch(/ comment "[^"]+"$/);
    const b = renderVyosBootstrap(makeConfig());
    expect(b).toContain("set firewall ipv4 input filter rule 9999 jump-target 'IN-KnockPort'");
    expect(b).not.toContain("save");
  });

  it("the re-render script removes and restores our description in two commits (VyOS's config ends unchanged), never saves", () => {
    const r = renderVyosRerender();
    expect(r).toBe(
      [
        "configure",
        "delete firewall ipv4 name IN-KnockPort description",
        "delete firewall ipv6 name IN-KnockPort description",
        "commit",
        "set firewall ipv4 name IN-KnockPort description 'KnockPort (rules managed by knockport-helper)'",
        "set firewall ipv6 name IN-KnockPort description 'KnockPort (rules managed by knockport-helper)'",
        "commit",
        "exit",
        "",
      ].join("\n"),
    );
    // the description it restores is the one the bootstrap sets
    for (const line of r.split("\n").filter((l) => l.startsWith("set "))) expect(renderVyosBootstrap(makeConfig())).toContain(line);
  });
});
