import type { BackendRender } from "@knockport/firewall";
import { nftPlacement } from "@knockport/firewall";
import { renderNftRuleset } from "./ruleset.js";

export * from "./ruleset.js";
export * from "./listing.js";
export * from "./fingerprint.js";
export * from "./set-elements.js";

export const renderDryRun: BackendRender["renderDryRun"] = (config, spec) => renderNftRuleset(config, { placement: nftPlacement(spec.customChains) });
