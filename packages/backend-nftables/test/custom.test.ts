import { describe, expect, it } from "vitest";
import type { IpAddress } from "@knockport/protocol";
import { CUSTOM_JUMP_COMMENT, InvalidValueError, OWN_TABLE, isOurCustomChain, isOurCustomSet, nftPlacement, parseBackendFlags } from "@knockport/firewall";
import { UsageError } from "@knockport/config/flags";
import { nftLayout, renderNftRemoveCustom, renderNftRuleset, renderNftGrant, renderNftRevoke } from "@knockport/backend-nftables/render";
import { expectGolden } from "../../firewall/test/golden.js";
import { appEntry, makeConfig, step1Target, step2Target } from "../../firewall/test/fixtures.js";

const app = appEntry;

const FILTER = nftPlacement({ table: "filter", input: "input", forward: "forward" });

describe("custom tables and chains (--nftables-table-filter)", () => {
  it("matches the golden ruleset: prefixed sets and chains in the admin's table, one jump from its input chain", () => {
    const config = makeConfig();
    const text = renderNftRuleset(config, {
      placement: FILTER,
      existing: { jumps: [{ chain: "input", handle: 8 }], chains: ["knockport_input", "knockport_raw_prerouting"], sets: ["knockport_https_v4", "knockport_sync"] },
      elements: [step2Target(config, "openvpn", "198.51.100.7" as IpAddress)],
    });
    expectGolden("ruleset-custom.nft", text);
    // Nothing of the admin's table is replaced or flushed: every delete/flush names an object of ours.
    for (const line of text.split("\n")) {
      const m = /^(?:delete|flush) (rule|chain|set) inet filter (\S+)/.exec(line);
      if (!m) continue;
      if (m[1] === "rule") expect(line).toBe("delete rule inet filter input handle 8");
      else expect(m[2]).toMatch(/^knockport_/);
    }
    expect(text).not.toMatch(/^(delete|flush) table inet filter/m);
    expect(text).not.toMatch(/chain input \{/);
    expect(text.match(/^insert rule .*$/gm)).toEqual([`insert rule inet filter input jump knockport_input comment "${CUSTOM_JUMP_COMMENT}"`]);
  });

  it("matches the golden ruleset with forwarded apps and a named output chain (three jumps, NAT as base chains of ours)", () => {
    const config = makeConfig({
      apps: {
        local1: app(22),
        fwd1: app(3389, { destination: "192.0.2.10:13389", interface_int: "lan0" }),
      },
    });
    const placement = nftPlacement({ table: "host-fw", input: "IN_main", forward: "FWD_main", output: "OUT_main" });
    const text = renderNftRuleset(config, { placement });
    expectGolden("ruleset-custom-forward.nft", text);
    expect(text.match(/^insert rule .*$/gm)).toEqual([
      `insert rule inet host-fw IN_main jump knockport_input comment "${CUSTOM_JUMP_COMMENT}"`,
      `insert rule inet host-fw OUT_main jump knockport_output comment "${CUSTOM_JUMP_COMMENT}"`,
      `insert rule inet host-fw FWD_main jump knockport_forward comment "${CUSTOM_JUMP_COMMENT}"`,
    ]);
    expect(text).toContain("chain knockport_nat_prerouting {\n\t\ttype nat hook prerouting priority dstnat - 10; policy accept;");
    expect(text).toContain("ip saddr @knockport_svc_fwd1_v4 tcp dport 3389 counter dnat ip to 192.0.2.10:13389");
    expect(text).not.toMatch(/@(https|svc)_/);
  });

  it("lays out what the self-heal check expects: chains with their rule counts, jumps, sets", () => {
    const layout = nftLayout(makeConfig(), FILTER);
    expect(layout.chains).toEqual([
      { name: "knockport_raw_prerouting", rules: 1 },
      { name: "knockport_raw_output", rules: 1 },
      // the guard before DNAT: one drop per family and app
      { name: "knockport_guard_prerouting", rules: 2 * 2 },
      { name: "knockport_input", rules: 7 + 2 + 2 * 3 },
      { name: "knockport_output", rules: 2 },
    ]);
    expect(layout.jumps).toEqual([{ from: "input", to: "knockport_input" }]);
    expect(layout.sets).toEqual([
      "knockport_https_v4",
      "knockport_https_v6",
      "knockport_https_meter_v4",
      "knockport_https_meter_v6",
      "knockport_svc_openvpn_v4",
      "knockport_svc_openvpn_v6",
      "knockport_svc_ssh-admin_v4",
      "knockport_svc_ssh-admin_v6",
      "knockport_sync",
    ]);
    expect(nftLayout(makeConfig()).jumps).toEqual([]);
    expect(nftLayout(makeConfig()).chains.map((c) => c.name)).toEqual(["raw_prerouting", "raw_output", "guard_prerouting", "input", "output"]);
  });

  it("renders grants and revokes into the admin's table under the prefixed set names", () => {
    const config = makeConfig();
    const v4 = "198.51.100.7" as IpAddress;
    expectGolden("grant-custom-step1-v4.nft", renderNftGrant(step1Target(config, "openvpn", v4), FILTER));
    expect(renderNftRevoke(step2Target(config, "ssh-admin", v4), FILTER)).toBe(
      "add element inet filter knockport_svc_ssh-admin_v4 { 198.51.100.7 timeout 1s }; delete element inet filter knockport_svc_ssh-admin_v4 { 198.51.100.7 }\n",
    );
    // Default placement unchanged.
    expect(renderNftGrant(step1Target(config, "openvpn", v4))).toContain("add element inet knockport https_v4 {");
  });

  it("uninstall removes exactly our jumps, chains and sets, and our own table", () => {
    const text = renderNftRemoveCustom(FILTER, {
      jumps: [{ chain: "input", handle: 12 }],
      chains: ["knockport_input", "knockport_output"],
      sets: ["knockport_https_v4", "knockport_svc_ssh-admin_v6", "knockport_sync"],
    });
    expect(text).toBe(
      [
        "table inet knockport {}",
        "delete table inet knockport",
        "delete rule inet filter input handle 12",
        "flush chain inet filter knockport_input",
        "delete chain inet filter knockport_input",
        "flush chain inet filter knockport_output",
        "delete chain inet filter knockport_output",
        "delete set inet filter knockport_https_v4",
        "delete set inet filter knockport_svc_ssh-admin_v6",
        "delete set inet filter knockport_sync",
        "",
      ].join("\n"),
    );
    expect(renderNftRemoveCustom(OWN_TABLE, { jumps: [], chains: [], sets: [] })).toBe("table inet knockport {}\ndelete table inet knockport\n");
  });

  it("refuses to delete anything that is not ours, and bad names or handles", () => {
    const bad = [
      { jumps: [], chains: ["input"], sets: [] },
      { jumps: [], chains: ["knockport_other"], sets: [] },
      { jumps: [], chains: [], sets: ["admin_set"] },
      { jumps: [], chains: [], sets: ["knockport_https_v5"] },
      { jumps: [{ chain: "input", handle: 0 }], chains: [], sets: [] },
      { jumps: [{ chain: "input", handle: 1.5 }], chains: [], sets: [] },
      { jumps: [{ chain: "input; flush ruleset", handle: 3 }], chains: [], sets: [] },
    ];
    for (const existing of bad) {
      expect(() => renderNftRemoveCustom(FILTER, existing)).toThrow(InvalidValueError);
      expect(() => renderNftRuleset(makeConfig(), { placement: FILTER, existing })).toThrow(InvalidValueError);
    }
    expect(isOurCustomChain("knockport_nat_postrouting")).toBe(true);
    expect(isOurCustomSet("knockport_svc_a-b_v6")).toBe(true);
    expect(isOurCustomSet("https_v4")).toBe(false);
  });

  it("takes the admin's names only through their flags, which refuse anything but a plain name of the admin's", () => {
    const names = ["", "1abc", "-x", "a b", 'x" accept', "inet filter", "a".repeat(65), "knockport_mine", "x;y", "x/y"];
    for (const n of names) {
      for (const flag of ["nftables-chain-input", "nftables-chain-forward", "nftables-chain-output"] as const) {
        expect(() => parseBackendFlags({ "nftables-table-filter": "filter", [flag]: n })).toThrow(UsageError);
      }
      expect(() => parseBackendFlags({ "nftables-table-filter": n })).toThrow(UsageError);
    }
    const custom = parseBackendFlags({ "nftables-table-filter": "Filter_2-x", "nftables-chain-input": "INPUT", "nftables-chain-forward": "FWD-1" }).customChains;
    expect(nftPlacement(custom).table).toBe("inet Filter_2-x");
  });
});
