import type { BackendRender } from "@knockport/firewall";
import { renderIptablesDryRun } from "./ruleset.js";

export * from "./ruleset.js";
export * from "./names.js";
export * from "./u32.js";
export * from "./fingerprint.js";
export * from "./ipset-save.js";

export const renderDryRun: BackendRender["renderDryRun"] = (config) => renderIptablesDryRun(config);
