import type { BackendRender } from "@knockport/firewall";
import { renderNftRuleset } from "@knockport/backend-nftables/render";
import { renderVyosBootstrap, renderVyosChains } from "./ruleset.js";

export * from "./ruleset.js";

/** Our own table, then the bootstrap (as comments: it runs only when the chains are missing) and the accepts. */
export const renderDryRun: BackendRender["renderDryRun"] = (config) =>
  [
    renderNftRuleset(config),
    "# ---- VyOS: bootstrap through vbash when the named chains are missing",
    ...renderVyosBootstrap(config).trimEnd().split("\n").map((l) => `#   ${l}`),
    "# ---- VyOS: accepts in the named chains (nft -f)",
    renderVyosChains(config),
  ].join("\n");
