import type { FirewallConfig as KnockportConfig } from "@knockport/config/firewall";
import { nftPlacement, OWN_TABLE, type BackendRender, type NftPlacement } from "@knockport/firewall";
import { buildNftRuleset, type NftLayout, type RenderRulesetOptions, type RulesetParts } from "./ruleset.js";
import { forwardRules } from "./forward.js";
import { customHead } from "./custom.js";

export * from "./ruleset.js";
export * from "./elements.js";
export * from "./listing.js";
export * from "./custom.js";
export * from "./forward.js";
export * from "./set-elements.js";

/** Every part loaded: the rendering for the CLI and the tests (the running helper loads only what its config uses). */
export const ALL_PARTS: RulesetParts = { forwardRules, customHead };

export function renderNftRuleset(config: KnockportConfig, options: RenderRulesetOptions = {}): string {
  return buildNftRuleset(config, options, ALL_PARTS).text;
}

export function nftLayout(config: KnockportConfig, placement: NftPlacement = OWN_TABLE, missingInterfaces: readonly string[] = []): NftLayout {
  return buildNftRuleset(config, { placement, missingInterfaces }, ALL_PARTS).layout;
}

export const renderDryRun: BackendRender["renderDryRun"] = (config, spec) => renderNftRuleset(config, { placement: nftPlacement(spec.customChains) });
