import { describe, expect, it } from "vitest";
import { nftPlacement, OWN_TABLE } from "@knockport/firewall";
import { buildNftRuleset, renderNftRuleset } from "@knockport/backend-nftables/render";
import { loadParts } from "@knockport/backend-nftables/runtime";
import { appEntry, makeConfig } from "../../firewall/test/fixtures.js";

// The running helper loads the forwarding and custom-table rendering only when its config uses them.
const forwarding = () => makeConfig({ global: { interface_int: "eth1" }, apps: { web: appEntry(9443, { destination: "192.168.1.20:443" }) } });
const FILTER = nftPlacement({ table: "filter", input: "input", forward: "forward" });

describe("rendering parts loaded on demand", () => {
  it("a config without forwarded apps in our own table loads neither part", async () => {
    expect(await loadParts(makeConfig(), OWN_TABLE)).toEqual({});
  });

  it("loads exactly the parts the config and placement need, and renders what the full rendering does", async () => {
    const fwd = await loadParts(forwarding(), OWN_TABLE);
    expect(Object.keys(fwd)).toEqual(["forwardRules"]);
    expect(buildNftRuleset(forwarding(), {}, fwd).text).toBe(renderNftRuleset(forwarding()));
    const custom = await loadParts(makeConfig(), FILTER);
    expect(Object.keys(custom)).toEqual(["customHead"]);
    expect(buildNftRuleset(makeConfig(), { placement: FILTER }, custom).text).toBe(renderNftRuleset(makeConfig(), { placement: FILTER }));
  });

  it("refuses to render a forwarding config or an admin's table without its part (never a ruleset missing its chains)", () => {
    expect(() => buildNftRuleset(forwarding(), {}, {})).toThrow(/forwarding rendering was not loaded/);
    expect(() => buildNftRuleset(makeConfig(), { placement: FILTER }, {})).toThrow(/custom table rendering was not loaded/);
  });
});
