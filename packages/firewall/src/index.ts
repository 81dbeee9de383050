export * from "./errors.js";
export * from "./names.js";
export * from "./payload.js";
export * from "./elements.js";
export * from "./guard.js";
export * from "./ruleset.js";
export * from "./iptables.js";
export * from "./vyos.js";
